"""QM9: the qm9pack table, PyG's 19 targets, RDKit graphs with B3LYP coordinates, a compact
cache, a seeded split, and batches of molecular graphs built on the device by index.

One module per job, every public name re-exported here (``from factorlab.data.qm9 import X``):

- :mod:`~factorlab.data.qm9.targets`: the elements, units and the 19 targets (constants);
- :mod:`~factorlab.data.qm9.source`: where the table comes from, reading and validating it,
  its atoms and targets as arrays;
- :mod:`~factorlab.data.qm9.features`: RDKit graphs matched onto the XYZ atoms (featurization);
- :mod:`~factorlab.data.qm9.cache`: the featurized arrays and the processed cache
  ``data/processed/qm9.pt``;
- :mod:`~factorlab.data.qm9.graphs`: the split, :class:`QM9Data` on a device, batches of
  graphs (:class:`QM9Batch`, :class:`QM9Loader`) and graphs of new molecules.
"""
from factorlab.data.qm9.cache import (CACHE_KEYS, CACHE_VERSION, assemble_arrays, build_arrays, load_qm9_arrays,
                                      qm9_cache_path)
from factorlab.data.qm9.features import featurize_chunk, featurize_molecule, featurize_smiles, pack_atoms
from factorlab.data.qm9.graphs import (ATOM_FEATURES, QM9_SPLIT_SIZES, QM9Batch, QM9Data, QM9Loader,
                                       graphs_for_prediction, load_qm9, pyg_edge_features, pyg_node_features,
                                       qm9_split)
from factorlab.data.qm9.source import (QM9_COLUMNS, QM9_FIXTURE, QM9_NUM_MOLECULES, QM9PACK_PARTS, QM9PACK_WHEEL,
                                       find_qm9_source, parse_atoms, qm9_targets, read_qm9_table)
from factorlab.data.qm9.targets import (ATOMIC_NUMBERS, ATOMREF_HARTREE, ELEMENTS, HARTREE_TO_EV, TARGET_NAMES, TARGETS,
                                        Target, target_index)

__all__ = ["ATOMIC_NUMBERS", "ATOMREF_HARTREE", "ATOM_FEATURES", "CACHE_KEYS", "CACHE_VERSION", "ELEMENTS",
           "HARTREE_TO_EV", "QM9Batch", "QM9Data", "QM9Loader", "QM9PACK_PARTS", "QM9PACK_WHEEL", "QM9_COLUMNS",
           "QM9_FIXTURE", "QM9_NUM_MOLECULES", "QM9_SPLIT_SIZES", "TARGETS", "TARGET_NAMES", "Target",
           "assemble_arrays", "build_arrays", "featurize_chunk", "featurize_molecule", "featurize_smiles",
           "find_qm9_source", "graphs_for_prediction", "load_qm9", "load_qm9_arrays", "pack_atoms",
           "parse_atoms", "pyg_edge_features", "pyg_node_features", "qm9_cache_path", "qm9_split",
           "qm9_targets", "read_qm9_table", "target_index"]
