"""What every factorized layer shares: rank arguments, parameter budgets, FLOP counting,
cached contraction paths, initialisation scales.

Conventions used by every layer in :mod:`factorlab.layers`:

- ``num_params()`` counts trainable scalars (factors and bias).
- ``flops(input_shape)`` counts the forward pass on an input of ``input_shape`` *including the
  batch dimension*: one multiply-add is 2 FLOPs, a product with nothing summed is 1 FLOP per
  output element, and a bias adds 1 FLOP per output element. It counts the contractions and
  convolutions of the layer's canonical path (``canonical_path``: the FLOP-optimal contraction
  order of a linear layer; for a convolution the cheaper of its factored sequence and the
  rebuilt weight, ties to the factored one), the same on every machine and the count run
  records keep; ``chosen_flops(input_shape)`` counts the path the forward pass runs on this
  machine (see :mod:`factorlab.layers.paths`).
- ``dense_weight()`` rebuilds the full weight ([out, in] or [out, in, kh, kw]); tests check the
  layer's output against the dense layer with that weight.
- ``from_dense(layer, rank)`` initialises the factors by decomposing a trained dense layer.
- ``reset_parameters()`` (called from ``__init__``) draws the bias, then every factor in
  ``factors()`` order; the draws and their order are fixed (committed runs were trained with
  them, and a test pins them).

Each family's conversions between factors and the dense weight are module-level functions
(``cp_to_weight``, ``weight_to_cp``, ...); the layer classes are thin wrappers over them. What
every class shares lives here once, in :class:`FactorizedLayer`: rank resolution from a rank,
a parameter budget or a compression ratio (a subclass supplies ``rank_maxima()`` and
``factor_params(ranks)``), initialisation (it supplies ``summed_terms()``) and the
``from_dense`` template (it supplies ``decompose(weight, ...)``).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import opt_einsum
import torch
from torch import nn

from factorlab.layers.paths import is_autotune_enabled

#: A rank argument: one int (used for every internal rank) or one int per internal rank.
Rank = int | Sequence[int]


def check_positive_int(name: str, value, valid: str = "a positive integer") -> int:
    """``int(value)`` when it is a positive integer, ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    value = int(value.__index__())
    if value < 1:
        raise ValueError(f"{name} must be {valid}, got {value}")
    return value


def factorize_dim(n: int, d: int) -> tuple[int, ...]:
    """Split ``n`` into ``d`` integer factors whose product is ``n``, as balanced as possible
    (largest first), e.g. ``factorize_dim(784, 2) == (28, 28)``, ``factorize_dim(512, 3) ==
    (8, 8, 8)``. Factors of 1 appear when ``n`` has fewer than ``d`` prime factors."""
    n = check_positive_int("n", n)
    d = check_positive_int("d", d)
    primes, m, p = [], n, 2
    while p * p <= m:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    if m > 1:
        primes.append(m)
    # Greedy: give each prime (largest first) to the currently smallest factor.
    factors = [1] * d
    for q in sorted(primes, reverse=True):
        i = min(range(d), key=lambda j: factors[j])
        factors[i] *= q
    return tuple(sorted(factors, reverse=True))


def check_modes(name: str, features: int, modes: Sequence[int] | None, d: int | None) -> tuple[int, ...]:
    """Validated tensor modes for a dimension of size ``features``: ``modes`` when given
    (their product must equal ``features``), else ``factorize_dim(features, d)``."""
    if modes is None:
        return factorize_dim(features, d or 2)
    modes = tuple(check_positive_int(f"{name}[{i}]", m) for i, m in enumerate(modes))
    if math.prod(modes) != features:
        raise ValueError(
            f"{name}={modes} multiply to {math.prod(modes)}, not {features}: give modes whose product is "
            f"{features}, e.g. {factorize_dim(features, len(modes))}"
        )
    return modes


