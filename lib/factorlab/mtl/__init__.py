"""Multitask learning on QM9: metrics comparing multitask with single-task models (and, in
later chapters, soft sharing, task relatedness, grouping and tensor-factorized MTL)."""
from factorlab.mtl.metrics import CHEMICAL_ACCURACY, accuracy_ratio, delta_m

__all__ = ["CHEMICAL_ACCURACY", "accuracy_ratio", "delta_m"]
