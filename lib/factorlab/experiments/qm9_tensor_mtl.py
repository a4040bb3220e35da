r"""Experiment ``qm9_tensor_mtl``: tensor-factorized multitask learning on QM9's 11 benchmark
targets (:data:`~factorlab.experiments.qm9_common.NASH11`): the GINE encoder shared by a
decomposition of its task-stacked weights (DMTRL, Yang & Hospedales, ICLR 2017), and deep
relationship networks (a tensor-normal prior over task-stacked weights, Long et al., NeurIPS
2017).

Every run starts from the single-task stack of ``qm9_single_task``: the 11 GINEs of the
profile's budget (``qm9_common.BUDGETS``, same data, split, subset sizes, optimiser, schedule and
baseline), one per target, each built right after seeding with the config's seed, trained as
one grouped stack. The ``qm9_single_task`` records keep no weights, so each run trains that
stack itself (:func:`single_task_config` is the exact ``qm9_single_task`` config of its seed
but for the targets) and records the check against the ``qm9_single_task`` record of the same
seed where the store has one (``metrics["reference_check"]``: per target the relative
difference of the test MAE; a member trains bit for bit as it would alone, so they should be
equal; :func:`reference_check`).

``method``:

- ``laf``, ``tucker``, ``tt`` (DMTRL): the trained stack's encoder maps (atom embedding, each
  convolution's MLP layers and bond embedding: :func:`~factorlab.models.qm9_task_factorized.
  encoder_maps`) are each decomposed with a task mode at the ranks that reach the relative
  reconstruction error ``rel_error`` (DMTRL's 10 %; :func:`~factorlab.models.qm9_task_factorized.
  factorize_gine`), biases and heads per task, and the factorized network is fine-tuned for
  the budget's epochs as one model (the epoch with the lowest mean standardized validation MAE
  is kept). Per map the record keeps the ranks, the *task rank* (LAF r, Tucker R_0, TT r_1) and
  ``rank_used = task rank / T`` (1/T: shared up to a per-task scale; 1: task-specific), and the
  initial relative error.
- ``mrn``: a deep relationship network. Long et al. share the lower (feature) layers and put
  the prior on the task-specific upper layers. The library's GINE has no partially shared
  variant, so the network here is the grouped single-task stack itself (every layer task
  specific, the members starting from the same weights, as in ``qm9_soft_sharing``), fine-tuned
  from the trained stack with the prior on the heads' first layer and the last encoder layer
  (``encoder.convs.{L-1}.nn.2``; :data:`MRN_LAYERS`), ``lam`` times the tensor-normal penalty
  (:func:`factorlab.mtl.mrn.mrn_penalty`; covariances by the flip-flop updates every
  ``update_every`` steps, ``eps`` keeping them well conditioned). Each member keeps its own
  best-validation epoch (the penalty couples the training, not the predictions). The learned
  task covariance is recorded as its correlation matrix per layer (``metrics["task_correlation"]``,
  rows and columns in ``targets`` order) and per epoch in ``history["task_correlation"]``.

- ``deep``: the journal's alternative to tensor factorization, "simply add more layers": one
  hard-shared GINE with ``deep_layers`` more convolutions than the budget's, its width chosen
  (:func:`deep_width`) so that it has, as nearly as a width allows, the parameter count of the
  ``deep_match`` network (Tucker) this seed's stack gives at ``rel_error``. Trained from
  scratch for the budget's epochs as one model (like ``qm9_hard_sharing``); the stack is still
  trained first (the count to match and the reference check need it). ``model`` adds
  ``match_params``, ``width`` and ``layers``.
- ``finetune``: the control for the extra training every DMTRL and MRN network gets: the
  trained stack fine-tuned for the budget's epochs exactly as they are (same optimiser,
  schedule and best-epoch choice), with nothing shared and no penalty. What DMTRL or MRN gains
  over it is the sharing; what it gains over the single-task stack is the second budget.

The DMTRL, MRN and finetune methods are fine-tuned from the trained stack for the budget's epochs, so a run trains
twice the budget; ``timing`` keeps the fine-tuning's (``train_s``, ``eval_s``, ``epoch_s``) and
adds ``single_s`` (the single-task stack's ``train_s``) and ``factorize_s``.

Record: ``qm9_single_task``'s metrics (per target ``test_mae``, ``valid_mae``, ``test_mae_std``,
``best_epoch``, ``composition_test_mae``) of the fine-tuned network, ``mean_valid_mae_std``,
``single_test_mae`` / ``single_valid_mae`` (the stack it started from: a reference for Δm
trained under this very run), ``reference_check``; ``model``: ``params`` (fine-tuned network),
``single_params`` (the 11 single-task networks), ``sharing`` (factorized: per map ``ranks``,
``task_rank``, ``rank_used``, ``init_rel_error``, ``params``, ``dense_params`` and
``effective_rank`` of the fine-tuned weights' task-mode unfolding); ``history``:
``fit_regression``'s (per target training MSE per epoch, the training-loss history) plus
``penalty``/``data_loss`` for ``mrn`` and ``single_history`` (the stack's).

Grid per seed (seeds 0-2 for ``cpu`` and ``full``; 0 for ``smoke`` on the 300-molecule fixture):
3 factorized methods + :data:`MRN_LAMBDAS` (2) + ``deep`` + ``finetune`` = 7 runs, 21 for ``cpu`` / ``full``
(a ``deep`` run costs the stack plus one hard-shared training, ~8 + ~2 minutes). CPU
estimate (``cpu``): ``qm9_single_task``'s grouped stack of 19 GINE-64s takes ~73 s an epoch on
one thread, so the stack of 11 ~42 s an epoch, ~8 minutes for its 10 epochs with evaluation.
Measured on one thread of the loaded 2-core machine (batch 64, members perturbed apart), a
training step of the factorized network at the 10 % ranks costs 1.15-1.4x the grouped stack's
(LAF 1.4, TT 1.25, Tucker 1.15) and the MRN step about the same as the stack's; the
decompositions take seconds (Tucker's HOOI the longest, ~2 s). So a DMTRL run costs ~8 + ~11
minutes, an MRN run ~8 + ~8 and a deeper-network run ~8 + ~2 when it trains its stack; a
process trains a seed's stack once and reuses it for the seed's other runs
(:func:`trained_stack`), so the 18 runs without ``finetune`` cost 9 x 11 + 6 x 8 + 3 x 2 + 3 x 8 ~ 180 minutes,
**~3 CPU-hours** in one process, and the 3 ``finetune`` runs ~8 minutes each more (~16 each where
the seed's stack must be trained again) (~3.4 in two processes sharing the grid, each training the
stacks of the seeds it meets), which may run two at a time for throughput (timings the chapter
reports come from runs made alone). ``full``: 21 runs of
the ``full`` budget on one GPU; :func:`smoke_variant` runs any of them in seconds at full width
(tests/smoke/test_qm9_tensor_mtl_full_grid.py: Tucker, MRN and the deeper network).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import BUDGETS, NASH11, QM9Config, base_config, train_members, smoke_variant
from factorlab.experiments.registry import Experiment
from factorlab.models import count_params
from factorlab.models.qm9_saved import build_member_models
from factorlab.models.qm9_task_factorized import factorize_gine, task_factorized_maps
from factorlab.mtl.mrn import mrn_penalty
from factorlab.train.qm9_regression import column_labels

NAME = "qm9_tensor_mtl"

#: The DMTRL decompositions.
FACTORIZED = ("laf", "tucker", "tt")
#: Every method a config may name.
METHODS = (*FACTORIZED, "mrn", "deep", "finetune")
#: The network whose parameter count ``deep`` matches, and how many convolutions it adds.
DEEP_MATCH = "tucker"
DEEP_LAYERS = 2
#: DMTRL's initialisation: the relative reconstruction error that sets the ranks.
REL_ERROR = 0.1
#: MRN's penalty weights (the prior's negative log-density, summed over the constrained layers).
#: After each flip-flop update the penalty's gradient is about ``2 λ Σ^{-1} W``, with the weights'
#: variance ~1/fan_in (1/64 at ``cpu``) a weight decay of ~``128 λ`` plus the coupling through ΣT:
#: λ 1e-3 a mild prior, 1e-2 a strong one.
MRN_LAMBDAS: list[float] = [1e-3, 1e-2]
#: MRN's covariance updates: a flip-flop sweep every ``update_every`` steps, ``eps`` I added.
MRN_SETTINGS = {"update_every": 50, "eps": 1e-3}
#: Seeds per profile.
SEEDS = {"smoke": [0], "cpu": [0, 1, 2], "full": [0, 1, 2]}


def mrn_layers(num_layers: int) -> list[str]:
    """The modules MRN's prior constrains in a grouped GINE of ``num_layers`` convolutions:
    the heads' first layer and the last convolution's second MLP layer."""
    return ["heads", f"encoder.convs.{num_layers - 1}.nn.2"]


@dataclass(kw_only=True)
class Config(QM9Config):
    """A run of ``qm9_tensor_mtl``: ``method`` (``laf``/``tucker``/``tt`` with ``rel_error``;
    ``mrn`` with ``lam`` and ``mrn``'s settings; ``deep`` with ``rel_error``, ``deep_match``
    and ``deep_layers``; the others None) on the :data:`NASH11` targets."""

    sharing: Literal["tensor"]
    task_set: Literal["nash11"]
    method: Literal["laf", "tucker", "tt", "mrn", "deep", "finetune"]
    rel_error: float | None
    lam: float | None
    mrn: dict | None
    deep_match: Literal["laf", "tucker", "tt"] | None = None
    deep_layers: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.targets != NASH11:
            raise ValueError(f"task_set 'nash11' is the targets {NASH11}, got {self.targets}")
        if self.model != "gine":
            raise ValueError(f"qm9_tensor_mtl factorizes the GINE encoder: model must be 'gine', got {self.model!r}")
        if self.method != "deep" and (self.deep_match is not None or self.deep_layers is not None):
            raise ValueError(f"only a deep config names deep_match and deep_layers, got method {self.method!r} with "
                             f"deep_match={self.deep_match!r}, deep_layers={self.deep_layers!r}")
        if self.method == "deep":
            if not (isinstance(self.rel_error, (int, float)) and 0 <= self.rel_error < 1) or self.lam is not None \
                    or self.mrn is not None:
                raise ValueError(f"a deep config needs rel_error in [0, 1), lam=None and mrn=None, got "
                                 f"rel_error={self.rel_error!r}, lam={self.lam!r}, mrn={self.mrn!r}")
            if self.deep_match not in FACTORIZED or not isinstance(self.deep_layers, int) or self.deep_layers < 1:
                raise ValueError(f"a deep config needs deep_match in {FACTORIZED} and deep_layers >= 1, got "
                                 f"deep_match={self.deep_match!r}, deep_layers={self.deep_layers!r}")
        elif self.method in FACTORIZED:
            if not (isinstance(self.rel_error, (int, float)) and 0 <= self.rel_error < 1) or self.lam is not None \
                    or self.mrn is not None:
                raise ValueError(f"a {self.method} config needs rel_error in [0, 1), lam=None and mrn=None, got "
                                 f"rel_error={self.rel_error!r}, lam={self.lam!r}, mrn={self.mrn!r}")
        elif self.method == "finetune":
            if self.rel_error is not None or self.lam is not None or self.mrn is not None:
                raise ValueError(f"a finetune config needs rel_error=None, lam=None and mrn=None, got "
                                 f"rel_error={self.rel_error!r}, lam={self.lam!r}, mrn={self.mrn!r}")
        elif self.method == "mrn":
            if self.rel_error is not None or not isinstance(self.lam, (int, float)) or not 0 <= self.lam < math.inf:
                raise ValueError(f"an mrn config needs a finite lam >= 0 and rel_error=None, got lam={self.lam!r}, "
                                 f"rel_error={self.rel_error!r}")
            if not isinstance(self.mrn, dict) or set(self.mrn) != set(MRN_SETTINGS):
                raise ValueError(f"an mrn config needs mrn with the keys {sorted(MRN_SETTINGS)}, got {self.mrn!r}")
        else:
            raise ValueError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")


def configs(profile: str) -> list[Config]:
    """Every run config under ``profile``: per seed, the factorized methods, MRN per λ, the
    deeper hard-shared network, then the ``finetune`` control (added after the first runs: it
    extends each seed's block)."""
    budget = BUDGETS[check_profile(profile)]
    out = []
    for seed in SEEDS[profile]:
        base = dict(**base_config(NAME, profile, "gine", budget["gine"]), sharing="tensor", task_set="nash11",
                    targets=list(NASH11), seed=seed)
        out += [Config(**base, method=m, rel_error=REL_ERROR, lam=None, mrn=None) for m in FACTORIZED]
        out += [Config(**base, method="mrn", rel_error=None, lam=lam, mrn=dict(MRN_SETTINGS)) for lam in MRN_LAMBDAS]
        out.append(Config(**base, method="deep", rel_error=REL_ERROR, lam=None, mrn=None, deep_match=DEEP_MATCH,
                          deep_layers=DEEP_LAYERS))
        out.append(Config(**base, method="finetune", rel_error=None, lam=None, mrn=None))
    return out


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]




