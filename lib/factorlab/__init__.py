"""factorlab: tensor-factorized layers and multitask learning, with a run store that makes
every reported number reproducible.

Sub-packages: ``data`` (datasets and on-device loaders), ``results`` (the run store),
``train`` (training loops and devices), ``models``, ``experiments`` (experiment grids per
profile), ``layers``, ``mtl``, ``dft`` and ``plots``.
"""
__version__ = "0.1.0"
