"""QM9's basis set, B3LYP/6-31G(2df,p) *as Gaussian defines it*, for PySCF.

Two differences from PySCF's built-in ``6-31g(2df,p)`` matter at QM9's printed precision:

1. **Exponents.** Gaussian's multiple polarization sets (Frisch, Pople & Binkley, J. Chem.
   Phys. 80, 3265 (1984)) put two d shells at twice and half the single-d exponent of 6-31G*
   (0.8), i.e. 1.6 and 0.4 on C, N, O and F, plus one f shell (C 0.8, N 1.0, O 1.4, F 1.85);
   ``,p`` adds one p shell (1.1, as in 6-31G**) on H. PySCF's table has other d exponents
   (0.6 to 11 mEh off in the energy).
2. **6D 7F.** Gaussian uses six Cartesian d functions but seven pure (spherical) f functions
   per shell. PySCF is either all-Cartesian (``cart=True``: 6D 10F, 2 to 7 mEh off) or
   all-spherical. We build the molecule with ``cart=True`` and remove the three p-like
   combinations (r^2 x, r^2 y, r^2 z) of every Cartesian f shell with the orthogonalizer of
   :func:`pure_f_orthogonalizer`, which the SCF applies through its eigen-solver hook (see
   :func:`factorlab.dft.scf.restricted_eigh`).

Element symbols and atomic numbers: QM9 has H, C, N, O and F only.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Atomic number -> element symbol, for the five QM9 elements.
SYMBOLS = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
#: Element symbol -> atomic number.
ATOMIC_NUMBER = {s: z for z, s in SYMBOLS.items()}
#: The two d exponents of Gaussian's 6-31G(2df,p) on C, N, O, F (twice and half of 6-31G*'s 0.8).
D_EXPONENTS = (1.6, 0.4)
#: The f exponent of Gaussian's 6-31G(2df,p) per heavy element (Frisch, Pople & Binkley 1984).
F_EXPONENTS = {"C": 0.8, "N": 1.0, "O": 1.4, "F": 1.85}
#: The p exponent on H (the ``,p`` of 6-31G(2df,p); the same as 6-31G**).
H_P_EXPONENT = 1.1
#: Basis functions per atom in Gaussian's 6D 7F convention: H 2s+3p; C..F 3s+6p (6-31G) + 2x6 d + 7 f.
NBF_PER_ATOM = {1: 5, 6: 28, 7: 28, 8: 28, 9: 28}
#: Basis functions per atom of 6-31G* with Cartesian d (Gaussian's default 6D), the optimisation level.
NBF_PER_ATOM_631GS = {1: 2, 6: 15, 7: 15, 8: 15, 9: 15}
#: Shells of angular momentum >= this are pure (spherical); lower ones Cartesian ("6D 7F").
PURE_FROM_L = 3


def check_atomic_numbers(z: Sequence[int]) -> np.ndarray:
    """``z`` as an int64 array [n]; ValueError when empty or holding an element QM9 lacks."""
    z = np.asarray(z, dtype=np.int64).reshape(-1)
    if z.size == 0:
        raise ValueError("a molecule needs at least one atom")
    bad = sorted({int(v) for v in z if int(v) not in SYMBOLS})
    if bad:
        raise ValueError(f"atomic numbers {bad} are not QM9 elements (H, C, N, O, F only: 1, 6, 7, 8, 9)")
    return z


def qm9_basis(elements: Sequence[str] = ("H", "C", "N", "O", "F")) -> dict:
    """PySCF basis dict of Gaussian's 6-31G(2df,p) for ``elements`` (symbols).

    6-31G from PySCF's table (identical to Gaussian's) plus, on C, N, O, F, d shells with
    exponents :data:`D_EXPONENTS` and an f shell with :data:`F_EXPONENTS`; on H a p shell
    with :data:`H_P_EXPONENT`. Every added shell is a single primitive with coefficient 1.
    """
    from pyscf import gto

    basis = {}
    for el in elements:
        if el not in ATOMIC_NUMBER:
            raise ValueError(f"element {el!r} is not a QM9 element (H, C, N, O, F)")
        shells = [list(s) for s in gto.basis.load("6-31g", el)]
        if el == "H":
            shells.append([1, [H_P_EXPONENT, 1.0]])
        else:
            shells += [[2, [D_EXPONENTS[0], 1.0]], [2, [D_EXPONENTS[1], 1.0]], [3, [F_EXPONENTS[el], 1.0]]]
        basis[el] = shells
    return basis


def build_molecule(z: Sequence[int], pos_angstrom, basis: str | dict | None = None, cart: bool = True,
                   charge: int = 0, spin: int = 0, verbose: int = 0):
    """A PySCF ``Mole`` of atoms ``z`` (atomic numbers [n]) at ``pos_angstrom`` (float [n, 3], Angstrom).

    Args:
        basis: ``None`` for QM9's basis (:func:`qm9_basis`), or any PySCF basis name or dict.
        cart: Cartesian shells (``True``, as the 6D 7F construction needs; the f shells are
            made pure by the SCF's orthogonalizer, not here).
        charge, spin: total charge and 2S (QM9: neutral closed-shell molecules, 0 and 0).

    Raises:
        ValueError: an element other than H, C, N, O, F; a shape mismatch; an odd electron
            count with ``spin=0``.
    """
    from pyscf import gto

    z = check_atomic_numbers(z)
    pos = np.asarray(pos_angstrom, dtype=np.float64)
    if pos.shape != (z.size, 3):
        raise ValueError(f"positions must have shape ({z.size}, 3) for {z.size} atoms, got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions hold a NaN or an infinity")
    n_elec = int(z.sum()) - charge
    if (n_elec - spin) % 2:
        raise ValueError(f"{n_elec} electrons cannot have 2S = {spin}: QM9 molecules are closed-shell "
                         "(an odd electron count means a radical or a charged species)")
    symbols = [SYMBOLS[int(v)] for v in z]
    if basis is None:
        basis = qm9_basis(sorted(set(symbols)))
    mol = gto.Mole()
    mol.atom = [(s, tuple(float(c) for c in p)) for s, p in zip(symbols, pos)]
    mol.unit = "Angstrom"
    mol.basis = basis
    mol.cart = cart
    mol.charge = charge
    mol.spin = spin
    mol.verbose = verbose
    mol.build(symmetry=False)
    return mol


def pure_f_orthogonalizer(mol, pure_from_l: int = PURE_FROM_L) -> np.ndarray:
    """Columns spanning Gaussian's "6D 7F" space inside a Cartesian (``cart=True``) basis.

    Returns ``X`` float64 [nao_cart, n]: the identity on every shell of angular momentum
    below ``pure_from_l`` (Cartesian d stays Cartesian), and on shells at or above it the
    columns of ``mol.cart2sph_coeff()`` that turn that shell's Cartesian functions into its
    ``2l + 1`` spherical ones (the 10 Cartesian f -> 7 pure f). ``X`` is block diagonal, one
    block per shell, so ``n = nao_cart - 3`` per f shell. It depends only on the shell
    structure, not on the geometry, so it stays valid when atoms move (gradients, Hessians).

    Raises:
        ValueError: ``mol`` is not Cartesian (a spherical basis needs no orthogonalizer).
    """
    import scipy.linalg

    if not mol.cart:
        raise ValueError("pure_f_orthogonalizer needs a Cartesian molecule (mol.cart = True)")
    c2s = mol.cart2sph_coeff()
    if isinstance(c2s, list):  # some PySCF versions return the per-shell blocks
        c2s = scipy.linalg.block_diag(*c2s)
    cart_loc = mol.ao_loc_nr(cart=True)
    sph_loc = mol.ao_loc_nr(cart=False)
    blocks = []
    for ib in range(mol.nbas):
        c0, c1 = cart_loc[ib], cart_loc[ib + 1]
        if mol.bas_angular(ib) >= pure_from_l:
            blocks.append(np.asarray(c2s[c0:c1, sph_loc[ib]:sph_loc[ib + 1]]))
        else:
            blocks.append(np.eye(c1 - c0))
    x = scipy.linalg.block_diag(*blocks)
    assert x.shape[0] == mol.nao_nr(cart=True)
    return x


def count_basis_functions(z: Sequence[int], per_atom: dict[int, int] = NBF_PER_ATOM) -> int:
    """Number of basis functions of QM9's basis in Gaussian's 6D 7F count (no PySCF needed)."""
    return int(sum(per_atom[int(v)] for v in check_atomic_numbers(z)))
