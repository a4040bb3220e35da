"""How long the DFT steps take, estimated from the number of basis functions.

Power laws ``t = t_ref (n / n_ref)^p`` for one OpenMP thread, ``n`` in Gaussian's 6D 7F count
(:func:`~factorlab.dft.basis.count_basis_functions`), fitted (:func:`fit_power_law`) to:

- SCF at QM9's level: measured here on one thread of a shared 2-core machine, 2.8 s for
  methane (48 functions), 5.1 s for acetylene and formaldehyde (66), 13.4 s for ethane (86);
  and the demo issue's 2-core timings doubled: 11 s for four heavy atoms (isopropanol, 152),
  33 s for six and 138 s for nine (taken as ~208 and ~302 functions, typical hydrogen
  counts). Fit: 2.6 s at 48, p = 2.33.
- CPKS polarizability: 3.8 to 4.2 s for methane (about 1.4 SCFs), 41 s for methanol (76, on a
  busy machine, about 2.8 SCFs): the CPKS iterations grow with size, so p = 3.
- Analytic Hessian (CPU seconds, one thread): 19 s ammonia (43), 28 s methane (48), 23 s HCN
  (61), 40 to 45 s acetylene and formaldehyde (66), 200 s ethane (86), and the issue's 245 s
  (2 cores) for isopropanol. Fit: ~24 s at 48, p = 2.8, which puts nine heavy atoms at an
  hour or more.
- geometry optimisation at B3LYP/6-31G* with density fitting (6D count): the issue's 34 s for
  isopropanol (76 functions) and 5.6 min for nine heavy atoms (~155), on 2 cores.

Estimates assume linear scaling with ``threads`` (optimistic) and are meant for refusing or
warning, not for planning to the second: the true cost also depends on the number of SCF
cycles, CPKS iterations and geometry steps, and on what else the machine runs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from factorlab.dft.basis import NBF_PER_ATOM_631GS, check_atomic_numbers, count_basis_functions

#: step -> (reference basis size, seconds at it on one thread, exponent p).
COST_MODEL = {
    "scf": (48, 2.6, 2.33),
    "polarizability": (48, 3.8, 3.0),
    "hessian": (48, 24.0, 2.8),
    "optimize": (76, 68.0, 3.21),
}
#: Default budgets (seconds): above them, ``"auto"`` steps are skipped and requested ones warned about.
DEFAULT_BUDGETS = {"scf": 1800.0, "polarizability": 600.0, "hessian": 300.0, "optimize": 900.0}


@dataclass(frozen=True)
class CostEstimate:
    """Estimated wall seconds of each step for one molecule (``threads`` OpenMP threads)."""

    n_basis: int
    n_basis_opt: int
    scf: float
    polarizability: float
    hessian: float
    optimize: float
    threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def _power(step: str, n: int) -> float:
    n_ref, t_ref, p = COST_MODEL[step]
    return float(t_ref * (n / n_ref) ** p)


def estimate_cost(z: Sequence[int], threads: int | None = None) -> CostEstimate:
    """Estimated seconds of SCF, CPKS polarizability, Hessian and geometry optimisation for
    atoms ``z`` (atomic numbers) with ``threads`` threads (default: PySCF's current count)."""
    z = check_atomic_numbers(z)
    if threads is None:
        from pyscf import lib

        threads = lib.num_threads()
    threads = max(1, int(threads))
    slow = 1.0 / threads  # calibrated on one thread; assumes linear scaling
    n = count_basis_functions(z)
    n_opt = count_basis_functions(z, NBF_PER_ATOM_631GS)
    return CostEstimate(n, n_opt, *(slow * _power(s, n if s != "optimize" else n_opt)
                                    for s in ("scf", "polarizability", "hessian", "optimize")), threads)


def fit_power_law(n: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(t_ref at n[0], p)`` of ``log t = log a + p log n`` (re-calibration helper)."""
    n = np.asarray(n, dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    p, log_a = np.polyfit(np.log(n), np.log(t), 1)
    return float(np.exp(log_a) * n[0] ** p), float(p)
