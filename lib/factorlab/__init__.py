"""factorlab: tensor-factorized layers and multitask learning, with a run store that makes
every reported number reproducible.

Sub-packages: ``data`` (datasets and on-device loaders), ``results`` (the run store),
``train`` (training loops and devices), ``models``, ``experiments`` (experiment grids per
profile), ``layers``, ``mtl``, ``dft`` and ``plots``.
"""
import warnings as _warnings

__version__ = "0.1.0"

# torch_geometric imports tqdm.auto, which warns inside Jupyter when ipywidgets is missing; the
# library never shows progress bars in notebooks, and the warning would land in every
# committed notebook output (nbval compares stderr).
_warnings.filterwarnings("ignore", message="IProgress not found")
