r"""Soft parameter sharing: ``K`` task networks of one architecture, trained together as one
grouped stack (:mod:`factorlab.models.stack`), each with its own encoder and head, pulled
together by an L2 penalty between corresponding parameters of chosen layers.

.. math::
    \mathcal{L} = \sum_k \mathrm{MSE}_k + \lambda \sum_{l \in \mathcal{S}}
    \sum_{i<j} \lVert \theta^{(l)}_i - \theta^{(l)}_j \rVert^2

with ``MSE_k`` the mean squared error of task ``k`` on standardized targets (so each term is
about 1 at the start and the data loss is a sum over the ``K`` tasks) and :math:`\mathcal{S}`
the constrained layers (default: every encoder layer; the heads stay free). This is the
journal's own, unnormalised form, so ``λ`` compares directly with the journal's values (its
"optimal λ close to 0.1"), given a data loss of about one unit per task. A reader who prefers
a weight *per constrained parameter* uses :math:`\lambda N`, with ``N`` the number of
constrained parameters of *one* member (``constrained_params``, stored in every record). Why
not divide by ``N``: the penalty's gradient on one parameter, :math:`2 \lambda K (\theta_i -
\bar\theta)`, does not shrink as the network grows, and neither do the data gradients it
competes with, so the ``λ`` at which the coupling takes over does not grow with ``N``; divided
by ``N``, a grid of powers of ten up to 100 would barely couple a network of tens of thousands
of parameters.

The endpoints are exact, not limits: ``λ = 0`` trains *no* penalty term (the single-task
stack's own code path) and ``λ = ∞`` is hard sharing, one tied encoder with ``K`` heads
(:func:`is_hard`); :class:`SoftSharingPenalty` only accepts finite ``λ >= 0``.

The pairwise sum uses :math:`\sum_{i<j} \lVert a_i - a_j \rVert^2 = K \sum_i \lVert a_i -
\bar a \rVert^2` (``O(K)`` instead of ``O(K^2)`` memory).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from factorlab.models.stack import num_members


def check_lambda(lam: float) -> float:
    """``lam`` as a float if it is ``>= 0`` (``inf`` allowed: hard sharing); ValueError naming
    the valid values for a negative, NaN or non-numeric ``lam``."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise ValueError(f"soft-sharing lambda must be a number >= 0 or inf, got {lam!r}") from None
    if math.isnan(value) or value < 0:
        raise ValueError(f"soft-sharing lambda must be a number >= 0 or inf (hard sharing), got {lam!r}")
    return value


def is_hard(lam: float) -> bool:
    """Whether ``lam`` is the hard-sharing endpoint (``inf``)."""
    return math.isinf(check_lambda(lam))


def pairwise_sq_distance(stacked: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{i<j} \lVert a_i - a_j \rVert^2` of the rows of ``stacked`` [K, P] (a scalar)."""
    k = stacked.shape[0]
    centred = stacked - stacked.mean(0, keepdim=True)
    return k * centred.pow(2).sum()


def _member_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """Parameter shapes of one member (a ``groups=1`` model of the same hyper-parameters)."""
    template = type(model)(**{**model.hparams, "groups": 1})
    return {name: p.shape for name, p in template.named_parameters()}


def encoder_layers(model: nn.Module) -> list[str]:
    """Names of the modules under ``model.encoder`` that own parameters directly (e.g.
    ``encoder.node_in``, ``encoder.convs.0.nn.0``), in module order: the default layers a
    soft-sharing penalty constrains."""
    return [f"encoder.{name}" if name else "encoder" for name, module in model.encoder.named_modules()
            if any(True for _ in module.parameters(recurse=False))]


class SoftSharingPenalty:
    """The penalty ``λ · Σ_layers Σ_{i<j} ‖θ_i − θ_j‖²`` on a grouped stack ``model``
    (``constrained_params`` = ``N``, the constrained parameters of one member, for the
    per-parameter reading ``λ N``).

    Args:
        model: a grouped stack of ``K >= 2`` members (e.g. ``QM9GINE(groups=K)``) whose
            parameters are group-major (member ``k`` owns the ``k``-th block).
        lam: finite ``λ >= 0`` (``inf`` is hard sharing: train a tied encoder instead).
        layers: module names to constrain (default :func:`encoder_layers`); each must own
            parameters. Parameters held once for all members (none in QM9GINE) are skipped.

    Calling it returns the penalty (a scalar tensor with gradients);
    :meth:`distances` gives the relative distance per layer for the history.
    """

    def __init__(self, model: nn.Module, lam: float, layers: list[str] | None = None):
        lam = check_lambda(lam)
        if math.isinf(lam):
            raise ValueError("lambda = inf is hard sharing: train one tied encoder (sharing='hard'), "
                             "not a penalty")
        self.k = num_members(model)
        if self.k < 2 or not hasattr(model, "hparams"):
            raise ValueError(f"soft sharing needs a grouped stack of at least 2 members, got {type(model).__name__} "
                             f"with {self.k}")
        self.lam = lam
        valid = encoder_layers(model) + [f"heads{'.' + n if n else ''}" for n, m in model.heads.named_modules()
                                         if any(True for _ in m.parameters(recurse=False))]
        self.layers = list(encoder_layers(model) if layers is None else layers)
        unknown = [name for name in self.layers if name not in valid]
        if unknown or not self.layers:
            raise ValueError(f"unknown soft-sharing layer(s) {unknown or self.layers}: choose from {', '.join(valid)}")
        shapes = _member_shapes(model)
        params = dict(model.named_parameters())
        self.groups: dict[str, list[torch.Tensor]] = {}
        self.constrained_params = 0
        for layer in self.layers:
            members = []
            for name, p in params.items():
                if name.rsplit(".", 1)[0] != layer:
                    continue
                one = shapes[name]
                if p.shape == one:  # held once for every member: nothing to pull together
                    continue
                members.append(p)
                self.constrained_params += one.numel()
            self.groups[layer] = members
        if self.constrained_params == 0:
            raise ValueError(f"layers {self.layers} hold no per-member parameters to constrain")

    def _stacked(self, layer: str) -> torch.Tensor:
        """The layer's per-member parameters as rows [K, P_layer]."""
        return torch.cat([p.reshape(self.k, -1) for p in self.groups[layer]], dim=1)

    def raw(self) -> torch.Tensor:
        r""":math:`\sum_l \sum_{i<j} \lVert \theta^{(l)}_i - \theta^{(l)}_j \rVert^2` (unnormalised)."""
        return sum(pairwise_sq_distance(self._stacked(layer)) for layer in self.layers)

    def __call__(self) -> torch.Tensor:
        """``λ`` times :meth:`raw`: the term added to the data loss."""
        return self.raw() * self.lam

    @torch.no_grad()
    def distances(self) -> dict[str, float]:
        """Per layer, the root-mean-square distance between two members' parameters over the
        root-mean-square norm of one member's: ``sqrt(mean_{i<j} ‖θ_i − θ_j‖²) /
        sqrt(mean_i ‖θ_i‖²)`` (0 when tied; about sqrt(2) for independent initialisations)."""
        out = {}
        pairs = self.k * (self.k - 1) / 2
        for layer in self.layers:
            rows = self._stacked(layer)
            norm = rows.pow(2).sum(1).mean().sqrt()
            out[layer] = float((pairwise_sq_distance(rows) / pairs).sqrt() / norm) if norm > 0 else 0.0
        return out
