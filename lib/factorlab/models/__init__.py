"""Models: MNIST baselines, graph networks for QM9 (and, in later chapters, CIFAR-10 nets)."""
from factorlab.models.counting import count_flops, count_params
from factorlab.models.cifar import CIFAR_MODELS, AirbenchNet, ResNet9, build_cifar_model
from factorlab.models.grouped import GroupedLinear, TaskHeads
from factorlab.models.mnist import MLP, MNIST_MODELS, ConvNet1, ConvNet2, build_mnist_model
from factorlab.models.qm9 import (QM9_MODELS, GINEEncoder, QM9GINE, QM9Model, QM9SchNet, SchNetEncoder,
                                  build_qm9_model, molecule_pairs)
from factorlab.models.stack import ModelStack, member_state, num_members, stack_models, unstack

__all__ = ["MLP", "MNIST_MODELS", "ConvNet1", "ConvNet2", "GINEEncoder", "GroupedLinear", "ModelStack", "QM9GINE",
           "QM9Model", "QM9SchNet", "QM9_MODELS", "SchNetEncoder", "TaskHeads", "build_mnist_model",
           "build_qm9_model", "count_flops", "count_params", "member_state", "molecule_pairs", "num_members",
           "stack_models", "unstack"]
__all__ += ["AirbenchNet", "CIFAR_MODELS", "ResNet9", "build_cifar_model"]
