r"""Multitask layers whose T task weights are one factorized tensor with a task mode (DMTRL).

``TaskFactorizedLinear`` and ``TaskFactorizedConv2d`` hold the weights of :math:`T`
task-specific layers as the LAF, Tucker or TT factors of their task-stacked tensor
(:mod:`factorlab.layers.task_tensor` has the formulas, parameter counts and rank searches);
biases stay per task. ``from_task_weights`` initialises a layer by decomposing the weights of
T trained single-task layers, at given ranks or at the smallest ranks (per the documented
search) within a relative reconstruction error, 10 % in Yang & Hospedales (ICLR 2017).

Why here and not in ``factorlab.mtl``: the layers are used by the multitask MNIST network of
:mod:`factorlab.models`, and ``models`` sits below ``mtl`` in the layer order
(:mod:`factorlab.devtools.layering`), so the layers live in ``layers`` (the lowest science
tier; they import only ``layers``). :mod:`factorlab.mtl.factorized` re-exports them with the
model-level report of the learned sharing.

Forward pass. An input is either shared by all tasks, ``[B, ...]``, or per task,
``[T, B, ...]``; the output is always per task, ``[T, B, ...]``. Two paths compute it:

- ``"factored"``: one einsum of the input with the factors (a convolution's input unfolded to
  patches ``[B, C, k_h, k_w, H' W']`` first), contracted pairwise along the FLOP-optimal path
  (:class:`~factorlab.layers.base.ContractionPlan`, opt_einsum's dynamic programming), planned
  once per input shape. On a shared input the optimal path contracts the input with the
  input-mode factors first and reaches the task mode last, never forming the T weights.
- ``"rebuild"``: rebuild the T weights (one einsum of the factors), then one batched matmul
  (linear) or one convolution with T S output channels (grouped by task for a per-task input).

``path_for(shape)`` picks the path with fewer FLOPs (``force_path`` overrides it; ties go to
``"rebuild"``, whose dense kernels are faster), ``flops(shape)`` counts the one it takes
(conventions of :mod:`factorlab.layers.base`: 2 per multiply-add; bias 1 per output entry),
and ``path_steps(shape)`` lists the factored path's pairwise contractions with their FLOPs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from factorlab.layers.base import (ContractionPlan, Rank, balanced_var, check_positive_int, contraction_plan,
                                   dense_init_var, init_bias_, normal_)
from factorlab.layers.conv import conv_geometry, conv_flops, conv_output_hw
from factorlab.layers.linear import Symbols
from factorlab.layers.task_tensor import (check_method, check_ranks, check_rel_error_or_rank, decompose_task_tensor,
                                          effective_rank, factor_count, factor_shapes, factors_to_task_tensor,
                                          stack_task_weights, task_mode_singular_values, task_rank,
                                          task_subscripts)

#: Paths of the forward pass.
PATHS = ("factored", "rebuild")


def step_flops(plan: ContractionPlan) -> list[tuple[str, int]]:
    """(pairwise einsum, FLOPs) of each step of ``plan``, with the counting of
    :class:`~factorlab.layers.base.ContractionPlan` (the FLOPs sum to ``plan.cost``)."""
    out = []
    for _, eq in plan.steps:
        ins, res = eq.split("->")
        idx = set(ins.replace(",", ""))
        n = math.prod(plan.sizes[i] for i in idx)
        n_ops = len(ins.split(","))
        if n_ops == 1:
            cost = n - math.prod(plan.sizes[i] for i in res)
        else:
            cost = n * (n_ops - 1 + (1 if idx - set(res) else 0))
        out.append((eq, int(cost)))
    return out


def task_linear(x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """T linear maps at once: x [B, I] (shared) or [T, B, I], ``weights`` [T, O, I], ``bias``
    [T, O] or None -> [T, B, O] (one batched matmul)."""
    y = torch.einsum("bi,toi->tbo" if x.dim() == 2 else "tbi,toi->tbo", x, weights)
    return y if bias is None else y + bias[:, None, :]


def task_conv2d(x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0,
                dilation=1) -> torch.Tensor:
    """T convolutions at once: x [B, C, H, W] (shared: one convolution with T S output
    channels) or [T, B, C, H, W] (tasks as channel groups: one convolution with groups T),
    ``weights`` [T, S, C, kh, kw], ``bias`` [T, S] or None -> [T, B, S, H', W']."""
    t, s, c = weights.shape[:3]
    w = weights.reshape(t * s, *weights.shape[2:])
    if x.dim() == 4:
        y = F.conv2d(x, w, None, stride, padding, dilation)
    else:
        y = F.conv2d(x.transpose(0, 1).reshape(x.shape[1], t * c, *x.shape[-2:]), w, None, stride, padding,
                     dilation, groups=t)
    y = y.reshape(y.shape[0], t, s, *y.shape[-2:]).transpose(0, 1)
    return y if bias is None else y + bias[:, None, :, None, None]


class TaskFactorizedLayer(nn.Module):
    """What ``TaskFactorizedLinear`` and ``TaskFactorizedConv2d`` share: the factors of the
    task-stacked weight tensor ``[T, *weight_shape]``, per-task biases ``[T, out]``, the
    initialisation, counting, ``from_task_weights``, the sharing report and the choice of
    path. Subclasses set ``weight_shape`` and implement the input handling."""

    def __init__(self, num_tasks: int, weight_shape: tuple[int, ...], method: str, rank: Rank, bias: bool):
        super().__init__()
        self.num_tasks = check_positive_int("num_tasks", num_tasks)
        self.weight_shape = tuple(weight_shape)
        self.method = check_method(method)
        self.rank = check_ranks(method, self.modes, rank)
        self.factor_list = nn.ParameterList(
            [nn.Parameter(torch.empty(s)) for s in factor_shapes(method, self.modes, self.rank)])
        if bias:
            self.bias = nn.Parameter(torch.empty(self.num_tasks, self.weight_shape[0]))
        else:
            self.register_parameter("bias", None)
        #: None (choose by FLOPs), "factored" or "rebuild".
        self.force_path: str | None = None
        self._plans: dict = {}
        self.reset_parameters()

    # -- shape ---------------------------------------------------------------------------
    @property
    def modes(self) -> tuple[int, ...]:
        """The task-stacked tensor's shape, ``(T, *weight_shape)``."""
        return (self.num_tasks, *self.weight_shape)

    @property
    def fan_in(self) -> int:
        """Inputs summed into each output entry of one task (in_features, or C kh kw)."""
        return math.prod(self.weight_shape[1:])

    def factors(self) -> list[torch.Tensor]:
        """The factor parameters in storage order (see ``task_tensor.factor_shapes``)."""
        return list(self.factor_list)

    # -- initialisation and counting -------------------------------------------------------
    def reset_parameters(self) -> None:
        r"""Biases :math:`U(-1/\sqrt{f}, 1/\sqrt{f})` (PyTorch's dense default, :math:`f` the
        fan-in), then every factor from :math:`N(0, v)` with :math:`v = (1/(3 f P))^{1/N}`,
        :math:`N` factors and :math:`P` summed products per entry: each task's rebuilt weight
        has the dense default's variance :math:`1/(3f)` (as in ``FactorizedLayer``)."""
        init_bias_(self.bias, self.fan_in)
        var = balanced_var(dense_init_var(self.fan_in), math.prod(self.rank), len(self.factor_list))
        for factor in self.factor_list:
            normal_(factor, var)

    def num_params(self) -> int:
        """Trainable scalars: the factors (``task_tensor.factor_count``) and T out biases."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def dense_params(self) -> int:
        """Parameters of T independent dense layers of this shape (biases included)."""
        return self.num_tasks * (math.prod(self.weight_shape) + (self.weight_shape[0] if self.bias is not None else 0))

    def compression(self) -> float:
        """T dense layers' parameters / this layer's."""
        return self.dense_params() / self.num_params()

    # -- weights and sharing -----------------------------------------------------------------
    def task_weights(self) -> torch.Tensor:
        """The T task weights the factors represent, ``[T, *weight_shape]``."""
        return factors_to_task_tensor(self.method, self.factors())

    def task_rank(self) -> int:
        """The factorization's rank on the task mode (LAF r, Tucker R_0, TT r_1)."""
        return task_rank(self.method, self.rank)

    def task_singular_values(self) -> torch.Tensor:
        """Singular values of the task-mode unfolding [T, D] of the rebuilt weights (float64)."""
        with torch.no_grad():
            return task_mode_singular_values(self.task_weights())

    def task_effective_rank(self) -> float:
        """Entropy effective rank (1..T) of ``task_singular_values()``."""
        return effective_rank(self.task_singular_values())

    # -- from trained single-task layers -------------------------------------------------------
    @classmethod
    def from_task_weights(cls, weights, biases=None, *, method: str, rank: Rank | None = None,
                          rel_error: float | None = None, n_iter_max: int = 100, **geometry) -> "TaskFactorizedLayer":
        """A layer whose factors decompose the T trained task ``weights`` (a tensor
        ``[T, *weight_shape]`` or a sequence of T same-shaped tensors) by ``method``, at
        ``rank`` or at the ranks ``task_tensor.ranks_for_error`` picks for ``rel_error``
        (exactly one); ``biases`` ([T, out], or a sequence of T, or None for no bias) are
        copied. Decomposed in float64, then cast to the weights' dtype and device.
        ``geometry`` are the convolution's stride, padding and dilation."""
        check_rel_error_or_rank(rank, rel_error)
        stacked = stack_task_weights(weights)
        ranks, factors, _ = decompose_task_tensor(method, stacked, rank=rank, rel_error=rel_error,
                                                  n_iter_max=n_iter_max)
        if biases is not None:
            biases = torch.stack(list(biases)) if not isinstance(biases, torch.Tensor) else biases
            want = (stacked.shape[0], stacked.shape[1])
            if tuple(biases.shape) != want:
                raise ValueError(f"biases must have shape {want} (T, out) to match the weights "
                                 f"{tuple(stacked.shape)}, got {tuple(biases.shape)}")
        layer = cls._from_shape(stacked.shape, method=method, rank=ranks, bias=biases is not None, **geometry)
        layer = layer.to(stacked.device, stacked.dtype)
        with torch.no_grad():
            for p, f in zip(layer.factor_list, factors, strict=True):
                p.copy_(f.to(p.dtype))
            if biases is not None:
                layer.bias.copy_(biases.detach())
        return layer

    @classmethod
    def _from_shape(cls, shape, **kwargs) -> "TaskFactorizedLayer":  # pragma: no cover - abstract
        raise NotImplementedError

    # -- paths -----------------------------------------------------------------------------
    @torch.compiler.disable
    def _plan(self, key, build):
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build()
        return plan

    def _apply(self, fn, *args, **kwargs):
        self._plans = {}
        return super()._apply(fn, *args, **kwargs)

    def _weight_flops(self) -> int:
        """FLOPs of rebuilding the T weights from the factors."""
        m, fs = task_subscripts(self.method, len(self.modes))
        return contraction_plan(",".join(fs) + "->" + m, tuple(tuple(f.shape) for f in self.factor_list)).cost

    def _factored_plan(self, shape: tuple[int, ...]) -> ContractionPlan:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rebuild_flops(self, shape: tuple[int, ...]) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, shape) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def path_for(self, input_shape) -> str:
        """``"factored"`` or ``"rebuild"``: the path with fewer FLOPs for ``input_shape`` (ties:
        rebuild), or ``force_path`` when set."""
        shape = self._check_input(input_shape)
        if self.force_path is not None:
            if self.force_path not in PATHS:
                raise ValueError(f"force_path must be None or one of {PATHS}, got {self.force_path!r}")
            return self.force_path
        return self._plan(("path", shape), lambda: (
            "factored" if self._factored_plan(shape).cost < self._rebuild_flops(shape) else "rebuild"))

    def path_steps(self, input_shape) -> list[tuple[str, int]]:
        """The factored path's pairwise contractions (einsum, FLOPs) for ``input_shape``."""
        return step_flops(self._factored_plan(self._check_input(input_shape)))

    def _output_entries(self, shape: tuple[int, ...]) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def flops(self, input_shape) -> int:
        """Forward FLOPs for ``input_shape`` along the path ``forward`` takes, bias included."""
        shape = self._check_input(input_shape)
        f = self._factored_plan(shape).cost if self.path_for(shape) == "factored" else self._rebuild_flops(shape)
        return f + (self._output_entries(shape) if self.bias is not None else 0)

    def _is_shared(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.weight_shape)

    def extra_repr(self) -> str:
        return (f"num_tasks={self.num_tasks}, weight_shape={self.weight_shape}, method={self.method!r}, "
                f"rank={self.rank}, params={self.num_params()}, bias={self.bias is not None}")