#: Config keys of this experiment that ``qm9_single_task``'s configs do not have.
OWN_KEYS = ("task_set", "method", "rel_error", "lam", "mrn", "deep_match", "deep_layers")


def single_task_config(cfg: dict) -> dict:
    """The ``qm9_single_task`` config of ``cfg``'s budget and seed, for ``cfg``'s targets: the
    stack each run trains first."""
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in OWN_KEYS}
    out.update(experiment="qm9_single_task", sharing="none")
    return QM9Config.from_dict(out).to_dict()


def deep_config(cfg: dict, width: int) -> dict:
    """The hard-shared ``qm9_hard_sharing``-style config of a ``deep`` run: ``cfg``'s budget
    and seed, ``deep_layers`` more convolutions, hidden width ``width``."""
    out = single_task_config(cfg)
    kw = dict(out["model_kwargs"], hidden=int(width), layers=out["model_kwargs"]["layers"] + cfg["deep_layers"])
    out.update(experiment="qm9_hard_sharing", sharing="hard", model_kwargs=kw)
    return QM9Config.from_dict(out).to_dict()


def deep_params(cfg: dict, width: int) -> int:
    """Parameters of the ``deep`` network of ``cfg`` at hidden width ``width`` (one GINE,
    ``len(targets)`` outputs)."""
    d = deep_config(cfg, width)
    return count_params(build_member_models(d, [list(cfg["targets"])])[0])


