"""Models: MNIST baselines, graph networks for QM9, fast CIFAR-10 nets.

The QM9 models (PyTorch Geometric) and the CIFAR nets (the factorized layers) are imported on
first use of one of their names, so that importing ``factorlab.models`` for an MNIST net does
not pay for torch_geometric; ``from factorlab.models import QM9GINE`` works as before.
"""
import importlib

from factorlab.models.counting import compressed_modules, count_flops, count_params
from factorlab.models.mnist import MLP, MNIST_MODELS, ConvNet1, ConvNet2, build_mnist_model
from factorlab.models.stack import ModelStack, member_state, num_members, stack_models, unstack

#: Names imported on first use, by module.
_LAZY = {
    "factorlab.models.cifar": ("AirbenchNet", "CIFAR_MODELS", "ResNet9", "build_cifar_model"),
    "factorlab.models.grouped": ("GroupedLinear", "TaskHeads"),
    "factorlab.models.qm9": ("QM9_MODELS", "GINEEncoder", "QM9GINE", "QM9Model", "QM9SchNet", "SchNetEncoder",
                             "build_qm9_model", "molecule_pairs"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))


__all__ = ["MLP", "MNIST_MODELS", "ConvNet1", "ConvNet2", "ModelStack", "build_mnist_model", "compressed_modules",
           "count_flops", "count_params", "member_state", "num_members", "stack_models", "unstack", *_WHERE]
