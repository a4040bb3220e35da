"""Multitask learning on QM9: metrics comparing multitask with single-task models, soft
parameter sharing (an L2 penalty between task networks, :mod:`factorlab.mtl.soft`; cross-stitch
units, :mod:`factorlab.mtl.cross_stitch`) and, in later chapters, task relatedness, grouping
and tensor-factorized MTL."""
from factorlab.mtl.cross_stitch import CrossStitch, CrossStitchGINE, stitch_init
from factorlab.mtl.metrics import CHEMICAL_ACCURACY, accuracy_ratio, delta_m
from factorlab.mtl.soft import SoftSharingPenalty, check_lambda, encoder_layers, is_hard, pairwise_sq_distance

__all__ = ["CHEMICAL_ACCURACY", "CrossStitch", "CrossStitchGINE", "SoftSharingPenalty", "accuracy_ratio",
           "check_lambda", "delta_m", "encoder_layers", "is_hard", "pairwise_sq_distance", "stitch_init"]