def deep_width(cfg: dict, target_params: int, max_width: int = 4096) -> int:
    """The hidden width whose ``deep`` network has the parameter count nearest
    ``target_params`` (the smaller width on a tie; counts grow with the width, so bisection)."""
    if target_params < 1:
        raise ValueError(f"target_params must be >= 1, got {target_params}")
    lo, hi = 1, max_width
    while lo < hi:  # the smallest width with at least target_params
        mid = (lo + hi) // 2
        if deep_params(cfg, mid) >= target_params:
            hi = mid
        else:
            lo = mid + 1
    below = max(lo - 1, 1)
    return min((below, lo), key=lambda w: (abs(deep_params(cfg, w) - target_params), w))


def reference_check(cfg: dict, single_test_mae: dict[str, float], store=None) -> dict:
    """The stack trained in the run against the ``qm9_single_task`` records of the same profile
    and seed (never trains): ``{"compared": [targets], "rel_diff": {target: |a - b| / b},
    "max_rel_diff": float or None, "equal": bool or None}`` (None: no record holds a target)."""
    from factorlab.experiments import qm9_single_task
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    mine = single_task_config(cfg)
    rel = {}
    for ref in qm9_single_task.grid(cfg["profile"]):
        same = {k: v for k, v in ref.items() if k != "targets"} == {k: v for k, v in mine.items() if k != "targets"}
        if not same or not set(ref["targets"]) & set(single_test_mae):
            continue
        rec = store.get(ref)
        if rec is None:
            continue
        for t in ref["targets"]:
            if t in single_test_mae:
                b = rec["metrics"]["test_mae"][t]
                rel[t] = abs(single_test_mae[t] - b) / b if b else abs(single_test_mae[t] - b)
    worst = max(rel.values()) if rel else None
    return {"compared": sorted(rel, key=list(single_test_mae).index), "rel_diff": rel, "max_rel_diff": worst,
            "equal": None if worst is None else worst <= 1e-6}


