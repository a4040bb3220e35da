"""Multitask learning on QM9: metrics comparing multitask with single-task models, soft
parameter sharing (an L2 penalty between task networks, :mod:`factorlab.mtl.soft`; cross-stitch
units, :mod:`factorlab.mtl.cross_stitch`), loss weighting for hard sharing
(:mod:`factorlab.mtl.weighting`), task-relatedness measures (:mod:`factorlab.mtl.label_dependence`,
:mod:`factorlab.mtl.task_affinity`, :mod:`factorlab.mtl.encoder_swap`, results as
:class:`~factorlab.mtl.relatedness.Relatedness`), tensor-factorized MTL (:mod:`factorlab.mtl.factorized`:
the learned sharing of task-factorized layers) and grouping tasks into networks from pair gains or a
measure (``factorlab.mtl.grouping``: exact best partitions, clustering, the noise ceiling)."""
from factorlab.mtl.cross_stitch import CrossStitch, CrossStitchGINE, stitch_init
from factorlab.mtl.metrics import CHEMICAL_ACCURACY, accuracy_ratio, delta_m
from factorlab.mtl.encoder_swap import EncoderSwap, encoder_swap
from factorlab.mtl.factorized import (LayerSharing, TaskFactorizedConv2d, TaskFactorizedLinear, from_single_task_layers,
                                      from_task_weights, layer_sharing, task_sharing)
from factorlab.mtl.label_dependence import LABEL_MEASURES, distance_correlation_matrix, label_dependence
from factorlab.mtl.relatedness import Relatedness
from factorlab.mtl.soft import SoftSharingPenalty, check_lambda, encoder_layers, is_hard, pairwise_sq_distance
from factorlab.mtl.task_affinity import GradientCosine, LookaheadAffinity
from factorlab.mtl.weighting import FAMO, WEIGHTINGS, EqualWeighting, UncertaintyWeighting, make_weighting

__all__ = ["CHEMICAL_ACCURACY", "CrossStitch", "CrossStitchGINE", "SoftSharingPenalty", "accuracy_ratio",
           "check_lambda", "delta_m", "encoder_layers", "is_hard", "pairwise_sq_distance", "stitch_init",
           "EncoderSwap", "encoder_swap", "LABEL_MEASURES", "distance_correlation_matrix", "label_dependence",
           "Relatedness", "GradientCosine", "LookaheadAffinity", "FAMO", "WEIGHTINGS", "EqualWeighting",
           "UncertaintyWeighting", "make_weighting",
           "LayerSharing", "TaskFactorizedConv2d", "TaskFactorizedLinear", "from_single_task_layers",
           "from_task_weights", "layer_sharing", "task_sharing"]