def check_mode_pair(in_size: int, out_size: int, in_modes, out_modes, d: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated (in_modes, out_modes) of equal length for sizes ``in_size`` and ``out_size``
    (each defaults to ``d`` balanced factors; ``out_modes`` defaults to as many factors as
    ``in_modes`` has)."""
    ins = check_modes("in_modes", in_size, in_modes, d)
    outs = check_modes("out_modes", out_size, out_modes, len(ins))
    if len(outs) != len(ins):
        raise ValueError(f"in_modes {ins} and out_modes {outs} must have the same length")
    return ins, outs


def expand_rank(name: str, rank: Rank, n: int, maxima: Sequence[int] | None = None) -> tuple[int, ...]:
    """``rank`` as ``n`` validated positive ints (an int is repeated ``n`` times).

    With ``maxima``, a rank above its maximum raises ValueError saying the valid range.
    """
    if isinstance(rank, Sequence) and not isinstance(rank, str):
        if len(rank) != n:
            raise ValueError(f"{name} needs {n} value(s), got {len(rank)}: {tuple(rank)!r}")
        ranks = tuple(check_positive_int(f"{name}[{i}]", r) for i, r in enumerate(rank))
    else:
        ranks = (check_positive_int(name, rank),) * n
    if maxima is not None:
        for i, (r, m) in enumerate(zip(ranks, maxima)):
            if r > m:
                where = f"{name}[{i}]" if n > 1 else name
                raise ValueError(f"{where}={r} exceeds its maximum {m}: valid ranks are 1..{m} (maxima {tuple(maxima)})")
    return ranks


def solve_rank(params_of: Callable[[int], int], target_params: float, max_rank: int, what: str) -> int:
    """Largest integer ``r`` in 1..``max_rank`` with ``params_of(r) <= target_params``
    (``params_of`` must be non-decreasing). ValueError when even rank 1 exceeds the budget."""
    if not target_params > 0:
        raise ValueError(f"target_params must be positive, got {target_params!r}")
    if params_of(1) > target_params:
        raise ValueError(
            f"{what}: even rank 1 needs {params_of(1)} parameters, above the budget of {target_params:g}; "
            f"ask for at least {params_of(1)} parameters (or a compression ratio at most "
            "dense_params / that)"
        )
    lo, hi = 1, max_rank
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if params_of(mid) <= target_params:
            lo = mid
        else:
            hi = mid - 1
    return lo


def resolve_budget(rank, target_params, compression, dense_params: int) -> float | None:
    """Check that exactly one of ``rank``, ``target_params`` and ``compression`` is given and
    return the parameter budget (None when ``rank`` was given)."""
    given = [n for n, v in (("rank", rank), ("target_params", target_params), ("compression", compression)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of rank, target_params or compression (got {given or 'none'})")
    if compression is not None:
        if not compression > 0:
            raise ValueError(f"compression must be a positive ratio (dense params / layer params), got {compression!r}")
        return dense_params / compression
    return target_params


class ContractionPlan:
    """One einsum over several operands, contracted pairwise along a path found once by
    :func:`opt_einsum.contract_path` and then replayed with plain ``torch.einsum`` calls (so
    ``torch.compile`` sees ordinary tensor ops). ``optimize`` is opt_einsum's: ``"dp"``
    (dynamic programming, FLOP-optimal: the default), ``"greedy"``, a
    ``DynamicProgramming(minimize=...)`` instance, or an explicit path (a list of operand
    position tuples, as opt_einsum writes paths).

    ``cost`` is the path's FLOPs under the conventions of this package (2 per multiply-add,
    1 per product with nothing summed, 1 per addition of a single-operand sum; summing an
    index of size 1, such as a tensor train's boundary rank, is a free reshape).
    ``step_costs`` holds (FLOPs, elements read + written) of every pairwise step;
    ``step_copies`` the elements of every copy ``torch.einsum`` makes in that step (it permutes
    each operand to [batch, free, summed] and reshapes it for one ``bmm``: a copy wherever that
    is not a view), found once by running the steps on meta tensors from contiguous operands;
    ``ops(out_shape=...)`` adds the copy the caller's reshape of the result (often a permuted
    view) to ``out_shape`` makes, where that reshape is not a view.

    With the first ``n_inputs`` operands taken as the inputs (default 1) and the rest as
    weights, :meth:`prepare` runs the steps that involve no input (they depend on the
    weights only and can be cached) and :meth:`apply` runs the rest.
    """

    def __init__(self, equation: str, shapes: Sequence[Sequence[int]], optimize="dp", n_inputs: int = 1):
        self.equation = equation
        self.shapes = tuple(tuple(int(s) for s in sh) for sh in shapes)
        path, info = opt_einsum.contract_path(equation, *self.shapes, shapes=True, optimize=optimize)
        self.path = [tuple(p) for p in path]
        self.steps: list[tuple[tuple[int, ...], str]] = [(tuple(c[0]), c[2]) for c in info.contraction_list]
        sizes = self.sizes = dict(info.size_dict)
        # The same steps with operand ids (0..n-1 the operands, then one id per step result).
        subs = equation.split("->")[0].split(",")
        ids, elements_of = list(range(len(subs))), {i: math.prod(sh) for i, sh in enumerate(self.shapes)}
        self.ssa: list[tuple[tuple[int, ...], str, int]] = []
        self.step_costs: list[tuple[int, int]] = []
        self._views: dict[int, tuple[int, ...] | None] = {}
        cost = 0
        for inds, eq in self.steps:
            ins, out = eq.split("->")
            idx = set(ins.replace(",", ""))
            n = math.prod(sizes[i] for i in idx)
            summed = idx - set(out)
            n_ops = len(ins.split(","))
            if n_ops == 1:  # a sum over indices of one operand: (inputs - outputs) additions
                f = n - math.prod(sizes[i] for i in out)
            else:
                f = n * (n_ops - 1 + (1 if summed else 0))
            cost += f
            args = tuple(ids[i] for i in inds)
            for i in sorted(inds, reverse=True):
                del ids[i]
            new = len(subs) + len(self.ssa)
            ids.append(new)
            elements_of[new] = math.prod(sizes[i] for i in out)
            # Summing only indices of size 1 (a tensor train's boundary ranks) in the order
            # kept: a reshape (a view), no kernel call.
            squeeze = n_ops == 1 and all(sizes[i] == 1 for i in summed) and \
                [i for i in ins if i in out] == list(out)
            self._views[len(self.ssa)] = tuple(sizes[i] for i in out) if squeeze else None
            self.ssa.append((args, eq, new))
            self.step_costs.append((int(f), 0 if squeeze else sum(elements_of[a] for a in args) + elements_of[new]))
        self.cost = int(cost)
        derived = set(range(n_inputs))
        self._input_steps = []
        self._weight_steps = []
        for k, (args, eq, new) in enumerate(self.ssa):
            if derived.intersection(args):
                derived.add(new)
                self._input_steps.append(k)
            else:
                self._weight_steps.append(k)
        self.n_inputs = n_inputs
        self.step_copies, self._result = self._traced_copies()
        used = {a for k in self._input_steps for a in self.ssa[k][0]}
        #: Operand ids (weights or weight-only step results) that :meth:`apply` needs.
        self.prepared_ids = tuple(sorted(used - derived))

    def _traced_copies(self) -> tuple[list[tuple[int, ...]], torch.Tensor]:
        """(elements of each copy of every step, the result as a meta tensor): the steps run
        once on meta tensors (no data, no time) from contiguous operands, counting the
        ``aten.clone`` / ``aten.copy_`` calls ``torch.einsum`` makes."""
        from torch.utils._python_dispatch import TorchDispatchMode

        copies: list[int] = []

        class _Copies(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if func in (torch.ops.aten.clone.default, torch.ops.aten.copy_.default):
                    copies.append(out.numel())
                return out

        env = {i: torch.empty(sh, device="meta") for i, sh in enumerate(self.shapes)}
        per_step = []
        with planning(), _Copies():
            for k, (args, _, new) in enumerate(self.ssa):
                copies.clear()
                env[new] = self._step(k, *[env[a] for a in args])
                per_step.append(tuple(copies))
        return per_step, env[self.ssa[-1][2]] if self.ssa else env[0]

    def output_copy(self, out_shape: Sequence[int] | None) -> int:
        """Elements a reshape of the result (as the steps leave it, often a permuted view) to
        ``out_shape`` copies: 0 where that is a view (or ``out_shape`` is None), else all."""
        if out_shape is None:
            return 0
        try:
            self._result.view(tuple(out_shape))
            return 0
        except RuntimeError:
            return self._result.numel()

    def ops(self, prepared_part: bool | None = None, out_shape: Sequence[int] | None = None) -> tuple:
        """:class:`~factorlab.layers.paths.Op` of every step, or of the weight-only steps
        (``prepared_part=True``) or the input steps (``False``): per step its ``copy`` calls
        (each 2 x its elements: read + write; :attr:`step_copies`), then its ``einsum``; with
        ``out_shape`` (not for the weight-only part), last the copy of reshaping the result to
        it (:meth:`output_copy`), if any."""
        from factorlab.layers.paths import Op

        ks = range(len(self.ssa)) if prepared_part is None else \
            self._weight_steps if prepared_part else self._input_steps
        out = []
        for k in ks:
            if self._views[k] is None:
                out += [Op("copy", 0, 2 * n) for n in self.step_copies[k]]
                out.append(Op("einsum", *self.step_costs[k]))
        n = 0 if prepared_part is True else self.output_copy(out_shape)
        return tuple(out) + ((Op("copy", 0, 2 * n),) if n else ())

    def _step(self, k: int, *args: torch.Tensor) -> torch.Tensor:
        view = self._views[k]
        return args[0].reshape(view) if view is not None else torch.einsum(self.ssa[k][1], *args)

    def prepare(self, *weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the weight-only steps on the operands after the inputs; the tensors
        :meth:`apply` needs (ids :attr:`prepared_ids`)."""
        env = dict(enumerate([None] * self.n_inputs + list(weights)))
        for k in self._weight_steps:
            args, eq, new = self.ssa[k]
            env[new] = self._step(k, *[env[a] for a in args])
        return tuple(env[i] for i in self.prepared_ids)

    def apply(self, *inputs_and_prepared: torch.Tensor) -> torch.Tensor:
        """The inputs, then the output of :meth:`prepare`: run the remaining steps."""
        env = dict(zip(range(self.n_inputs), inputs_and_prepared[:self.n_inputs]))
        env.update(zip(self.prepared_ids, inputs_and_prepared[self.n_inputs:]))
        for k in self._input_steps:
            args, eq, new = self.ssa[k]
            env[new] = self._step(k, *[env[a] for a in args])
        return env[self.ssa[-1][2]] if self.ssa else env[0]

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        ops = list(operands)
        for k, (inds, eq) in enumerate(self.steps):
            args = [ops[i] for i in inds]
            for i in sorted(inds, reverse=True):
                del ops[i]
            ops.append(self._step(k, *args))
        return ops[0]


