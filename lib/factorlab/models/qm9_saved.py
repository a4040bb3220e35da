"""Trained QM9 networks kept for the demonstration: one file per model, the weights together
with everything needed to rebuild the network and to turn its outputs into QM9's units.

A file is written by the experiment that trained it (``qm9_demo_model``) and named by that
run's key, so the run record (config, test errors, provenance) and the weights belong together:
``<models dir>/<experiment>/<key>.pt`` beside ``<run store>/<experiment>/<key>.json``. It holds
only tensors, strings and numbers (``torch.load(..., weights_only=True)`` reads it):

- ``format`` (int), ``experiment``, ``key``, ``config`` (the run's config, as JSON text);
- ``members``: the targets of each member (``[["mu"], ["alpha"], ...]`` for single-task
  models, ``[[all 19]]`` for one shared model, groups and singletons for a grouping); the
  outputs follow that order. Members of equal size are rebuilt as one grouped network, members
  of different sizes as a :class:`~factorlab.models.stack.ModelStack` (:func:`stack_or_single`);
- ``state_dict``: the trained network (each member at its best validation epoch);
- ``baseline``: the composition baseline (``weight`` float64 [6, 19], ``res_mean``,
  ``res_std`` float32 [19]) fit on the training split, whose residual the network learned.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from factorlab.data.qm9 import TARGET_NAMES, QM9Batch, target_index
from factorlab.files import atomic_torch_save, file_digest
from factorlab.models.qm9 import build_qm9_model
from factorlab.models.qm9_baseline import CompositionBaseline
from factorlab.models.stack import regroup, stack_models
from factorlab.seed import seed_everything

#: Version of the file layout; :func:`load_qm9_predictor` refuses other versions.
FORMAT = 1


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (:func:`factorlab.files.file_digest`)."""
    return file_digest(path, "sha256")


def build_member_models(config: dict, members: list[list[str]], seed: int | None = None) -> list[torch.nn.Module]:
    """One untrained model of ``config`` (``model``, ``model_kwargs``) per member, member ``k``
    with ``len(members[k])`` outputs; with ``seed``, each is built right after
    ``seed_everything(seed)``, so a member starts from the same weights alone or in a stack."""
    models = []
    for targets in members:
        if seed is not None:
            seed_everything(seed)
        models.append(build_qm9_model(config["model"], len(targets), **config["model_kwargs"]))
    return models


def stack_or_single(models: list[torch.nn.Module]) -> torch.nn.Module:
    """The members as one network: stacked (grouped where possible) when there are several."""
    return stack_models(models) if len(models) > 1 else models[0]


def build_members(config: dict, members: list[list[str]], seed: int | None = None) -> torch.nn.Module:
    """The untrained network of ``config`` for ``members`` (:func:`build_member_models`, stacked)."""
    return stack_or_single(build_member_models(config, members, seed))


def save_qm9_model(path: str | os.PathLike, model: torch.nn.Module, members: list[list[str]],
                   baseline: CompositionBaseline, config: dict, key: str) -> dict:
    """Write a trained network to ``path`` (atomically) and return what a run record keeps of
    it: ``file`` (the name), ``bytes`` and ``sha256``."""
    path = Path(path)
    payload = {
        "format": FORMAT, "experiment": config["experiment"], "key": key, "config": json.dumps(config, sort_keys=True),
        "members": [list(m) for m in members],
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        # clone: a tensor that views a larger storage (lstsq's solution does) would save all of it
        "baseline": {k: getattr(baseline, k).detach().cpu().clone() for k in ("weight", "res_mean", "res_std")},
    }
    atomic_torch_save(payload, path)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


class QM9Predictor:
    """A saved network, ready to predict QM9's targets in their units.

    Attributes:
        config: the training run's config; ``key``: its run key.
        targets: the target names of the output columns (members' targets in order).
        model: the network in eval mode (members of unequal sizes regrouped, one grouped model
            per size: :func:`~factorlab.models.stack.regroup`); ``baseline``: its composition baseline.
    """

    def __init__(self, model: torch.nn.Module, members: list[list[str]], baseline: CompositionBaseline,
                 config: dict, key: str):
        self.model = regroup(model, [len(m) for m in members]).eval()  # unequal members: one grouped model per size
        self.members = members
        self.targets = [t for m in members for t in m]
        self.baseline = baseline
        self.config = config
        self.key = key
        self._columns = torch.as_tensor([target_index(t) for t in self.targets])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.config['experiment']}/{self.key}: {self.config['model']}, "
                f"{len(self.members)} member(s), {len(self.targets)} targets)")

    @torch.no_grad()
    def predict_batch(self, batch: QM9Batch) -> torch.Tensor:
        """Predictions float32 [G, len(targets)] in the units of :data:`~factorlab.data.qm9.TARGETS`."""
        z = self.model(batch)
        return self.baseline.unstandardize(batch, z, self._columns.to(z.device))

    def predict(self, data, ids: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
        """Predictions [len(ids), len(targets)] for molecules ``ids`` (rows) of a
        :class:`~factorlab.data.qm9.QM9Data` (all rows when None), in batches."""
        ids = torch.arange(data.num_molecules) if ids is None else torch.as_tensor(ids, dtype=torch.long)
        out = [self.predict_batch(data.batch(ids[i:i + batch_size])) for i in range(0, ids.numel(), batch_size)]
        return torch.cat(out)

    def predict_dict(self, data, row: int = 0) -> dict[str, float]:
        """One molecule's predictions keyed by target name."""
        values = self.predict(data, torch.tensor([row]))[0].tolist()
        return dict(zip(self.targets, values))


def load_qm9_predictor(path: str | os.PathLike, device: str | torch.device = "cpu",
                       sha256: str | None = None) -> QM9Predictor:
    """Read a file written by :func:`save_qm9_model`.

    Raises:
        FileNotFoundError: no such file (the message says how to make one).
        ValueError: the file is corrupt, of another format, or its SHA-256 is not ``sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved QM9 network at {path}: train one with "
                                f"`python -m factorlab run qm9_demo_model --profile cpu`")
    if sha256 is not None and sha256_file(path) != sha256:
        raise ValueError(f"{path} does not match the SHA-256 its run record states ({sha256[:12]}...): "
                         f"the file is corrupt or from another run; restore it from git or retrain")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable saved network ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} has format {found!r}, expected {FORMAT}")
    config = json.loads(payload["config"])
    members = payload["members"]
    unknown = sorted({t for m in members for t in m} - set(TARGET_NAMES))
    if unknown:
        raise ValueError(f"{path} names unknown targets {unknown}")
    model = build_members(config, members)
    model.load_state_dict(payload["state_dict"])
    b = payload["baseline"]
    baseline = CompositionBaseline(b["weight"], b["res_mean"], b["res_std"])
    return QM9Predictor(model.to(device), members, baseline, config, payload["key"])
