"""Models: MNIST baselines (and, in later chapters, CIFAR-10 and QM9 networks)."""
from factorlab.models.counting import count_flops, count_params
from factorlab.models.mnist import MLP, MNIST_MODELS, ConvNet1, ConvNet2, build_mnist_model

__all__ = ["MLP", "MNIST_MODELS", "ConvNet1", "ConvNet2", "build_mnist_model", "count_flops", "count_params"]