def sequential_path(n_operands: int, order: Sequence[int]) -> list[tuple[int, int]]:
    """The explicit opt_einsum path contracting operand 0 (the input) with operands
    ``order[0]``, ``order[1]``, ... (1-based operand numbers), one at a time."""
    live = list(range(n_operands))
    path = []
    acc = 0
    for k in order:
        i, j = sorted((live.index(acc), live.index(k)))
        path.append((i, j))
        del live[j], live[i]
        acc = n_operands + len(path)  # a fresh id for the result, appended last
        live.append(acc)
    return path


def planning():
    """Context of the work that plans a forward pass rather than being part of it (building
    candidate paths, calibrating the cost model, timing candidates): outside any active
    ``TorchDispatchMode`` (a ``FlopCounterMode`` around a forward pass counts the pass, not
    its planning)."""
    from torch.utils._python_dispatch import _disable_current_modes

    return _disable_current_modes()


@torch.compiler.disable
@functools.lru_cache(maxsize=512)
def contraction_plan(equation: str, shapes: tuple[tuple[int, ...], ...]) -> ContractionPlan:
    """The :class:`ContractionPlan` of ``equation`` over operands of ``shapes`` (memoised: a
    pure function of its arguments, built once per equation and shapes)."""
    return ContractionPlan(equation, shapes)


