"""QM9's elements, units and the 19 regression targets (PyTorch Geometric's order and units).

Constants only (no I/O): the five elements and their atomic numbers, the Hartree-to-eV factor,
the free atoms' reference energies, and :data:`TARGETS` with their units.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: The five QM9 elements in PyG's order; a node's ``element`` feature indexes this tuple.
ELEMENTS = ("H", "C", "N", "O", "F")
ATOMIC_NUMBERS = (1, 6, 7, 8, 9)
#: CODATA 2018 Hartree energy in eV (PyG's ``HAR2EV``).
HARTREE_TO_EV = 27.211386246
#: Energies of the free atoms (Hartree) at B3LYP/6-31G(2df,p), from the QM9 release's
#: ``atomref.txt``: columns U0 (0 K), U, H, G (298.15 K); rows in :data:`ELEMENTS` order.
ATOMREF_HARTREE = np.array([
    [-0.500273, -0.498857, -0.497912, -0.510927],      # H
    [-37.846772, -37.845355, -37.844411, -37.861317],  # C
    [-54.583861, -54.582445, -54.581501, -54.598897],  # N
    [-75.064579, -75.063163, -75.062219, -75.079532],  # O
    [-99.718730, -99.717314, -99.716370, -99.733544],  # F
])


class Target(NamedTuple):
    """One regression target: its column in ``y``, short name, unit and meaning."""

    index: int
    name: str
    unit: str
    description: str


#: The 19 targets in PyTorch Geometric's QM9 order and units.
TARGETS: tuple[Target, ...] = (
    Target(0, "mu", "D", "dipole moment"),
    Target(1, "alpha", "a0^3", "isotropic polarizability"),
    Target(2, "homo", "eV", "HOMO energy"),
    Target(3, "lumo", "eV", "LUMO energy"),
    Target(4, "gap", "eV", "HOMO-LUMO gap"),
    Target(5, "r2", "a0^2", "electronic spatial extent <R^2>"),
    Target(6, "zpve", "eV", "zero-point vibrational energy"),
    Target(7, "U0", "eV", "internal energy at 0 K"),
    Target(8, "U", "eV", "internal energy at 298.15 K"),
    Target(9, "H", "eV", "enthalpy at 298.15 K"),
    Target(10, "G", "eV", "free energy at 298.15 K"),
    Target(11, "Cv", "cal/(mol K)", "heat capacity at 298.15 K"),
    Target(12, "U0_atom", "eV", "atomization energy of U0"),
    Target(13, "U_atom", "eV", "atomization energy of U"),
    Target(14, "H_atom", "eV", "atomization enthalpy"),
    Target(15, "G_atom", "eV", "atomization free energy"),
    Target(16, "A", "GHz", "rotational constant A"),
    Target(17, "B", "GHz", "rotational constant B"),
    Target(18, "C", "GHz", "rotational constant C"),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)


def target_index(name: str) -> int:
    """Column of target ``name`` (one of :data:`TARGET_NAMES`) in ``y``."""
    try:
        return TARGET_NAMES.index(name)
    except ValueError:
        raise KeyError(f"unknown QM9 target {name!r}; expected one of {TARGET_NAMES}") from None