class TaskFactorizedLinear(TaskFactorizedLayer):
    r"""T linear layers whose weights :math:`\mathbf{W}_t \in \mathbb{R}^{O \times I}` are the
    slices of one factorized tensor :math:`\mathcal{W} \in \mathbb{R}^{T \times O \times I}`:

    .. math::
        \mathbf{y}_t = \mathbf{W}_t \mathbf{x}_t + \mathbf{b}_t, \qquad
        \mathcal{W} = \begin{cases}
        \mathbf{L} \mathbf{S} \text{ on the unfolding } [OI, T] & \text{LAF} \\
        \mathcal{G} \times_0 \mathbf{A}_T \times_1 \mathbf{A}_O \times_2 \mathbf{A}_I & \text{Tucker} \\
        \mathbf{G}_T[t] \, \mathbf{G}_O[o] \, \mathbf{G}_I[i] & \text{TT}
        \end{cases}

    Parameters: LAF :math:`r (OI + T)`; Tucker :math:`R_T R_O R_I + T R_T + O R_O + I R_I`;
    TT :math:`T r_1 + r_1 O r_2 + r_2 I`; plus :math:`T O` biases.

    Forward FLOPs on a shared input [B, I] along the factored path. The planner takes the
    cheapest pairwise order; below are the orders it picks in the tested regimes
    (``tests/unit/test_layers_task.py``), none forming the T weights. The rebuild path costs
    the rebuild plus :math:`2 T B O I`.

    - LAF: :math:`\mathbf{x} \mathbf{L}` [B, O, r] then :math:`\cdot \mathbf{S}`:
      :math:`2 B O r (I + T)`.
    - Tucker, small :math:`R_T`: :math:`\mathbf{x} \mathbf{A}_I` [B, R_I], :math:`\cdot
      \mathcal{G}` [B, R_T, R_O], then :math:`\mathbf{A}_T` and :math:`\mathbf{A}_O` in the
      cheaper order: :math:`2 B (I R_I + R_I R_T R_O + \min(T R_T R_O + T R_O O, R_T R_O O + T
      R_T O))`; :math:`R_T` near :math:`T`: the per-task cores :math:`\mathcal{G} \times_0
      \mathbf{A}_T` [T, R_O, R_I] first (independent of B), then :math:`\mathbf{x}
      \mathbf{A}_I`, the cores, :math:`\mathbf{A}_O`: :math:`2 T R_T R_O R_I + 2 B (I R_I + T
      R_I R_O + T R_O O)`.
    - TT, small :math:`r_1`: :math:`\mathbf{x} \mathbf{G}_I` [B, r_2], :math:`\cdot
      \mathbf{G}_O` [B, r_1, O], :math:`\cdot \mathbf{G}_T`: :math:`2 B (I r_2 + r_2 r_1 O +
      r_1 O T)`; :math:`r_1` near :math:`T`: :math:`\mathbf{G}_T \mathbf{G}_O` [T, O, r_2]
      first: :math:`2 T r_1 O r_2 + 2 B (I r_2 + T r_2 O)`.

    On a per-task input [T, B, I] every task has its own input, so the cheapest plan is
    usually the rebuild of the T weights (LAF, and any method whose input-mode factor is not
    much smaller than the input); Tucker and TT first contract the input with the input-mode
    factor (:math:`2 T B I R_I`, :math:`2 T B I r_2`) when that rank is small.

    Args:
        num_tasks (int): :math:`T`.
        in_features (int): :math:`I`.
        out_features (int): :math:`O`.
        method (str): ``"laf"``, ``"tucker"`` or ``"tt"``.
        rank (int or tuple): LAF one int (1..min(OI, T)); Tucker one int or
            :math:`(R_T, R_O, R_I)`, each at most its mode; TT one int or :math:`(r_1, r_2)`
            (at most :math:`\min(T, OI)` and :math:`\min(TO, I, r_1 O)`).
        bias (bool): learn a bias per task (default True).

    Shapes:
        input :math:`(B, I)` (shared by the tasks) or :math:`(T, B, I)`; output
        :math:`(T, B, O)`; factors as ``task_tensor.factor_shapes``.
    """

    def __init__(self, num_tasks: int, in_features: int, out_features: int, method: str, rank: Rank, *,
                 bias: bool = True):
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        super().__init__(num_tasks, (self.out_features, self.in_features), method, rank, bias)

    @classmethod
    def _from_shape(cls, shape, *, method, rank, bias) -> "TaskFactorizedLinear":
        t, o, i = shape
        return cls(t, i, o, method, rank, bias=bias)

    def _check_input(self, shape) -> tuple[int, ...]:
        shape = tuple(int(s) for s in shape)
        ok = (len(shape) == 2 and shape[1] == self.in_features) or (
            len(shape) == 3 and shape[0] == self.num_tasks and shape[2] == self.in_features)
        if not ok:
            raise ValueError(f"expected input [B, {self.in_features}] (shared) or [{self.num_tasks}, B, "
                             f"{self.in_features}] (per task), got {shape}")
        return shape

    def _factored_plan(self, shape) -> ContractionPlan:
        def build():
            sym = Symbols()
            (t, o, i), fs = task_subscripts(self.method, 3, sym)
            b = sym.take()
            x = b + i if self._is_shared(shape) else t + b + i
            eq = ",".join([x, *fs]) + "->" + t + b + o
            return ContractionPlan(eq, [shape] + [tuple(f.shape) for f in self.factor_list])
        return self._plan(("factored", shape), build)

    def _rebuild_flops(self, shape) -> int:
        batch = shape[-2]
        return self._weight_flops() + 2 * self.num_tasks * batch * self.out_features * self.in_features

    def _output_entries(self, shape) -> int:
        return self.num_tasks * shape[-2] * self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in_features] (shared) or [T, B, in_features] -> [T, B, out_features]."""
        shape = self._check_input(x.shape)
        if self.path_for(shape) == "factored":
            y = self._factored_plan(shape)(x, *self.factor_list)
            return y if self.bias is None else y + self.bias[:, None, :]
        return task_linear(x, self.task_weights(), self.bias)


class TaskFactorizedConv2d(TaskFactorizedLayer):
    r"""T convolutions whose weights :math:`\mathbf{W}_t \in \mathbb{R}^{S \times C \times k_h
    \times k_w}` are the slices of one factorized tensor :math:`\mathcal{W} \in
    \mathbb{R}^{T \times S \times C \times k_h \times k_w}` (LAF on the unfolding
    :math:`[S C k_h k_w, T]`, Tucker over all five modes, or TT over
    :math:`(T, S, C, k_h, k_w)`):

    .. math::
        \mathbf{y}_t = \mathbf{W}_t \star \mathbf{x}_t + \mathbf{b}_t.

    Parameters: LAF :math:`r (S C k_h k_w + T)`; Tucker :math:`\prod_k R_k + T R_T + S R_S +
    C R_C + k_h R_h + k_w R_w`; TT :math:`\sum_k r_k n_k r_{k+1}` over the modes
    :math:`(T, S, C, k_h, k_w)`; plus :math:`T S` biases.

    The factored path unfolds the input to patches :math:`[B, C, k_h, k_w, P]`
    (:math:`P = H' W'`) and contracts them with the factors along the FLOP-optimal path; on a
    shared input it reaches the task mode last: LAF :math:`2 B P S r (C k_h k_w + T)`, Tucker
    contracts the patches with :math:`\mathbf{A}_C`, :math:`\mathbf{A}_h`,
    :math:`\mathbf{A}_w` first, TT with the cores from :math:`k_w` back to :math:`T`. The
    rebuild path rebuilds the T kernels and runs one convolution with :math:`T S` output
    channels (shared input) or a grouped one (per-task input, groups :math:`T`):
    :math:`2 T B S C k_h k_w P` FLOPs plus the rebuild.

    Args:
        num_tasks (int): :math:`T`.
        in_channels (int): :math:`C`.
        out_channels (int): :math:`S`.
        kernel_size (int or tuple): :math:`(k_h, k_w)`.
        method (str): ``"laf"``, ``"tucker"`` or ``"tt"``.
        rank (int or tuple): LAF one int; Tucker one int or five (:math:`R_T, R_S, R_C, R_h,
            R_w`); TT one int or four internal ranks (see ``task_tensor.check_ranks``).
        stride, padding, dilation (int or tuple): as ``nn.Conv2d``.
        bias (bool): learn a bias per task (default True).

    Shapes:
        input :math:`(B, C, H, W)` (shared) or :math:`(T, B, C, H, W)`; output
        :math:`(T, B, S, H', W')`.
    """

    def __init__(self, num_tasks: int, in_channels: int, out_channels: int, kernel_size, method: str, rank: Rank,
                 *, stride=1, padding=0, dilation=1, bias: bool = True):
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        geometry = conv_geometry(kernel_size, stride, padding, dilation)
        self.kernel_size, self.stride = geometry["kernel_size"], geometry["stride"]
        self.padding, self.dilation = geometry["padding"], geometry["dilation"]
        super().__init__(num_tasks, (self.out_channels, self.in_channels, *self.kernel_size), method, rank, bias)

    @classmethod
    def _from_shape(cls, shape, *, method, rank, bias, stride=1, padding=0, dilation=1) -> "TaskFactorizedConv2d":
        t, s, c, kh, kw = shape
        return cls(t, c, s, (kh, kw), method, rank, stride=stride, padding=padding, dilation=dilation, bias=bias)

    def _check_input(self, shape) -> tuple[int, ...]:
        shape = tuple(int(s) for s in shape)
        ok = (len(shape) == 4 and shape[1] == self.in_channels) or (
            len(shape) == 5 and shape[0] == self.num_tasks and shape[2] == self.in_channels)
        if not ok:
            raise ValueError(f"expected input [B, {self.in_channels}, H, W] (shared) or [{self.num_tasks}, B, "
                             f"{self.in_channels}, H, W] (per task), got {shape}")
        return shape

    def _out_hw(self, shape) -> tuple[int, int]:
        return conv_output_hw(shape[-2:], self.kernel_size, self.stride, self.padding, self.dilation)

    def _patch_shape(self, shape) -> tuple[int, ...]:
        lead = shape[:-3]
        return (*lead, self.in_channels, *self.kernel_size, math.prod(self._out_hw(shape)))

    def _factored_plan(self, shape) -> ContractionPlan:
        def build():
            sym = Symbols()
            (t, s, c, y, x), fs = task_subscripts(self.method, 5, sym)
            b, p = sym.take(2)
            inp = b + c + y + x + p if self._is_shared(shape) else t + b + c + y + x + p
            eq = ",".join([inp, *fs]) + "->" + t + b + s + p
            return ContractionPlan(eq, [self._patch_shape(shape)] + [tuple(f.shape) for f in self.factor_list])
        return self._plan(("factored", shape), build)

    def _rebuild_flops(self, shape) -> int:
        return self._weight_flops() + self.num_tasks * conv_flops(shape[-4], self.in_channels, self.out_channels,
                                                                  self._out_hw(shape), self.kernel_size)

    def _output_entries(self, shape) -> int:
        return self.num_tasks * shape[-4] * self.out_channels * math.prod(self._out_hw(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] (shared) or [T, B, C, H, W] -> [T, B, S, H', W']."""
        shape = self._check_input(x.shape)
        if self.path_for(shape) == "rebuild":
            return task_conv2d(x, self.task_weights(), self.bias, self.stride, self.padding, self.dilation)
        patches = F.unfold(x.reshape(-1, *shape[-3:]), self.kernel_size, self.dilation, self.padding, self.stride)
        y = self._factored_plan(shape)(patches.reshape(self._patch_shape(shape)), *self.factor_list)  # [T, B, S, P]
        y = y.reshape(self.num_tasks, shape[-4], self.out_channels, *self._out_hw(shape))
        return y if self.bias is None else y + self.bias[:, None, :, None, None]


