"""The SCF at QM9's level of theory: RKS B3LYP (Gaussian's, VWN-RPA: ``b3lypg``) in the
6D 7F basis of :mod:`factorlab.dft.basis`.

How the f shells are made pure. PySCF (2.14) solves ``F C = S C e`` by canonical
orthogonalization: once per SCF, ``hf.kernel`` asks the SCF object for an orthogonalizer,
``x = mf.check_linear_dependency(S)`` (``x^T S x = 1``; by default all eigenvectors of ``S``,
fewer when the basis is nearly linearly dependent), and then uses that ``x`` everywhere: each
diagonalization ``mf.eig(F, S, x=x)`` -> ``mf._eigh`` solves ``x^T F x c = c e`` and returns
``C = x c`` (``nmo <= nao`` columns), and DIIS measures its error ``x^T (FDS - SDF) x`` in the
same orthonormal basis (``Corth``). This linear-dependency hook is the place to restrict the
orbital space: :func:`restrict_orbital_space` makes ``check_linear_dependency`` return
``x = P U w^{-1/2}`` (``P^T S P = U w U^T``), with ``P`` from
:func:`~factorlab.dft.basis.pure_f_orthogonalizer` (Cartesian s, p, d; pure f), and ``_eigh``
use the same ``x`` when called without one. The
orbitals then live exactly in Gaussian's 6D 7F space while PySCF computes every integral in
the Cartesian basis; everything downstream (occupations, density matrix, energy, gradients,
Hessian, CPKS responses) works with ``mo_coeff`` of shape ``[nao, nmo]``. Overriding ``_eigh``
alone (as ``scf.addons.remove_linear_dep_`` does) would leave DIIS working in the full
Cartesian space, where the commutator does not vanish at convergence.
"""
from __future__ import annotations

import numpy as np

from factorlab.dft.basis import pure_f_orthogonalizer

#: Gaussian's B3LYP (VWN-RPA correlation; in PySCF 2.14 ``b3lyp`` is the same, ``b3lyp5`` is not).
XC = "b3lypg"
#: Default integration grid: (radial, angular) points per atom, Gaussian 09's default FineGrid size.
GRID = (75, 302)
#: Auxiliary basis for density fitting (optional, ~3.5x faster SCF for nine heavy atoms).
AUXBASIS = "def2-universal-jkfit"


def restricted_orthogonalizer(p: np.ndarray, s: np.ndarray, min_eig: float = 1e-10) -> np.ndarray:
    """``x = p U w^{-1/2}`` [nao, n] with ``p^T s p = U w U^T``: canonical orthogonalization of
    the columns of ``p`` in the metric ``s``, so ``x^T s x = 1`` and ``x`` spans exactly the
    columns of ``p``.

    Raises:
        ValueError: ``p^T s p`` has an eigenvalue below ``min_eig`` (the kept functions are
            themselves linearly dependent).
    """
    w, u = np.linalg.eigh(p.T @ s @ p)
    if w[0] < min_eig:
        raise ValueError(f"the restricted basis is linearly dependent (smallest overlap eigenvalue "
                         f"{w[0]:.2e} < {min_eig:.0e})")
    return p @ (u / np.sqrt(w))


def restricted_eigh(p: np.ndarray):
    """An ``_eigh(h, s, overwrite=False, x=None) -> (e [n], C [nao, n])`` for a PySCF SCF
    object that solves ``h C = s C e`` inside the span of the columns of ``p`` [nao, n]. With
    ``x`` given (PySCF passes the orthogonalizer of ``check_linear_dependency``) it is used as
    is; without, it is built from ``s`` (:func:`restricted_orthogonalizer`), so the hook stays
    right when the molecule moves."""
    import scipy.linalg

    p = np.asarray(p, dtype=np.float64)

    def eigh(h, s, overwrite=False, x=None):
        if x is None:
            x = restricted_orthogonalizer(p, s)
        e, c = scipy.linalg.eigh(x.T @ h @ x)
        c = x @ c
        idx = np.argmax(np.abs(c), axis=0)  # PySCF's phase convention: largest component positive
        c[:, c[idx, np.arange(c.shape[1])] < 0] *= -1
        return e, c

    eigh.orthogonalizer = p
    return eigh


def restrict_orbital_space(mf, p: np.ndarray):
    """Make the SCF object ``mf`` (in place; returned) solve for orbitals in the span of the
    columns of ``p`` [nao, n] through its linear-dependency hook (``check_linear_dependency``,
    whose orthogonalizer the SCF kernel uses for every diagonalization and for DIIS) and its
    eigen-solver hook ``_eigh`` (for callers that pass no orthogonalizer)."""
    p = np.asarray(p, dtype=np.float64)

    def check_linear_dependency(s, verbose=None):
        return restricted_orthogonalizer(p, s)

    mf.check_linear_dependency = check_linear_dependency
    mf._eigh = restricted_eigh(p)
    return mf


def make_scf(mol, xc: str = XC, pure_f: bool | None = None, density_fit: bool = False,
             grid: tuple[int, int] | int = GRID, conv_tol: float = 1e-10, max_cycle: int = 100,
             callback=None):
    """An RKS object for ``mol`` (not yet run).

    Args:
        xc: the functional (default Gaussian's B3LYP, ``b3lypg``).
        pure_f: restrict f shells to pure functions (6D 7F) through :func:`restrict_orbital_space`;
            default: when ``mol.cart`` and the basis has f shells.
        density_fit: density fitting of the Coulomb and exchange terms with :data:`AUXBASIS`
            (faster; changes the energy by ~1e-5 Hartree per atom).
        grid: ``(radial, angular)`` points per atom, or a PySCF grid level (0-9).
        conv_tol: energy convergence (Hartree); the gradient threshold is PySCF's default
            (its square root).
        callback: called with PySCF's local variables after each SCF cycle (progress).
    """
    from pyscf import dft

    mf = dft.RKS(mol)
    mf.xc = xc
    if isinstance(grid, int):
        mf.grids.level = grid
    else:
        mf.grids.atom_grid = tuple(grid)
    mf.conv_tol = conv_tol
    mf.max_cycle = max_cycle
    mf.verbose = mol.verbose
    if callback is not None:
        mf.callback = callback
    has_f = any(mol.bas_angular(i) >= 3 for i in range(mol.nbas))
    if pure_f is None:
        pure_f = bool(mol.cart and has_f)
    if pure_f:
        restrict_orbital_space(mf, pure_f_orthogonalizer(mol))
    if density_fit:
        mf = mf.density_fit(auxbasis=AUXBASIS)
    return mf


def run_scf(mol, **kwargs):
    """Run :func:`make_scf` (same arguments) to convergence; RuntimeError when it does not converge."""
    mf = make_scf(mol, **kwargs)
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"the SCF did not converge in {mf.max_cycle} cycles (last energy {mf.e_tot:.8f} Eh)")
    return mf
