"""One call from atoms (or a SMILES) to QM9's 19 properties by DFT, with cost control.

:func:`compute_properties` runs one SCF at QM9's level of theory and derives from it what its
cost allows: the SCF properties always, the CPKS polarizability and the Hessian (ZPVE, U0, U,
H, G, Cv and the atomization energies) when ``"auto"`` and their estimated time (see
:mod:`factorlab.dft.cost`) is within budget, or when asked for explicitly (with a warning above
the budget). The SCF itself is refused (:class:`TooExpensiveError`) above its budget unless
``force``. Progress goes to the ``factorlab.dft`` logger and to an optional ``progress``
callback (plain text lines, no progress bars).
"""
from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from factorlab.data.qm9 import HARTREE_TO_EV, TARGET_NAMES
from factorlab.dft.basis import build_molecule, check_atomic_numbers
from factorlab.dft.cost import DEFAULT_BUDGETS, estimate_cost
from factorlab.dft.properties import (atomization_energies, harmonic_analysis, isotope_masses,
                                      polarizability_tensor, rotational_constants,
                                      rotational_symmetry_number, scf_properties, thermochemistry)
from factorlab.dft.properties import hessian as nuclear_hessian
from factorlab.dft.scf import GRID, XC, run_scf

log = logging.getLogger("factorlab.dft")

#: The level of theory, in words (for tables and run records).
LEVEL = ("B3LYP (Gaussian's, VWN-RPA: PySCF b3lypg) / 6-31G(2df,p) as Gaussian defines it "
         "(d exponents 1.6 and 0.4, Cartesian d and pure f: 6D 7F)")
#: Targets that need the Hessian.
HESSIAN_TARGETS = ("zpve", "U0", "U", "H", "G", "Cv", "U0_atom", "U_atom", "H_atom", "G_atom")
#: A step estimated above this many seconds reports every SCF cycle.
DETAIL_AFTER_S = 20.0


class TooExpensiveError(ValueError):
    """The estimated cost of a DFT step is above its budget and it was not forced."""


