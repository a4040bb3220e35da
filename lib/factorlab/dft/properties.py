"""QM9's properties from a converged SCF, in the units of :data:`factorlab.data.qm9.TARGETS`.

- From the SCF alone (:func:`scf_properties`): HOMO, LUMO, gap (eV), dipole magnitude (Debye),
  electronic spatial extent <R^2> about the centre of nuclear charge (bohr^2, Gaussian's
  origin), and the electronic (SCF) energy (Hartree).
- :func:`isotropic_polarizability`: the static polarizability by coupled-perturbed Kohn-Sham
  (pyscf-properties), bohr^3.
- :func:`hessian` + :func:`harmonic_analysis` + :func:`thermochemistry`: ZPVE, U0, U, H, G
  (eV) and Cv (cal/(mol K)) in the rigid-rotor harmonic-oscillator model at 298.15 K and
  1 atm, as Gaussian computes them, with the masses of the most common isotopes (not PySCF's
  isotope averages, nor integer mass numbers).
- :func:`rotational_constants` (GHz, from the geometry) and :func:`atomization_energies`
  (eV, from :data:`~factorlab.data.qm9.ATOMREF_HARTREE`, as the data layer forms them).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from factorlab.data.qm9 import ATOMREF_HARTREE, HARTREE_TO_EV
from factorlab.data.qm9 import ATOMIC_NUMBERS

#: Mass (u) of the most common isotope of each QM9 element (1H, 12C, 14N, 16O, 19F; AME2016),
#: what Gaussian uses for frequencies, thermochemistry and rotational constants.
ISOTOPE_MASS = {1: 1.00782503223, 6: 12.0, 7: 14.00307400443, 8: 15.99491461957, 9: 18.99840316273}
#: Temperature (K) and pressure (Pa) of QM9's U, H, G and Cv.
TEMPERATURE, PRESSURE = 298.15, 101325.0
#: Thermochemical calorie (J).
CALORIE = 4.184


def _nist():
    from pyscf.data import nist

    return nist


def nuclear_charge_centre(mol) -> np.ndarray:
    """Centre of nuclear charge (bohr, [3]): Gaussian's origin for <R^2>."""
    q = mol.atom_charges().astype(np.float64)
    return q @ mol.atom_coords() / q.sum()


def scf_properties(mf) -> dict[str, float]:
    """Properties of one converged closed-shell SCF ``mf``.

    Returns ``{"homo", "lumo", "gap"}`` (eV), ``"mu"`` (dipole magnitude, Debye), ``"r2"``
    (electronic <R^2> about the centre of nuclear charge, bohr^2) and ``"energy"`` (the SCF
    energy including nuclear repulsion, Hartree; QM9's U0 - ZPVE).
    """
    mol = mf.mol
    if not mf.converged:
        raise RuntimeError("the SCF has not converged: its properties would be meaningless")
    occ = np.asarray(mf.mo_occ)
    e = np.asarray(mf.mo_energy)
    nocc = int(np.count_nonzero(occ > 0))
    if nocc == 0 or nocc >= e.size:
        raise ValueError(f"need occupied and virtual orbitals, got {nocc} occupied of {e.size}")
    homo, lumo = float(e[nocc - 1]), float(e[nocc])
    dm = mf.make_rdm1()
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        r_ao = mol.intor_symmetric("int1e_r", comp=3)
    electronic = np.einsum("xij,ji->x", r_ao, dm)
    nuclear = mol.atom_charges() @ mol.atom_coords()
    mu = (nuclear - electronic) * _nist().AU2DEBYE
    with mol.with_common_orig(nuclear_charge_centre(mol)):
        r2_ao = mol.intor_symmetric("int1e_r2")
    r2 = float(np.einsum("ij,ji->", r2_ao, dm))
    return {"homo": homo * HARTREE_TO_EV, "lumo": lumo * HARTREE_TO_EV, "gap": (lumo - homo) * HARTREE_TO_EV,
            "mu": float(np.linalg.norm(mu)), "r2": r2, "energy": float(mf.e_tot)}


def polarizability_tensor(mf, conv_tol: float = 1e-9, max_cycle: int = 50) -> np.ndarray:
    """Static dipole polarizability tensor (bohr^3, [3, 3]) by coupled-perturbed KS (CPKS),
    with pyscf-properties' ``pyscf.prop.polarizability``. Works with the pure-f orbital space
    (it only uses ``mo_coeff [nao, nmo]`` and the SCF's response function)."""
    try:
        with warnings.catch_warnings():  # pyscf.prop's __init__ imports every module, each warning
            warnings.simplefilter("ignore", UserWarning)  # "under testing"; keep notebooks' stderr clean
            from pyscf.prop.polarizability.rhf import Polarizability
    except ImportError as err:
        raise ImportError("the polarizability needs pyscf-properties (pip install pyscf-properties; "
                          f"it provides pyscf.prop.polarizability): {err}") from err
    pol = Polarizability(mf)
    pol.conv_tol = conv_tol
    pol.max_cycle_cphf = max_cycle
    pol.verbose = 0
    return np.asarray(pol.polarizability())


