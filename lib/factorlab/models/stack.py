"""Several independent models trained as one: stacking, unstacking and per-member state.

A *stack* of ``K`` members maps a batch to [G, K * T]: member ``k``'s ``T`` outputs are
columns ``k*T:(k+1)*T``. Members share no parameter, so a loss that is a sum over members
gives each member the gradient it would get alone: exactly for a :class:`ModelStack`, and
for a grouped model too on the CPU, whose grouped layers compute each member in arithmetic
of the same shape whatever the stack's size (:mod:`factorlab.models.grouped`).

Two kinds of stack, same interface:

- a *grouped* model (``QM9GINE(groups=K)``): one network whose channels are ``K``
  independent blocks (:mod:`factorlab.models.grouped`); one set of kernels for all members,
  which is what makes it fast on a GPU. :func:`stack_models` builds one from ``K`` equal
  ``groups=1`` models, copying their weights.
- :class:`ModelStack`: any ``K`` models run one after the other (e.g. SchNet, whose PyG
  blocks are not grouped).

:func:`member_state` gives member ``k``'s tensors as *views* into the stack, in the shapes of a
standalone member's ``state_dict``: copying into them writes the stack, which is how the
trainer keeps each member's best-validation weights.
"""
from __future__ import annotations

import torch
from torch import nn


class ModelStack(nn.Module):
    """Run ``models`` on the same batch and concatenate their outputs along dim 1.

    Shapes: each member maps a batch to [G, T]; the stack to [G, K * T].
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("ModelStack needs at least one model")
        self.models = nn.ModuleList(models)

    @property
    def groups(self) -> int:
        return len(self.models)

    def forward(self, batch) -> torch.Tensor:
        """Batch -> [G, K * T]."""
        return torch.cat([m(batch) for m in self.models], dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.models)} x {self.models[0]!r})"


def num_members(model: nn.Module) -> int:
    """Independent members of ``model``: ``K`` for a stack or grouped model, else 1."""
    return int(getattr(model, "groups", 1))


def _template(model: nn.Module) -> nn.Module:
    """A ``groups=1`` model of the same hyper-parameters (for the shapes of one member)."""
    return type(model)(**{**model.hparams, "groups": 1})


def member_state(model: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Member ``k``'s parameters and buffers as views into ``model`` (shapes as in a
    standalone member's ``state_dict``).

    Tensors a grouped model holds once for all members (GINE's fixed epsilon, BatchNorm's
    step counter) are returned whole.
    """
    k_total = num_members(model)
    if not 0 <= k < k_total:
        raise ValueError(f"member {k} out of range: the model has {k_total} member(s)")
    if isinstance(model, ModelStack):
        return model.models[k].state_dict()
    state = model.state_dict()
    if k_total == 1:
        return state
    shapes = {name: t.shape for name, t in _template(model).state_dict().items()}
    out = {}
    for name, t in state.items():
        one = shapes[name]
        if t.shape == one:  # held once, the same for every member
            out[name] = t
        elif t.numel() == k_total * one.numel():
            out[name] = t.view(k_total, *one)[k]
        else:
            raise ValueError(f"{name}: shape {tuple(t.shape)} is not {k_total} x {tuple(one)} (not group-major)")
    return out


def _groupable(models: list[nn.Module]) -> bool:
    first = models[0]
    hp = getattr(first, "hparams", None)
    return (hp is not None and "groups" in hp and hp["groups"] == 1
            and all(type(m) is type(first) and getattr(m, "hparams", None) == hp for m in models))


@torch.no_grad()
def stack_models(models: list[nn.Module]) -> nn.Module:
    """One stack of ``models`` (independent members, outputs concatenated in order).

    Equal ``groups=1`` models with a ``groups`` hyper-parameter (e.g. :class:`QM9GINE`)
    become one grouped model holding copies of their weights; anything else a
    :class:`ModelStack` of the models themselves.
    """
    if not models:
        raise ValueError("stack_models needs at least one model")
    if not _groupable(models):
        return ModelStack(list(models))
    first = models[0]
    stacked = type(first)(**{**first.hparams, "groups": len(models)})
    device = next(first.parameters()).device
    stacked.to(device)
    for k, m in enumerate(models):
        src = m.state_dict()
        for name, view in member_state(stacked, k).items():
            view.copy_(src[name])
    stacked.train(first.training)
    return stacked


@torch.no_grad()
def unstack(model: nn.Module) -> list[nn.Module]:
    """The members of a stack as standalone models (copies for a grouped model; the members
    themselves for a :class:`ModelStack`; ``[model]`` for an ordinary model)."""
    if isinstance(model, ModelStack):
        return list(model.models)
    k_total = num_members(model)
    if k_total == 1:
        return [model]
    device = next(model.parameters()).device
    members = []
    for k in range(k_total):
        m = _template(model).to(device)
        m.load_state_dict({name: t.clone() for name, t in member_state(model, k).items()})
        m.train(model.training)
        members.append(m)
    return members


class RegroupedStack(nn.Module):
    """Members of several kinds (e.g. QM9GINEs with 1 and with 2 outputs) run as one grouped
    model per kind instead of one after the other, outputs back in the members' order.

    ``parts[j]`` computes the members ``index[j]`` (a grouped model, or the member itself); the
    concatenated parts' columns are permuted by ``columns`` so that the output is exactly the
    :class:`ModelStack`'s. Shapes: batch -> [G, sum of the members' widths].
    """

    def __init__(self, parts: list[nn.Module], columns: torch.Tensor, members: int):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.register_buffer("columns", columns.long(), persistent=False)
        self.members = members

    @property
    def groups(self) -> int:
        return self.members

    def forward(self, batch) -> torch.Tensor:
        """Batch -> [G, sum of widths], column order of the original stack."""
        return torch.cat([p(batch) for p in self.parts], dim=1).index_select(1, self.columns)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.members} members in {len(self.parts)} part(s): {list(self.parts)!r})"


@torch.no_grad()
def regroup(stack: nn.Module, widths: list[int]) -> nn.Module:
    """A faster equivalent of a :class:`ModelStack` whose members are of several kinds: the
    members of equal hyper-parameters become one grouped model each (:func:`stack_models`),
    the outputs permuted back to member order (:class:`RegroupedStack`; same outputs up to
    float rounding). ``widths[k]`` is member ``k``'s number of outputs. Anything else, or a
    stack in which no two members group, is returned unchanged.

    Raises:
        ValueError: ``widths`` does not give one width per member.
    """
    if not isinstance(stack, ModelStack):
        return stack
    models = list(stack.models)
    if len(widths) != len(models):
        raise ValueError(f"regroup needs one width per member: {len(widths)} widths for {len(models)} members")
    kinds: dict = {}
    for k, m in enumerate(models):
        hp = getattr(m, "hparams", None)
        key = (type(m), repr(sorted(hp.items()))) if hp is not None and hp.get("groups") == 1 else ("single", k)
        kinds.setdefault(key, []).append(k)
    if len(kinds) == len(models):
        return stack
    start = [sum(widths[:k]) for k in range(len(models))]
    parts, order = [], []
    for index in kinds.values():
        parts.append(stack_models([models[k] for k in index]))
        order += [c for k in index for c in range(start[k], start[k] + widths[k])]
    columns = torch.empty(len(order), dtype=torch.long)
    columns[torch.as_tensor(order)] = torch.arange(len(order))
    device = next(stack.parameters()).device
    return RegroupedStack(parts, columns.to(device), len(models)).train(stack.training)