def contract(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    """``torch.einsum(equation, *operands)`` along the FLOP-optimal pairwise path of
    :func:`contraction_plan` (the factor-to-weight conversions of every family use it)."""
    return contraction_plan(equation, tuple(tuple(int(n) for n in op.shape) for op in operands))(*operands)


#: The base tensor's storage-address and version accessors (a Parameter's own go through its
#: subclass dispatch, several times slower): :meth:`FactorizedLayer._stamp`.
_DATA_PTR = torch.Tensor.data_ptr
_VERSION = torch._C.TensorBase._version.__get__
_GRAD_ENABLED = torch.is_grad_enabled
_IS_COMPILING = torch.compiler.is_compiling


class FactorizedLayer(nn.Module):
    """Base of every factorized layer: rank resolution, initialisation, the ``from_dense``
    template, parameter counting, compression and plan caching.

    A subclass (through :class:`~factorlab.layers.FactorizedLinear` or
    :class:`~factorlab.layers.FactorizedConv2d`) supplies only what differs between families:

    - ``factors()``: its factor parameters, in initialisation order;
    - ``rank_maxima()`` and ``factor_params(ranks)``: the valid ranks and the parameter count
      they give (used by ``resolve_rank`` for budgets);
    - ``summed_terms()``: how many products of factor entries each weight entry sums (sets
      the initialisation scale in ``reset_parameters``);
    - ``decompose(weight, **options)`` and ``decompose_options``: the factors of a dense
      weight (used by ``from_dense``);
    - ``dense_weight()``, ``flops(input_shape)`` and ``_forward`` (the output on an input
      the fast path of :meth:`forward` did not take: validates it and runs :meth:`_run_path`).
    """

    #: Keyword arguments of :meth:`from_dense` that go to ``decompose`` (the rest go to the
    #: constructor).
    decompose_options: tuple[str, ...] = ()
    #: The inference fast path of :meth:`forward` (None: none yet, or invalidated).
    _fast: tuple | None = None

    def __init__(self):
        super().__init__()
        self._plans: dict = {}
        self._choices: dict = {}
        self._prepared: dict = {}
        self._hot: dict = {}
        self._fcache: tuple | None = None
        #: None (choose: measured or by the cost model), or the name of a candidate path.
        self.force_path: str | None = None
        #: True / False: measure the candidate paths (or not) whatever the global
        #: :func:`factorlab.layers.autotune` switch says; None follows it.
        self.autotune: bool | None = None

    # -- to implement ------------------------------------------------------------------
    @property
    def fan_in(self) -> int:  # pragma: no cover - abstract
        """Inputs summed into each output entry (in_features, or in_channels kh kw)."""
        raise NotImplementedError

    def dense_params(self) -> int:  # pragma: no cover - abstract
        """Parameters of the dense layer of the same shape, bias included."""
        raise NotImplementedError

    def dense_weight(self) -> torch.Tensor:  # pragma: no cover - abstract
        """The full weight the factors represent: [out_features, in_features] or
        [out_channels, in_channels, kh, kw]."""
        raise NotImplementedError

    def canonical_path(self, input_shape: Sequence[int]) -> str:  # pragma: no cover - abstract
        """The path :meth:`flops` counts: ``force_path`` when set, else the family's fixed rule
        (a pure function of the layer's shapes and the input shape, never of the machine)."""
        raise NotImplementedError

    def _output_elements(self, shape: tuple[int, ...]) -> int:  # pragma: no cover - abstract
        """Output entries for a normalised input ``shape`` (one bias addition each)."""
        raise NotImplementedError

    def _bias_flops(self, shape: tuple[int, ...]) -> int:
        return self._output_elements(shape) if self.bias is not None else 0

    def flops(self, input_shape: Sequence[int]) -> int:
        """Forward FLOPs for an input of ``input_shape`` (batch included), counted along
        :meth:`canonical_path`, bias included: the package's machine-independent count (the
        one run records and the book use; unchanged by the measured path choice). What the
        forward pass actually runs on this machine is counted by :meth:`chosen_flops`."""
        shape = self._check_input_shape(input_shape)
        return self.candidates(shape)[self.canonical_path(shape)].flops() + self._bias_flops(shape)

    def chosen_flops(self, input_shape: Sequence[int], *, grad: bool | None = None) -> int:
        """Forward FLOPs of the path a forward pass on ``input_shape`` runs here and now
        (``path_for``: ``force_path``, the measured or the cost model's choice), bias
        included. ``grad`` as in ``path_for``; without autograd the prepared part (the
        rebuilt or merged weights, cached between calls) is not counted. Can differ between
        machines (the cost model is calibrated per machine): records keep :meth:`flops`."""
        shape = self._check_input_shape(input_shape)
        grad = self._grad_recorded() if grad is None else grad
        cand = self.candidates(shape)[self.path_for(shape, grad=grad)]
        return cand.flops(prepared=not grad) + self._bias_flops(shape)

    def factors(self) -> list[torch.Tensor]:  # pragma: no cover - abstract
        """The factor parameters, in initialisation order."""
        raise NotImplementedError

    def rank_maxima(self) -> tuple[int, ...] | None:  # pragma: no cover - abstract
        """The largest valid value of each internal rank (their number is the number of
        ranks), or None for one rank without a maximum (CP)."""
        raise NotImplementedError

    def factor_params(self, ranks: tuple[int, ...]) -> int:  # pragma: no cover - abstract
        """Number of factor entries (bias excluded) at internal ``ranks``."""
        raise NotImplementedError

    def summed_terms(self) -> int:  # pragma: no cover - abstract
        """How many products of factor entries each entry of the dense weight sums (R for CP
        and low rank, the product of the ranks for Tucker and tensor train)."""
        raise NotImplementedError

    def decompose(self, weight: torch.Tensor, **options) -> list[torch.Tensor]:  # pragma: no cover - abstract
        """Factors (float64, in ``factors()`` order and shapes) of a dense ``weight`` at this
        layer's ranks."""
        raise NotImplementedError

    @staticmethod
    def _check_dense(layer: nn.Module) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _geometry(layer: nn.Module) -> dict:  # pragma: no cover - abstract
        """Constructor arguments reproducing a dense ``layer``'s shape, geometry and bias."""
        raise NotImplementedError

    # -- ranks and budgets -------------------------------------------------------------
    def bias_params(self) -> int:
        """Number of bias entries (0 without bias)."""
        bias = getattr(self, "bias", None)
        return 0 if bias is None else bias.numel()

    def resolve_rank(self, rank: Rank | None, target_params: float | None, compression: float | None
                     ) -> tuple[int, ...]:
        """The validated internal ranks from exactly one of ``rank`` (one int, or one per
        rank), ``target_params`` (the largest uniform rank, clamped to each maximum, whose
        layer has at most that many parameters, bias included) or ``compression`` (a budget
        of ``dense_params() / compression``). ValueError naming the valid range otherwise."""
        maxima = self.rank_maxima()
        n = 1 if maxima is None else len(maxima)
        budget = resolve_budget(rank, target_params, compression, self.dense_params())
        if budget is not None:
            def clamp(r: int) -> tuple[int, ...]:
                return (r,) if maxima is None else tuple(min(r, m) for m in maxima)

            # An unbounded (CP) rank is searched up to the dense parameter count.
            top = self.dense_params() if maxima is None else max(maxima, default=1)
            r = solve_rank(lambda r: self.factor_params(clamp(r)) + self.bias_params(), budget, top,
                           type(self).__name__)
            rank = clamp(r)
        return expand_rank("rank", rank, n, maxima)

    # -- initialisation ----------------------------------------------------------------
    def reset_parameters(self) -> None:
        r"""Draw the bias as PyTorch's dense default, :math:`U(-1/\sqrt{f}, 1/\sqrt{f})` with
        :math:`f` the fan-in, then every factor in ``factors()`` order from
        :math:`N(0, v)`, :math:`v = (1 / (3 f T))^{1/N}` for :math:`N` factors and :math:`T`
        summed terms (``summed_terms()``): the rebuilt weight then has the variance
        :math:`1/(3f)` of the dense default, with every factor at the same scale."""
        init_bias_(self.bias, self.fan_in)
        var = balanced_var(dense_init_var(self.fan_in), self.summed_terms(), len(self.factors()))
        for factor in self.factors():
            normal_(factor, var)

    # -- from a dense layer ------------------------------------------------------------
    @classmethod
    def from_dense(cls, layer: nn.Module, rank: Rank | None = None, **kwargs) -> "FactorizedLayer":
        """A layer of ``layer``'s shape, geometry, bias, dtype and device whose factors
        decompose ``layer.weight`` (in float64, then cast).

        ``rank`` (or ``target_params`` / ``compression`` in ``kwargs``) and the other
        constructor options (``in_modes``, ``d``, ...) go to the constructor; the keys of
        ``decompose_options`` (``n_iter_max``, ``seed``) go to ``decompose``.
        """
        cls._check_dense(layer)
        options = {k: kwargs.pop(k) for k in cls.decompose_options if k in kwargs}
        new = cls(**cls._geometry(layer), rank=rank, **kwargs)
        new._set_factors_(new.decompose(layer.weight, **options))
        new._copy_bias_from(layer)
        return new.to(layer.weight.device, layer.weight.dtype)

    def _copy_bias_from(self, layer: nn.Module) -> None:
        if (layer.bias is None) != (self.bias is None):
            raise ValueError("bias mismatch between the dense layer and the factorized one")
        if layer.bias is not None:
            with torch.no_grad():
                self.bias.copy_(layer.bias)

    def _set_factors_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Copy decomposed factors (any dtype/device) into ``factors()``, in that order."""
        params = self.factors()
        with torch.no_grad():
            for p, t in zip(params, tensors, strict=True):
                if tuple(p.shape) != tuple(t.shape):
                    raise RuntimeError(f"factor shape {tuple(t.shape)} does not match parameter {tuple(p.shape)}")
                p.copy_(t.to(p.dtype))

    # -- counting ----------------------------------------------------------------------
    def num_params(self) -> int:
        """Trainable scalars of this layer (factors and bias)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def compression(self) -> float:
        """Parameters of the dense layer of the same shape (with the same bias) / this layer's."""
        return self.dense_params() / self.num_params()

    # -- plans -------------------------------------------------------------------------
    @torch.compiler.disable
    def _plan(self, key, build: Callable[[], object]):
        """The cached plan for ``key`` (built on first use; plain Python, never traced)."""
        plan = self._plans.get(key)
        if plan is None:
            with planning():
                plan = build()
            self._plans[key] = plan
        return plan

    def _apply(self, fn, *args, **kwargs):
        # Plans depend only on shapes, but clear them on .to()/.half() etc. to stay simple.
        self.clear_path_cache()
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):
        # Candidates hold closures over this layer: a deep copy or pickle rebuilds them.
        state = dict(super().__getstate__())
        state["_plans"], state["_prepared"], state["_hot"], state["_fcache"], state["_fast"] = {}, {}, {}, None, None
        return state

    # -- paths: candidates, choice, cache --------------------------------------------
    def _build_candidates(self, shape: tuple[int, ...]) -> dict:  # pragma: no cover - abstract
        """Every :class:`~factorlab.layers.paths.Candidate` for an input of ``shape``
        (normalised by ``_check_input_shape``), by name, the default path first."""
        raise NotImplementedError

    def _check_input_shape(self, shape) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def candidates(self, input_shape: Sequence[int]) -> dict:
        """The candidate paths for ``input_shape`` by name (cached per shape): each a
        :class:`~factorlab.layers.paths.Candidate` with its kernel calls (FLOPs, elements)."""
        shape = self._check_input_shape(input_shape)
        return self._plan(("candidates", shape), lambda: self._build_candidates(shape))

    def _grad_recorded(self, x: torch.Tensor | None = None) -> bool:
        """Whether autograd records a forward pass through the factors now (on ``x``, or on an
        input that does not require a gradient); the bias is added outside the paths."""
        return torch.is_grad_enabled() and ((x is not None and x.requires_grad)
                                            or any(p.requires_grad for p in self._factor_tuple()))

    def _key(self, shape, dtype, device, grad: bool, channels_last: bool) -> tuple:
        return (tuple(shape), dtype, torch.device(device), bool(self.training), bool(grad), bool(channels_last))

    @staticmethod
    def _key_label(key: tuple) -> str:
        shape, dtype, device, training, grad, cl = key
        return (f"{'x'.join(map(str, shape))} {str(dtype).replace('torch.', '')} {device} "
                f"{'train' if training else 'eval'} {'grad' if grad else 'no_grad'}" + (" channels_last" if cl else ""))

    def _model_choice(self, key: tuple) -> dict:
        """The cost model's choice for ``key``: predicted seconds of every candidate
        (:meth:`Machine.predict <factorlab.layers.paths.Machine.predict>`, forward + backward
        where a gradient is recorded; the prepared part is free when no gradient is recorded,
        an input in another memory format pays a copy); the
        candidate with the fewest FLOPs (``fewest_flops``) unless another is predicted faster
        by more than :data:`~factorlab.layers.paths.FLOPS_MARGIN` of its time. Where no
        gradient is recorded (inference) the reference is the rebuilt weight instead
        (:func:`inference_reference`: the dense layer's own computation), kept unless another
        path is predicted faster by more than :data:`~factorlab.layers.paths.INFERENCE_MARGIN`:
        a near tie never trades the dense layer's speed for a path that may be slower."""
        from factorlab.layers.paths import FLOPS_MARGIN, INFERENCE_MARGIN, Op, machine

        shape, dtype, device, _, grad, cl = key
        m = machine(device, dtype)
        fmt = torch.channels_last if cl else torch.contiguous_format
        predicted, flops = {}, {}
        for name, cand in self.candidates(shape).items():
            ops = (cand.prep_ops if grad else ()) + cand.ops
            if len(shape) == 4 and cand.memory_format != fmt:
                ops = ops + (Op("copy", 0, 2 * math.prod(shape)),)
            predicted[name] = m.predict(ops, grad=grad)
            flops[name] = sum(o.flops for o in ops)
        # The reference (the fewest FLOPs, first listed on ties; in inference the rebuilt
        # weight) unless another path is predicted faster by more than the margin: small
        # calibration differences cannot flip a near tie.
        fewest = min(flops, key=flops.get)
        ref = (None if grad else inference_reference(predicted, cl)) or fewest
        path = _beats(predicted, ref, FLOPS_MARGIN if grad else INFERENCE_MARGIN)
        return {"path": path, "how": "model", "predicted_s": predicted, "fewest_flops": fewest}

    def _measured_choice(self, key: tuple, x: torch.Tensor) -> dict:
        """Time every candidate on ``x`` (:func:`~factorlab.layers.paths.time_candidate`) and
        keep the fastest; in inference the rebuilt weight unless another path is faster by
        more than :data:`~factorlab.layers.paths.INFERENCE_MARGIN` (timing noise cannot pick a
        path slower than the dense layer). A candidate that fails is left out (its error
        recorded)."""
        from factorlab.layers.paths import INFERENCE_MARGIN, time_candidate

        grad = key[4]
        times, errors = {}, {}
        for name, cand in self.candidates(key[0]).items():
            try:
                times[name] = time_candidate(cand, x, list(self._factor_tuple()), grad)
            except Exception as err:  # noqa: BLE001 - a path this build cannot run is skipped
                errors[name] = repr(err)
        if not times:
            raise RuntimeError(f"no candidate path of {type(self).__name__} ran: {errors}")
        ref = None if grad else inference_reference(times, key[5])
        path = min(times, key=times.get) if ref is None else _beats(times, ref, INFERENCE_MARGIN)
        out = {"path": path, "how": "measured", "times_s": times}
        if errors:
            out["errors"] = errors
        return out

    def _tuning(self) -> bool:
        return self.autotune if self.autotune is not None else is_autotune_enabled()

    def _check_force_path(self, shape) -> str:
        names = list(self.candidates(shape))
        if self.force_path not in names:
            raise ValueError(f"force_path must be None or one of {names}, got {self.force_path!r}")
        return self.force_path

    def _choose(self, x: torch.Tensor) -> str:
        """The path the forward pass on ``x`` runs (chosen once per key, then cached)."""
        shape = self._check_input_shape(x.shape)
        return self._choose_for(x, shape, self._grad_recorded(x))

    def _choose_for(self, x: torch.Tensor, shape: tuple[int, ...], grad: bool) -> str:
        if self.force_path is not None:
            return self._check_force_path(shape)
        cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        key = (shape, x.dtype, x.device, self.training, grad, cl)
        choice = self._choices.get(key)
        tune = self._tuning()
        if choice is None or (tune and choice["how"] == "model"):
            with planning():
                choice = self._measured_choice(key, x) if tune else self._model_choice(key)
            self._choices[key] = choice
        return choice["path"]

    def path_for(self, input_shape: Sequence[int], *, grad: bool | None = None) -> str:
        """The path a forward pass on a contiguous input of ``input_shape`` with this
        layer's dtype and device runs: ``force_path`` when set, else the cached choice for
        that key, else the cost model's (measuring needs an input: see ``autotune``).
        ``grad``: whether autograd records (default: it does when enabled and a parameter
        requires a gradient)."""
        shape = self._check_input_shape(input_shape)
        if self.force_path is not None:
            return self._check_force_path(shape)
        p = self.factors()[0]
        key = self._key(shape, p.dtype, p.device, self._grad_recorded() if grad is None else grad, False)
        choice = self._choices.get(key)
        if choice is None:
            with planning():
                choice = self._choices[key] = self._model_choice(key)
        return choice["path"]

    def path_choices(self) -> dict[str, dict]:
        """Every choice made so far, by key label ("<shape> <dtype> <device> train|eval
        grad|no_grad"): ``path``, ``how`` (measured / model) and the seconds behind it
        (``times_s`` measured, or ``predicted_s``), JSON-ready for run records."""
        return {self._key_label(k): {kk: (dict(v) if isinstance(v, dict) else v) for kk, v in c.items()}
                for k, c in self._choices.items()}

    def __setattr__(self, name, value):
        if (isinstance(value, nn.Parameter) or name == "bias") and "_fcache" in self.__dict__:
            self.clear_path_cache()  # a factor or the bias replaced: cached paths and weights refer to the old one
        elif name == "force_path":
            self.__dict__["_fast"] = None  # the fast path runs only the choice made without force_path
        super().__setattr__(name, value)

    def _factor_tuple(self) -> tuple:
        """``tuple(factors())``, cached (``factors()`` walks ParameterLists: microseconds per
        forward). Assigning a new Parameter to the layer clears it; replacing one inside a
        ParameterList needs ``clear_path_cache()``."""
        f = self._fcache
        if f is None:
            f = self._fcache = tuple(self.factors())
        return f

    def clear_path_cache(self) -> None:
        """Forget every choice, plan and prepared (rebuilt) weight."""
        self._plans, self._choices, self._prepared, self._hot, self._fcache = {}, {}, {}, {}, None
        self._fast = None

    @staticmethod
    def _stamp(factors: tuple) -> tuple:
        """What identifies the factors' current values: each one's storage address, then each
        one's version (bumped by every in-place update such as an optimizer step). Read with
        the base tensor's own accessors, which skip the Parameter subclass's dispatch (about
        half the cost: this runs on every inference call). :meth:`forward`'s fast path writes
        the same comparison out inline (two calls fewer); change both together."""
        return (*map(_DATA_PTR, factors), *map(_VERSION, factors))

    def _prepared_for(self, shape, name: str, cand) -> tuple:
        """``cand.prepare()`` under no_grad, cached until a factor changes (its data_ptr or
        its ``_version``, bumped by every in-place update such as an optimizer step)."""
        stamp = self._stamp(self._factor_tuple())
        key = (name, shape if cand.prep_key is None else cand.prep_key)
        hit = self._prepared.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with torch.no_grad():
            prepared = cand.prepare()
        self._prepared = {k: v for k, v in self._prepared.items() if v[0] == stamp}  # drop stale weights
        self._prepared[key] = (stamp, prepared)
        return prepared

    def _select(self, x: torch.Tensor, shape: tuple[int, ...]):
        """(chosen candidate, its cached prepared tensors, or None when autograd records and
        they must be built in the forward pass). The hot path of every forward: one dict
        lookup once the key has been chosen."""
        grad = self._grad_recorded(x)
        if self.force_path is not None:
            name = self._check_force_path(shape)
            cand = self.candidates(shape)[name]
        else:
            cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            key = (shape, x.dtype, x.device, self.training, grad, cl)
            hot = self._hot.get(key)
            if hot is None or (hot[2] and self._tuning()):
                name = self._choose_for(x, shape, grad)
                hot = self._hot[key] = (self.candidates(shape)[name], name, self._choices[key]["how"] == "model")
            cand, name = hot[0], hot[1]
        return cand, (None if grad else self._prepared_for(shape, name, cand))

    _select_traced = torch.compiler.disable(_select)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output on ``x`` (shapes: :class:`~factorlab.layers.FactorizedLinear`,
        ``[*, in_features] -> [*, out_features]``; :class:`~factorlab.layers.FactorizedConv2d`,
        ``[B, in_channels, H, W] -> [B, out_channels, H', W']``).

        Inference fast path, tried first and written out here (each Python call it saves is a
        few percent of a small layer's time at batch 1): after a call without autograd on a
        contiguous input, :meth:`_run_path` keeps that call's path, prepared tensors and the
        factors' stamp (``_fast``); a call with autograd off, the same raw input shape and
        dtype, the same mode, a contiguous input, the factors unchanged (same storage and
        version, :meth:`_stamp`) and no pending autotune runs that path directly, with no
        validation, reshaping or key lookup (the shape compared is the one ``_run_path`` saw,
        so only an input needing no reshaping can match). Anything else goes through the family's
        ``_forward``. Setting ``force_path`` or replacing a factor clears ``_fast``; the
        device needs no check, the factors' storage fixes it (an input on another device
        fails in the kernel, as on the full path)."""
        fast = self._fast
        if fast is not None and not _GRAD_ENABLED() and x.shape == fast[0] and not _IS_COMPILING():
            _, dtype, training, model, factors, stamp, apply, prepared, bias = fast
            if (x.dtype is dtype and self.training is training and x.is_contiguous()
                    and (*map(_DATA_PTR, factors), *map(_VERSION, factors)) == stamp
                    and not (model and self._tuning())):
                return apply(x, prepared, bias)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_path(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The chosen candidate's output on ``x`` (normalised to ``shape``), bias added:
        prepared part cached when autograd does not record. Under ``torch.compile`` the
        choice is made outside the graph; the chosen path's tensor ops are traced. After a
        call without autograd on a contiguous input (and no ``force_path``) it installs the
        inference fast path of :meth:`forward` for ``x``'s shape, which the fast path compares
        with the raw input's: an input the family reshapes (a linear layer's ``[*, in]`` with
        more than one leading dimension) never matches and always takes the full path."""
        if torch.compiler.is_compiling():
            cand, prepared = self._select_traced(x, shape)
        else:
            cand, prepared = self._select(x, shape)
            if prepared is not None and self.force_path is None and x.is_contiguous():
                factors = self._factor_tuple()
                key = (shape, x.dtype, x.device, self.training, False, False)
                self._fast = (x.shape, x.dtype, self.training, self._hot[key][2], factors,
                              self._stamp(factors), cand.apply, prepared, self.bias)
        return cand.apply(x, cand.prepare() if prepared is None else prepared, self.bias)

    def path_flops(self, input_shape: Sequence[int]) -> dict[str, int]:
        """Forward FLOPs of every candidate path (prepared part included, bias excluded)."""
        return {n: c.flops() for n, c in self.candidates(input_shape).items()}