def isotropic_polarizability(mf, **kwargs) -> float:
    """Isotropic static polarizability, trace/3 of :func:`polarizability_tensor` (bohr^3)."""
    return float(np.trace(polarizability_tensor(mf, **kwargs)) / 3.0)


def hessian(mf) -> np.ndarray:
    """Analytic nuclear Hessian of the SCF energy (Hartree/bohr^2, [natm, natm, 3, 3])."""
    h = mf.Hessian()
    h.verbose = 0
    return np.asarray(h.kernel())


def isotope_masses(z: Sequence[int]) -> np.ndarray:
    """Most-common-isotope masses (u, float64 [n]) of atomic numbers ``z``."""
    try:
        return np.array([ISOTOPE_MASS[int(v)] for v in z], dtype=np.float64)
    except KeyError as err:
        raise ValueError(f"no isotope mass for atomic number {err} (QM9 elements only)") from None


def principal_moments(masses: np.ndarray, coords_bohr: np.ndarray) -> np.ndarray:
    """Principal moments of inertia (u bohr^2, ascending [3]) about the centre of mass."""
    r = coords_bohr - masses @ coords_bohr / masses.sum()
    inertia = np.einsum("i,ix,iy->xy", masses, r, r)
    inertia = np.eye(3) * np.trace(inertia) - inertia
    return np.linalg.eigvalsh(inertia)


def rotor_type(moments: np.ndarray, rel_tol: float = 1e-6) -> str:
    """``"atom"``, ``"linear"`` or ``"nonlinear"`` from the principal moments (ascending)."""
    if moments[2] <= 1e-8:
        return "atom"
    return "linear" if moments[0] <= rel_tol * moments[2] else "nonlinear"


def rotational_constants(z: Sequence[int], pos_angstrom) -> np.ndarray:
    """Rotational constants A >= B >= C (GHz, [3]) with most-common-isotope masses.

    QM9's convention for a linear molecule, A = 0 (its moment about the axis vanishes), is
    kept; an atom gets zeros.
    """
    nist = _nist()
    masses = isotope_masses(z)
    moments = principal_moments(masses, np.asarray(pos_angstrom, dtype=np.float64) / nist.BOHR)
    kind = rotor_type(moments)
    out = np.zeros(3)
    if kind == "atom":
        return out
    unit = nist.ATOMIC_MASS * nist.BOHR_SI ** 2  # kg m^2 per u bohr^2
    with np.errstate(divide="ignore"):
        ghz = nist.PLANCK / (8 * np.pi ** 2 * moments * unit) * 1e-9
    if kind == "linear":
        ghz[0] = 0.0
    return ghz


def harmonic_analysis(hess: np.ndarray, masses: np.ndarray, coords_bohr: np.ndarray) -> dict:
    """Harmonic frequencies from a Cartesian Hessian, translations and rotations projected out.

    Args:
        hess: Hartree/bohr^2, [natm, natm, 3, 3] (PySCF's layout) or [3 natm, 3 natm].
        masses: u, [natm].
        coords_bohr: [natm, 3].

    Returns:
        ``{"freq_cm": float [m] (cm^-1; negative for imaginary modes), "freq_hz": [m]
        (absolute values), "n_imaginary": int, "rotor": str}``, ``m = 3 natm - 6`` (``- 5``
        linear, 0 for an atom).
    """
    nist = _nist()
    n = masses.size
    h = hess.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) if hess.ndim == 4 else np.asarray(hess)
    m3 = np.repeat(masses, 3)
    hm = h / np.sqrt(np.outer(m3, m3))
    hm = 0.5 * (hm + hm.T)
    r = coords_bohr - masses @ coords_bohr / masses.sum()
    sq = np.sqrt(masses)[:, None]
    axes = np.eye(3)
    tr = np.array([(sq * a).ravel() for a in axes] + [(sq * np.cross(a, r)).ravel() for a in axes]).T
    u, s, _ = np.linalg.svd(tr, full_matrices=True)
    rank = int(np.count_nonzero(s > 1e-5 * s.max()))
    internal = u[:, rank:]
    k = np.linalg.eigvalsh(internal.T @ hm @ internal)  # Hartree / (bohr^2 u)
    omega = np.sqrt(np.abs(k) * nist.HARTREE2J / (nist.ATOMIC_MASS * nist.BOHR_SI ** 2))  # rad/s
    hz = omega / (2 * np.pi)
    cm = np.sign(k) * hz / nist.LIGHT_SPEED_SI * 1e-2
    return {"freq_cm": cm, "freq_hz": hz, "n_imaginary": int(np.count_nonzero(k < 0)),
            "rotor": rotor_type(principal_moments(masses, coords_bohr))}


