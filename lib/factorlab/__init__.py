"""factorlab: tensor-factorized layers and multitask learning, with a run store that makes
every reported number reproducible.

The library is built in layers, lowest first; a module imports only from its own package and
from the layers below it, never from a layer above and never from a sibling on its own layer,
so there are no import cycles (lazy imports inside functions count too):

1. ``paths`` (where things live), ``files`` (atomic writes, file digests, verified caches),
   ``seed`` (the only global state), ``literature`` (numbers cited from papers), ``plots``
   (the seaborn theme and shared plotting helpers), ``analysis`` (small frame helpers),
   ``clock`` (seconds per call of a callable): leaf
   helpers that import nothing of factorlab;
2. ``data`` (datasets: download, verify, mirror, cache, device-resident loaders), ``layers``
   (low-rank, CP, Tucker, tensor-train, separable layers), ``results`` (the run store and
   provenance);
3. ``models`` (MNIST, CIFAR-10 and QM9 networks, the QM9 composition baseline), ``dft`` (the
   DFT side of the molecule demo, PySCF);
4. ``train`` (training loops named by what they train, schedules, timing, devices), ``mtl``
   (multitask losses, weighting, metrics);
5. ``experiments``: every grid that writes run records;
6. ``report`` (one module per chapter: records to frames, tables, verdicts, glued values; it
   reads experiments' constants, never the reverse), ``predict`` (the ``predict`` command:
   DFT and the saved network side by side);
7. ``cli`` (``python -m factorlab list | run | predict``), ``devtools`` (checks of the code
   base); then ``__main__``.

``python -m factorlab.devtools.layering`` checks this order and the absence of cycles (its
``LAYERS`` is the machine-readable copy of this list); ``tests/unit/test_layering.py`` runs it.
"""
import warnings as _warnings

__version__ = "0.1.0"

# torch_geometric imports tqdm.auto, which warns inside Jupyter when ipywidgets is missing; the
# library never shows progress bars in notebooks, and the warning would land in every
# committed notebook output (nbval compares stderr).
_warnings.filterwarnings("ignore", message="IProgress not found")
