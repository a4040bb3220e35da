"""The three MNIST baselines of the thesis journal, written as the journal describes them.

All take images as float tensors [B, 1, 28, 28] (normalised by the caller) and return
logits [B, 10].
"""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """784-512-512-10 perceptron with ReLU and dropout ``p`` after each hidden layer.

    Baseline (a) of the journal: dropout 0.4, trained with SGD (lr 0.01, momentum 0.9).
    """

    def __init__(self, hidden: tuple[int, ...] = (512, 512), dropout: float = 0.4, n_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, 28, 28] -> logits [B, n_classes]."""
        return self.net(x)


class ConvNet1(nn.Module):
    """One convolution then a dense layer: baseline (b) of the journal.

    conv(1->``filters``, ``kernel`` x ``kernel``, stride 1, 'same' padding) -> ReLU ->
    flatten (``filters`` x 28 x 28) -> Linear(``hidden``) -> ReLU -> Linear(10). The journal
    states no pooling, so by default there is none (the dense layer then holds most of the
    parameters); ``pool=True`` adds 2x2 max-pooling after the ReLU, so the dense layer sees
    ``filters`` x 14 x 14. With the default ``pool=False`` the modules (and so a seeded
    initialisation) are those of the net without the option.
    """

    def __init__(self, filters: int = 32, kernel: int = 5, hidden: int = 100, n_classes: int = 10,
                 pool: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, filters, kernel, stride=1, padding=kernel // 2), nn.ReLU()]
        side = 28
        if pool:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(filters * side * side, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, 28, 28] -> logits [B, n_classes]."""
        return self.classifier(self.features(x))


class ConvNet2(nn.Module):
    """Two convolutions of ``filters`` filters, each followed by ReLU and 2x2 max-pooling, then a
    linear classifier: baseline (c) of the journal.

    The journal gives neither kernel size nor a hidden dense layer; by default we use 3x3
    'same' convolutions (``kernel``, odd) and a single Linear(``filters`` x 7 x 7 -> 10).
    ``hidden`` (units) puts a dense layer with ReLU before the output instead:
    Linear(``filters`` x 7 x 7 -> ``hidden``) -> ReLU -> Linear(``hidden`` -> 10). With the
    default ``hidden=None`` the modules (and so a seeded initialisation) are those of the net
    without the option.
    """

    def __init__(self, filters: int = 32, kernel: int = 3, n_classes: int = 10, hidden: int | None = None):
        super().__init__()
        pad = kernel // 2
        self.features = nn.Sequential(
            nn.Conv2d(1, filters, kernel, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(filters, filters, kernel, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        )
        head: list[nn.Module] = ([nn.Linear(filters * 7 * 7, n_classes)] if hidden is None else
                                 [nn.Linear(filters * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)])
        self.classifier = nn.Sequential(nn.Flatten(), *head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, 28, 28] -> logits [B, n_classes]."""
        return self.classifier(self.features(x))


MNIST_MODELS = {"mlp": MLP, "conv1": ConvNet1, "conv2": ConvNet2}


def build_mnist_model(name: str, **kwargs) -> nn.Module:
    """Build one of :data:`MNIST_MODELS` by name."""
    if name not in MNIST_MODELS:
        raise ValueError(f"unknown MNIST model {name!r}: choose one of {sorted(MNIST_MODELS)}")
    return MNIST_MODELS[name](**kwargs)