def thermochemistry(e_scf: float, freq_cm: np.ndarray, masses: np.ndarray, coords_bohr: np.ndarray,
                    symmetry_number: int, temperature: float = TEMPERATURE, pressure: float = PRESSURE,
                    multiplicity: int = 1) -> dict[str, float]:
    """Rigid-rotor harmonic-oscillator thermochemistry, Gaussian's formulas (ideal gas).

    Args:
        e_scf: electronic energy (Hartree).
        freq_cm: harmonic frequencies (cm^-1); imaginary ones (negative) are left out, as
            Gaussian does.
        masses, coords_bohr: u [n] and bohr [n, 3] (rotational and translational parts).
        symmetry_number: rotational symmetry number (12 for methane, 1 for most of QM9).

    Returns:
        Hartree: ``zpve``, ``U0`` (= E + ZPVE), ``U``, ``H`` (= U + kT), ``G`` (= H - TS);
        ``Cv`` in cal/(mol K); ``S`` in cal/(mol K).
    """
    nist = _nist()
    kb, hplanck = nist.BOLTZMANN, nist.PLANCK
    kt = kb * temperature
    nu = np.asarray(freq_cm, dtype=np.float64)
    nu = nu[nu > 0] * 1e2 * nist.LIGHT_SPEED_SI  # Hz
    x = hplanck * nu / kt
    zpve = 0.5 * hplanck * nu.sum()
    e_vib = zpve + (hplanck * nu / np.expm1(x)).sum()
    s_vib = kb * (x / np.expm1(x) - np.log(-np.expm1(-x))).sum()
    cv_vib = kb * (x ** 2 * np.exp(x) / np.expm1(x) ** 2).sum()
    m_kg = masses.sum() * nist.ATOMIC_MASS
    q_trans = (2 * np.pi * m_kg * kt / hplanck ** 2) ** 1.5 * kt / pressure
    s_trans, e_trans, cv_trans = kb * (np.log(q_trans) + 2.5), 1.5 * kt, 1.5 * kb
    moments = principal_moments(masses, coords_bohr) * nist.ATOMIC_MASS * nist.BOHR_SI ** 2  # kg m^2
    kind = rotor_type(moments / moments.max() if moments.max() > 0 else moments)
    theta = hplanck ** 2 / (8 * np.pi ** 2 * np.where(moments > 0, moments, np.inf) * kb)  # K
    if kind == "atom":
        s_rot = e_rot = cv_rot = 0.0
    elif kind == "linear":
        q_rot = temperature / (symmetry_number * theta[2])
        s_rot, e_rot, cv_rot = kb * (np.log(q_rot) + 1.0), kt, kb
    else:
        q_rot = np.sqrt(np.pi) / symmetry_number * temperature ** 1.5 / np.sqrt(np.prod(theta))
        s_rot, e_rot, cv_rot = kb * (np.log(q_rot) + 1.5), 1.5 * kt, 1.5 * kb
    s_elec = kb * np.log(multiplicity)
    to_eh = 1.0 / nist.HARTREE2J
    u = e_scf + (e_trans + e_rot + e_vib) * to_eh
    h = u + kt * to_eh
    s = s_trans + s_rot + s_vib + s_elec
    per_mol_cal = nist.AVOGADRO / CALORIE
    return {"zpve": zpve * to_eh, "U0": e_scf + zpve * to_eh, "U": u, "H": h,
            "G": h - temperature * s * to_eh, "Cv": (cv_trans + cv_rot + cv_vib) * per_mol_cal,
            "S": s * per_mol_cal}


def rotational_symmetry_number(mol) -> int:
    """Rotational symmetry number of ``mol``'s geometry, from the point group PySCF detects at
    its default tolerance (1e-5 bohr).

    That tight tolerance is what reproduces QM9's free energies: QM9's geometries carry tiny
    asymmetries from the optimisation, and its G was computed with the symmetry number of the
    point group found on them (checked against the stored G: 1 for methane (C1 at this
    tolerance, not Td's 12), ammonia and HCN, 2 for water and acetylene). A looser tolerance
    would give the textbook values and miss QM9's G by RT ln(sigma), 2.3 mEh for methane.
    """
    from pyscf.hessian import thermo

    return int(thermo.rotational_symmetry_number(mol))


def atomization_energies(z: Sequence[int], totals_hartree: dict[str, float]) -> dict[str, float]:
    """``{"U0_atom", "U_atom", "H_atom", "G_atom"}`` (eV) = total - sum of the free atoms'
    :data:`~factorlab.data.qm9.ATOMREF_HARTREE` (QM9's ``atomref``), formed in Hartree in
    float64 and then converted, as the data layer does. ``totals_hartree`` needs the keys of
    the totals present (``U0``, ``U``, ``H``, ``G``); missing ones are left out."""
    rows = [ATOMIC_NUMBERS.index(int(v)) for v in z]
    ref = ATOMREF_HARTREE[rows].sum(axis=0)
    out = {}
    for col, name in enumerate(("U0", "U", "H", "G")):
        if totals_hartree.get(name) is not None:
            out[f"{name}_atom"] = (float(totals_hartree[name]) - ref[col]) * HARTREE_TO_EV
    return out