@dataclass
class DFTResult:
    """QM9's properties of one molecule by DFT.

    ``values``: every name of :data:`~factorlab.data.qm9.TARGET_NAMES` -> value in its
    :data:`~factorlab.data.qm9.TARGETS` unit, or None where the step was skipped (see
    ``skipped``); ``energy_hartree``: the SCF (electronic + nuclear repulsion) energy, QM9's
    U0 - ZPVE; ``timings`` and ``estimates``: seconds per step (``scf``, ``polarizability``,
    ``hessian``); ``details``: polarizability tensor (bohr^3), harmonic frequencies (cm^-1),
    number of imaginary modes, rotational symmetry number.
    """

    values: dict[str, float | None]
    energy_hartree: float
    n_basis: int
    n_orbitals: int
    timings: dict[str, float]
    estimates: dict[str, float]
    skipped: dict[str, str]
    level: str = LEVEL
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain JSON-able values (lists for arrays)."""
        d = asdict(self)
        d["details"] = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                        for k, v in self.details.items()}
        return d


def _decide(step: str, request: bool | str, estimate: float, budget: float, say) -> tuple[bool, str | None]:
    """Whether to run ``step`` (request True/False/"auto") and, when not, why."""
    if request not in (True, False, "auto"):
        raise ValueError(f"{step} must be True, False or 'auto', got {request!r}")
    if request is False:
        return False, "not requested"
    if estimate <= budget:
        return True, None
    if request == "auto":
        return False, f"estimated {estimate:.0f} s > budget {budget:.0f} s (ask for it explicitly to run it)"
    msg = f"{step}: estimated {estimate:.0f} s, above the budget of {budget:.0f} s; running it as requested"
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    say(msg)
    return True, None


def compute_properties(z: Sequence[int], pos_angstrom, *, polarizability: bool | str = "auto",
                       hessian: bool | str = "auto", density_fit: bool = False,
                       grid: tuple[int, int] | int = GRID, xc: str = XC, budgets: dict | None = None,
                       threads: int | None = None, force: bool = False,
                       progress: Callable[[str], None] | None = None) -> DFTResult:
    """QM9's properties of the molecule with atomic numbers ``z`` [n] at ``pos_angstrom``
    [n, 3] (Angstrom), by DFT at QM9's level of theory.

    Args:
        polarizability, hessian: True, False or ``"auto"`` (run when the estimate is within
            ``budgets``).
        density_fit: density-fitted SCF (faster for large molecules; ~1e-5 Eh per atom).
        grid: integration grid, ``(radial, angular)`` per atom or a PySCF level.
        budgets: seconds per step, overriding :data:`~factorlab.dft.cost.DEFAULT_BUDGETS`.
        threads: OpenMP threads for PySCF during the call (default: leave PySCF's setting).
        force: run the SCF even when its estimate exceeds its budget.
        progress: called with one line of text at each step (and each SCF cycle of a long SCF).

    Raises:
        ValueError: atoms outside H, C, N, O, F; an odd number of electrons; bad shapes.
        TooExpensiveError: the SCF's estimate exceeds its budget and ``force`` is False.
        RuntimeError: the SCF did not converge.
    """
    from pyscf import lib

    z = check_atomic_numbers(z)
    pos = np.asarray(pos_angstrom, dtype=np.float64)
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}

    def say(msg: str) -> None:
        log.info(msg)
        if progress is not None:
            progress(msg)

    ctx = lib.with_omp_threads(threads) if threads else contextlib.nullcontext()
    with ctx:
        est = estimate_cost(z, threads=lib.num_threads())
        estimates = {"scf": est.scf, "polarizability": est.polarizability, "hessian": est.hessian}
        if est.scf > budgets["scf"] and not force:
            raise TooExpensiveError(f"the SCF of this molecule ({est.n_basis} basis functions) is estimated at "
                                    f"{est.scf:.0f} s on {est.threads} thread(s), above the budget of "
                                    f"{budgets['scf']:.0f} s; pass force=True (CLI: --force) to run it anyway")
        mol = build_molecule(z, pos)
        timings, skipped, details = {}, {}, {}
        t0 = time.perf_counter()
        callback = None
        if est.scf > DETAIL_AFTER_S:
            def callback(envs):
                say(f"  SCF cycle {envs.get('cycle', 0) + 1}: E = {envs.get('e_tot', float('nan')):.8f} Eh "
                    f"({time.perf_counter() - t0:.0f} s)")
        say(f"SCF: {est.n_basis} basis functions, estimated {est.scf:.0f} s")
        mf = run_scf(mol, xc=xc, density_fit=density_fit, grid=grid, callback=callback)
        timings["scf"] = time.perf_counter() - t0
        props = scf_properties(mf)
        say(f"SCF converged in {timings['scf']:.1f} s: E = {props['energy']:.8f} Eh")
        values: dict[str, float | None] = {name: None for name in TARGET_NAMES}
        values.update({k: props[k] for k in ("mu", "homo", "lumo", "gap", "r2")})
        values.update(dict(zip(("A", "B", "C"), map(float, rotational_constants(z, pos)))))

        run, why = _decide("polarizability", polarizability, est.polarizability, budgets["polarizability"], say)
        if run:
            say(f"polarizability (CPKS): estimated {est.polarizability:.0f} s")
            t0 = time.perf_counter()
            tensor = polarizability_tensor(mf)
            timings["polarizability"] = time.perf_counter() - t0
            values["alpha"] = float(np.trace(tensor) / 3)
            details["polarizability_tensor"] = tensor
            say(f"polarizability done in {timings['polarizability']:.1f} s")
        else:
            skipped["polarizability"] = why

        run, why = _decide("hessian", hessian, est.hessian, budgets["hessian"], say)
        if run:
            say(f"Hessian: estimated {est.hessian:.0f} s")
            t0 = time.perf_counter()
            hess = nuclear_hessian(mf)
            timings["hessian"] = time.perf_counter() - t0
            masses = isotope_masses(z)
            coords = mol.atom_coords()
            modes = harmonic_analysis(hess, masses, coords)
            sigma = rotational_symmetry_number(mol)
            thermo = thermochemistry(props["energy"], modes["freq_cm"], masses, coords, sigma)
            values.update({k: thermo[k] * HARTREE_TO_EV for k in ("zpve", "U0", "U", "H", "G")})
            values["Cv"] = thermo["Cv"]
            values.update(atomization_energies(z, thermo))
            details.update({"freq_cm": modes["freq_cm"], "n_imaginary": modes["n_imaginary"], "symmetry_number": sigma,
                            "thermo_hartree": {k: thermo[k] for k in ("zpve", "U0", "U", "H", "G")}})
            if modes["n_imaginary"]:
                say(f"warning: {modes['n_imaginary']} imaginary frequencies (not a minimum); left out of the "
                    "thermochemistry")
            say(f"Hessian done in {timings['hessian']:.1f} s")
        else:
            skipped["hessian"] = why
    return DFTResult(values=values, energy_hartree=props["energy"], n_basis=est.n_basis,
                     n_orbitals=int(np.asarray(mf.mo_energy).size), timings=timings, estimates=estimates,
                     skipped=skipped, details=details)


@dataclass
class Prediction:
    """A molecule's geometry (:class:`~factorlab.dft.geometry.Geometry`), its DFT result and
    the total wall time (seconds, geometry included)."""

    geometry: object
    dft: DFTResult
    wall_s: float


def predict_dft(smiles: str, table=None, *, optimize: bool = True, max_heavy_atoms: int = 9,
                progress: Callable[[str], None] | None = None, **kwargs) -> Prediction:
    """Geometry (:func:`~factorlab.dft.geometry.molecule_geometry`: QM9's when ``smiles`` is in
    ``table``) and :func:`compute_properties` (``kwargs``) for a SMILES."""
    from factorlab.dft.geometry import molecule_geometry

    t0 = time.perf_counter()
    geom = molecule_geometry(smiles, table=table, optimize=optimize, max_heavy_atoms=max_heavy_atoms,
                             progress=progress)
    result = compute_properties(geom.z, geom.pos, progress=progress, **kwargs)
    return Prediction(geom, result, time.perf_counter() - t0)


def compare_to_qm9(values: dict[str, float | None], reference: dict[str, float]) -> dict[str, float | None]:
    """``values - reference`` per target (None where either is missing)."""
    return {k: (None if values.get(k) is None or reference.get(k) is None else values[k] - reference[k])
            for k in TARGET_NAMES}
