"""The DFT side of the molecule demo: QM9's 19 properties from PySCF at QM9's own level of
theory, B3LYP/6-31G(2df,p) as Gaussian defines it (see NOTES.md and the demo issue).

- :mod:`~factorlab.dft.basis`: Gaussian's 6-31G(2df,p) (d exponents 1.6/0.4, 6D 7F), the
  molecule from atomic numbers and Angstrom positions, the pure-f orthogonalizer.
- :mod:`~factorlab.dft.scf`: the RKS object (``b3lypg``) with the orthogonalizer in its
  eigen-solver hook.
- :mod:`~factorlab.dft.properties`: HOMO/LUMO/gap, dipole, <R^2>, energy, CPKS polarizability,
  Hessian and harmonic thermochemistry, rotational constants, atomization energies.
- :mod:`~factorlab.dft.cost`: cost estimates from the number of basis functions.
- :mod:`~factorlab.dft.geometry`: input validation, QM9 lookup, RDKit + geomeTRIC geometries.
- :mod:`~factorlab.dft.compute`: :func:`compute_properties` (atoms -> :class:`DFTResult`) and
  :func:`predict_dft` (SMILES -> geometry + result).

PySCF is imported by these modules; RDKit only inside the geometry functions.
"""
from factorlab.dft.basis import (D_EXPONENTS, F_EXPONENTS, H_P_EXPONENT, build_molecule, count_basis_functions,
                                 pure_f_orthogonalizer, qm9_basis)
from factorlab.dft.compute import (LEVEL, DFTResult, Prediction, TooExpensiveError, compare_to_qm9,
                                   compute_properties, predict_dft)
from factorlab.dft.cost import CostEstimate, estimate_cost
from factorlab.dft.geometry import (Geometry, QM9Match, canonical_smiles, embed, find_in_qm9, molecule_geometry,
                                    optimize_geometry, parse_smiles, qm9_atoms, qm9_reference)
from factorlab.dft.properties import (atomization_energies, harmonic_analysis, isotropic_polarizability,
                                      polarizability_tensor, rotational_constants, scf_properties,
                                      thermochemistry)
from factorlab.dft.scf import XC, make_scf, restrict_orbital_space, restricted_eigh, run_scf

__all__ = ["D_EXPONENTS", "F_EXPONENTS", "H_P_EXPONENT", "LEVEL", "XC", "CostEstimate", "DFTResult", "Geometry",
           "Prediction", "QM9Match", "TooExpensiveError", "atomization_energies", "build_molecule",
           "canonical_smiles", "compare_to_qm9", "compute_properties", "count_basis_functions", "embed",
           "estimate_cost", "find_in_qm9", "harmonic_analysis", "isotropic_polarizability", "make_scf",
           "molecule_geometry", "optimize_geometry", "parse_smiles", "polarizability_tensor", "predict_dft",
           "pure_f_orthogonalizer", "qm9_atoms", "qm9_basis", "qm9_reference", "restrict_orbital_space",
           "restricted_eigh",
           "rotational_constants", "run_scf", "scf_properties", "thermochemistry"]