def from_task_weights(weights, biases=None, *, method: str, rank: Rank | None = None, rel_error: float | None = None,
                      n_iter_max: int = 100, **geometry) -> TaskFactorizedLayer:
    """A ``TaskFactorizedLinear`` (weights [T, out, in]) or ``TaskFactorizedConv2d`` (weights
    [T, out, in, kh, kw]; ``geometry`` = stride, padding, dilation) initialised from T trained
    task weights; see :meth:`TaskFactorizedLayer.from_task_weights`."""
    stacked = stack_task_weights(weights)
    cls = TaskFactorizedLinear if stacked.dim() == 3 else TaskFactorizedConv2d
    if cls is TaskFactorizedLinear and geometry:
        raise ValueError(f"linear task weights take no convolution geometry, got {sorted(geometry)}")
    return cls.from_task_weights(stacked, biases, method=method, rank=rank, rel_error=rel_error,
                                 n_iter_max=n_iter_max, **geometry)


def from_single_task_layers(layers: Sequence[nn.Module], *, method: str, rank: Rank | None = None,
                            rel_error: float | None = None, n_iter_max: int = 100) -> TaskFactorizedLayer:
    """The task-factorized layer of T trained ``nn.Linear`` or ``nn.Conv2d`` ``layers`` (one per
    task, same shape and geometry; groups 1, zero padding): weights decomposed, biases copied.
    ValueError when the layers differ in type, shape or geometry."""
    layers = list(layers)
    if not layers:
        raise ValueError("need one layer per task, got none")
    kinds = {type(m) for m in layers}
    if len(kinds) != 1 or not issubclass(kinds.pop(), (nn.Linear, nn.Conv2d)):
        raise ValueError(f"layers must all be nn.Linear or all nn.Conv2d, got {[type(m).__name__ for m in layers]}")
    biases = [m.bias for m in layers]
    if any((b is None) != (biases[0] is None) for b in biases):
        raise ValueError("either every task layer has a bias or none has")
    geometry = {}
    if isinstance(layers[0], nn.Conv2d):
        geo = [(m.stride, m.padding, m.dilation, m.groups, m.padding_mode) for m in layers]
        if any(g != geo[0] for g in geo) or geo[0][3] != 1 or geo[0][4] != "zeros" or isinstance(geo[0][1], str):
            raise ValueError("task convolutions must share stride, padding and dilation, with groups=1, integer "
                             f"zero padding; got (stride, padding, dilation, groups, padding_mode) = {geo}")
        geometry = {"stride": layers[0].stride, "padding": layers[0].padding, "dilation": layers[0].dilation}
    return from_task_weights([m.weight for m in layers], None if biases[0] is None else [b.detach() for b in biases],
                             method=method, rank=rank, rel_error=rel_error, n_iter_max=n_iter_max, **geometry)


__all__ = ["PATHS", "TaskFactorizedConv2d", "TaskFactorizedLayer", "TaskFactorizedLinear", "from_single_task_layers",
           "from_task_weights", "step_flops", "task_conv2d", "task_linear"]
