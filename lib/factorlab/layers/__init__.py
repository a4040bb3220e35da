"""Factorized replacements for ``nn.Linear`` and ``nn.Conv2d``, one family per module.

Every layer has ``num_params()``, ``flops(input_shape)``, ``dense_weight()``,
``compression()``, a constructor taking ``rank`` or a parameter budget (``target_params`` /
``compression``), and ``from_dense(layer, rank)`` decomposing a trained dense layer. See
``factorlab.layers.base`` for the counting conventions.
"""
from factorlab.layers.base import FactorizedLayer, factorize_dim, reconstruction_error
from factorlab.layers.conv import FactorizedConv2d
from factorlab.layers.cp import CPConv2d, CPLinear
from factorlab.layers.linear import FactorizedLinear
from factorlab.layers.lowrank import LowRankConv2d, LowRankLinear, bottleneck_rank
from factorlab.layers.separable import SeparableConv2d
from factorlab.layers.tt import TTConv2d, TTLinear
from factorlab.layers.tucker import TuckerConv2d, TuckerLinear

#: Linear families by name.
LINEAR_LAYERS = {"lowrank": LowRankLinear, "cp": CPLinear, "tucker": TuckerLinear, "tt": TTLinear}
#: Conv2d families by name.
CONV_LAYERS = {"separable": SeparableConv2d, "lowrank": LowRankConv2d, "cp": CPConv2d, "tucker": TuckerConv2d,
               "tt": TTConv2d}

__all__ = ["CONV_LAYERS", "CPConv2d", "CPLinear", "FactorizedConv2d", "FactorizedLayer", "FactorizedLinear",
           "LINEAR_LAYERS", "LowRankConv2d", "LowRankLinear", "SeparableConv2d", "TTConv2d", "TTLinear",
           "TuckerConv2d", "TuckerLinear", "bottleneck_rank", "factorize_dim", "reconstruction_error"]