class OneModel(nn.Module):
    """A wrapper that makes ``fit_regression`` treat a grouped network as one model (one best
    epoch for all outputs): the factorized encoder couples the members."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, batch):
        return self.net(batch)


def sharing_summary(model: nn.Module, num_tasks: int, init_errors: dict[str, float]) -> dict[str, dict]:
    """Per task-factorized map of ``model``: ranks, task rank, ``rank_used`` (task rank / T),
    the initial relative reconstruction error, parameters, the dense T-task count and the
    entropy effective rank (1..T) of the task-mode unfolding of its weights as they are now
    (after fine-tuning: how much of the kept task rank the trained weights use)."""
    out = {}
    for name, layer in task_factorized_maps(model).items():
        r = int(layer.task_rank())
        out[name] = {"ranks": [int(x) for x in layer.rank], "task_rank": r, "rank_used": r / num_tasks,
                     "init_rel_error": init_errors.get(name), "params": int(layer.num_params()),
                     "dense_params": int(layer.dense_params()),
                     "effective_rank": float(layer.task_effective_rank())}
    return out


def _rel_errors(single: nn.Module, fact: nn.Module) -> dict[str, float]:
    """Per factorized map: ||W_factorized - W_single|| / ||W_single|| over the T task weights."""
    from factorlab.models.qm9_task_factorized import task_weights_of

    out = {}
    for name, layer in task_factorized_maps(fact).items():
        w, _, _ = task_weights_of(single.get_submodule(name))
        approx = layer.task_weights().detach().to(w.dtype)
        out[name] = float((approx.reshape(w.shape) - w).norm() / w.norm())
    return out


#: The last single-task stack :func:`trained_stack` trained: ``(key, TrainedMembers)``.
_STACK: list = []


def trained_stack(cfg: dict, device: str = "auto"):
    """The single-task stack of ``cfg``'s budget, seed and targets (:func:`single_task_config`),
    trained by :func:`~factorlab.experiments.qm9_common.train_members`, or the one this process
    trained last for the same config and device: the seven runs of a seed start from the same
    stack, which trains exactly alike every time (each member is built after seeding, the
    batches follow the seed), so a grid run in one process trains it once per seed, not six
    times (~8 of a run's ~19 CPU-minutes at ``cpu``). The cached stack is handed out with its
    model and parts copied (nothing a run does reaches the next run); its ``parts["timing"]``
    gains ``reused`` (False when trained by this call)."""
    from factorlab.results import config_hash
    from factorlab.train.device import resolve_device

    stc = single_task_config(cfg)
    key = (config_hash(stc), str(resolve_device(device)))
    if not _STACK or _STACK[0][0] != key:
        _STACK[:] = [(key, train_members(stc, [[t] for t in cfg["targets"]], device))]
        reused = False
    else:
        reused = True
    tm = _STACK[0][1]
    parts = copy.deepcopy(tm.parts)
    parts["timing"]["reused"] = reused
    return dataclasses.replace(tm, model=copy.deepcopy(tm.model), parts=parts)


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one config (see the module docstring); the parts of its run record."""
    c = Config.from_dict(cfg)
    targets = list(cfg["targets"])
    singles = [[t] for t in targets]
    single = trained_stack(cfg, device)
    sp = single.parts
    trained = single.model
    holder: dict = {}

    if c.method == "deep":
        return _train_deep(cfg, targets, single, device)
    if c.method in FACTORIZED:
        def prepare(_stack):
            t0 = time.perf_counter()
            fact = factorize_gine(trained, c.method, rel_error=c.rel_error)
            holder["factorize_s"] = time.perf_counter() - t0
            holder["init_errors"] = _rel_errors(trained, fact)
            holder["net"] = fact
            return OneModel(fact), {}
    elif c.method == "finetune":
        def prepare(_stack):
            net = copy.deepcopy(trained)
            holder["net"], holder["factorize_s"] = net, 0.0
            return net, {}
    else:
        def prepare(_stack):
            net = copy.deepcopy(trained)
            pen = mrn_penalty(net, c.lam, mrn_layers(cfg["model_kwargs"]["layers"]), **c.mrn)
            holder["pen"], holder["net"], holder["factorize_s"] = pen, net, 0.0

            def corr():
                return {f"{name}:{i},{j}": float(p.task_correlation()[i, j])
                        for name, p in zip(mrn_layers(cfg["model_kwargs"]["layers"]), pen.priors)
                        for i in range(len(targets)) for j in range(i + 1, len(targets))}
            return net, {"penalty": pen, "probes": {"task_correlation": corr}}

    tm = train_members(cfg, singles, device, prepare=prepare)
    parts = _with_reference(tm, sp, cfg)
    metrics, hist = parts["metrics"], parts["history"]
    net = holder["net"]
    info = parts["model"]
    info.update(method=c.method, params=count_params(net), single_params=sp["model"]["params"])
    if c.method in FACTORIZED:
        info["sharing"] = sharing_summary(net, len(targets), holder["init_errors"])
    elif c.method == "mrn":
        pen = holder["pen"]
        names = mrn_layers(cfg["model_kwargs"]["layers"])
        metrics["task_correlation"] = {n: p.task_correlation().tolist() for n, p in zip(names, pen.priors)}
        metrics["mrn_updates"] = {n: p.updates for n, p in zip(names, pen.priors)}
        info["mrn_layers"] = names
    metrics["lam"] = c.lam
    parts["timing"].update(factorize_s=holder["factorize_s"])
    return parts


def _with_reference(tm, sp: dict, cfg: dict) -> dict:
    """The record parts of the trained network ``tm`` with what every run adds: the mean
    standardized validation MAE, the stack's (``sp``) test and validation MAEs, the reference
    check, the stack's training time and history."""
    parts = tm.parts
    metrics = parts["metrics"]
    labels = column_labels(tm.columns)
    std = tm.data.y_std.index_select(0, torch.as_tensor(tm.columns, device=tm.data.device)).tolist()
    metrics["mean_valid_mae_std"] = sum(metrics["valid_mae"][l] / s for l, s in zip(labels, std)) / len(labels)
    metrics["single_test_mae"] = dict(sp["metrics"]["test_mae"])
    metrics["single_valid_mae"] = dict(sp["metrics"]["valid_mae"])
    metrics["reference_check"] = reference_check(cfg, metrics["single_test_mae"])
    parts["timing"]["single_s"] = sp["timing"]["train_s"]
    parts["timing"]["single_reused"] = bool(sp["timing"].get("reused", False))  # trained by an earlier run of this process
    parts["history"]["single_history"] = sp["history"]
    return parts


def _train_deep(cfg: dict, targets: list[str], single, device: str) -> dict:
    """The ``deep`` run after its stack ``single`` trained: match the parameter count of the
    ``deep_match`` network of this stack, train the deeper hard-shared GINE from scratch."""
    sp = single.parts
    t0 = time.perf_counter()
    match = count_params(factorize_gine(single.model, cfg["deep_match"], rel_error=cfg["rel_error"]))
    width = deep_width(cfg, match)
    factorize_s = time.perf_counter() - t0
    d = deep_config(cfg, width)
    parts = _with_reference(train_members(d, [targets], device), sp, cfg)
    parts["metrics"]["lam"] = None
    parts["model"].update(method="deep", single_params=sp["model"]["params"], match_params=match, width=width,
                          layers=d["model_kwargs"]["layers"])  # "params": train_members' count of the one GINE
    parts["timing"]["factorize_s"] = factorize_s
    return parts


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("method", "lam", "seed"))
