"""Factorized replacements for ``nn.Linear`` and ``nn.Conv2d``, one family per module.

Every layer has ``num_params()``, ``flops(input_shape)``, ``dense_weight()``,
``compression()``, ``reset_parameters()``, a constructor taking ``rank`` or a parameter budget
(``target_params`` / ``compression``), and ``from_dense(layer, rank)`` decomposing a trained
dense layer. Each family's conversions between factors and the dense weight are plain
functions (``cp_to_weight(out_factors, in_factors)``, ``weight_to_cp(weight, rank, ...)``,
...), which the layer classes wrap. See ``factorlab.layers.base`` for the counting
conventions and what the classes share. ``factorlab.layers.task`` holds T task-specific
layers as one factorized tensor with a task mode (LAF, Tucker, TT; DMTRL).

Every layer lists its candidate computations (``candidates(input_shape)``: contraction orders,
partial rebuilds, the rebuilt dense weight, channels-last variants) and picks one per input
shape and mode: measured when ``autotune(True)`` is on (globally or per layer), else by a
roofline cost model calibrated once per machine and kept in a file (every process on the
machine chooses alike; ``FACTORLAB_PATH_COST=flops``: the FLOP rule, alike on every machine);
``path_choices()`` shows what it picked and why, ``model_path_record(model)`` is what run
records keep. ``flops(shape)`` stays the machine-independent count of the layer's canonical
path; ``chosen_flops(shape)`` counts the chosen one. See ``factorlab.layers.paths``.
"""
from factorlab.layers.base import FactorizedLayer, factorize_dim, reconstruction_error
from factorlab.layers.conv import FactorizedConv2d
from factorlab.layers.cp import CPConv2d, CPLinear, conv_weight_to_cp, cp_to_conv_weight, cp_to_weight, weight_to_cp
from factorlab.layers.linear import FactorizedLinear
from factorlab.layers.paths import (Candidate, Machine, autotune, calibrate, calibration_file, cost_model_info,
                                   is_autotune_enabled, machine, model_path_choices, model_path_record, recalibrate,
                                   use_machine)
from factorlab.layers.lowrank import (LowRankConv2d, LowRankLinear, bottleneck_rank, conv_weight_to_lowrank,
                                      lowrank_to_conv_weight, lowrank_to_weight, weight_to_lowrank)
from factorlab.layers.separable import SeparableConv2d, conv_weight_to_separable, separable_to_conv_weight
from factorlab.layers.task import (TaskFactorizedConv2d, TaskFactorizedLayer, TaskFactorizedLinear,
                                   from_single_task_layers, from_task_weights)
from factorlab.layers.tt import TTConv2d, TTLinear, conv_weight_to_tt, tt_to_conv_weight, tt_to_weight, weight_to_tt
from factorlab.layers.tucker import (TuckerConv2d, TuckerLinear, conv_weight_to_tucker2, tucker2_to_conv_weight,
                                     tucker_to_weight, weight_to_tucker)

#: Linear families by name.
LINEAR_LAYERS = {"lowrank": LowRankLinear, "cp": CPLinear, "tucker": TuckerLinear, "tt": TTLinear}
#: Conv2d families by name.
CONV_LAYERS = {"separable": SeparableConv2d, "lowrank": LowRankConv2d, "cp": CPConv2d, "tucker": TuckerConv2d,
               "tt": TTConv2d}

__all__ = ["Candidate", "Machine", "autotune", "calibrate", "calibration_file", "cost_model_info",
           "is_autotune_enabled", "machine", "model_path_choices", "model_path_record", "recalibrate", "use_machine",
           "CONV_LAYERS", "CPConv2d", "CPLinear", "FactorizedConv2d", "FactorizedLayer", "FactorizedLinear",
           "LINEAR_LAYERS", "LowRankConv2d", "LowRankLinear", "SeparableConv2d", "TTConv2d", "TTLinear",
           "TuckerConv2d", "TuckerLinear", "bottleneck_rank",
           # T task weights as one factorized tensor with a task mode (DMTRL)
           "TaskFactorizedConv2d", "TaskFactorizedLayer", "TaskFactorizedLinear", "from_single_task_layers",
           "from_task_weights", "factorize_dim", "reconstruction_error",
           # factor <-> weight conversions
           "conv_weight_to_cp", "conv_weight_to_lowrank", "conv_weight_to_separable", "conv_weight_to_tt",
           "conv_weight_to_tucker2", "cp_to_conv_weight", "cp_to_weight", "lowrank_to_conv_weight",
           "lowrank_to_weight", "separable_to_conv_weight", "tt_to_conv_weight", "tt_to_weight",
           "tucker2_to_conv_weight", "tucker_to_weight", "weight_to_cp", "weight_to_lowrank", "weight_to_tt",
           "weight_to_tucker"]