def inference_reference(names, channels_last: bool = False) -> str | None:
    """The candidate among ``names`` that computes what the dense layer computes (the rebuilt
    weight in one product or convolution): ``dense_cl`` for a channels-last input where
    there is one, else ``dense``; None where the layer has no such candidate."""
    if channels_last and "dense_cl" in names:
        return "dense_cl"
    return "dense" if "dense" in names else None


def _beats(seconds: dict[str, float], ref: str, margin: float) -> str:
    """The fastest of ``seconds`` (path -> seconds) if it is faster than ``ref`` by more than
    ``margin`` of ``ref``'s time, else ``ref``."""
    fastest = min(seconds, key=seconds.get)
    return fastest if seconds[fastest] < (1 - margin) * seconds[ref] else ref


def normal_(tensor: torch.Tensor, var: float) -> torch.Tensor:
    """Fill ``tensor`` in place with N(0, ``var``) samples (no autograd)."""
    with torch.no_grad():
        return tensor.normal_(0.0, math.sqrt(var))


def balanced_var(total_var: float, summed: int, n_factors: int) -> float:
    """Variance of each of ``n_factors`` Gaussian factors whose contraction, summing over
    ``summed`` index combinations, has entries of variance ``total_var``:
    ``(total_var / summed) ** (1 / n_factors)``. Every factor gets the same scale ("balanced"),
    as a truncated SVD split U sqrt(S), sqrt(S) V would: an unbalanced split (one factor of
    variance 1/rank) amplifies the effective learning rate of the product by up to
    out_features / rank and made low-rank MLPs diverge under SGD with momentum."""
    return (total_var / summed) ** (1.0 / n_factors)


def dense_init_var(fan_in: int) -> float:
    """Variance of PyTorch's default ``nn.Linear``/``nn.Conv2d`` weight init,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)): 1 / (3 fan_in). Factorized layers are initialised so
    that their reconstructed weight has this variance, making them drop-in replacements."""
    return 1.0 / (3.0 * fan_in)


def init_bias_(bias: torch.Tensor | None, fan_in: int) -> None:
    """PyTorch's default bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            bias.uniform_(-bound, bound)


def to_tensorly(weight: torch.Tensor):
    """A float64 CPU copy of ``weight`` with TensorLy's backend set to PyTorch (decompositions
    of trained layers are done in float64 and cast back)."""
    import tensorly as tl

    tl.set_backend("pytorch")
    return weight.detach().to("cpu", torch.float64)


def reconstruction_error(layer: FactorizedLayer, dense: nn.Module) -> float:
    """Relative Frobenius error ||W_dense - W_layer|| / ||W_dense|| of a factorized layer
    against the dense layer it approximates."""
    with torch.no_grad():
        w = dense.weight.double()
        return float(torch.linalg.norm(w - layer.dense_weight().double()) / torch.linalg.norm(w))
