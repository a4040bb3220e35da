"""Experiment ``qm9_demo_full``: the demonstration's networks trained on the *whole* QM9
training split (110,000 molecules) instead of the ``cpu`` budget's first 20,000.

The same two networks as :mod:`~factorlab.experiments.qm9_demo_model` (``sharing="none"``: 19
single-task GINEs as one grouped stack; ``"hard"``: one hard-shared GINE with 19 heads), the
same GINE, optimiser, validation subset (the budget's ``n_valid``), whole test split and seed,
trained and recorded by :func:`qm9_demo_model.train <factorlab.experiments.qm9_demo_model.train>`
(test errors, the sample's predictions, inference times, saved weights), with two changes:
``n_train=None`` (the whole training split) and :data:`EPOCHS`. So the chapter "DFT or
network?" can set the test error of each network trained on 20,000 molecules beside the same
network trained on all of them; it reads these records only where they exist
(:func:`factorlab.report.dft_or_network.full_split_records`) and never trains them, and
``python -m factorlab predict --train-size full`` loads their weights
(:func:`load_full_predictor`).

Epochs under ``cpu``: what one network can train in about one 3-hour session on one CPU thread
beside one other training. The committed ``qm9_demo_model`` ``cpu`` records (20,000
molecules, batch 64, one thread, machine loaded) give 89.8 s per training epoch for the
19-member stack and 5.96 s for the hard-shared network, 17.0 s and 0.2 s per validation pass
over 2,000 molecules, and 257 s and 7 s for the rest of the run (test split, inference timing,
loading). Training time grows with the training molecules, 110,000 / 20,000 = 5.5 times, the
validation pass does not (same ``n_valid``), so the stack needs 89.8 × 5.5 + 17.0 ≈ 511 s an
epoch: 20 epochs ≈ 10,200 s + 257 s ≈ 2.9 hours, and the hard-shared network
5.96 × 5.5 + 0.2 ≈ 33 s an epoch: 20 epochs ≈ 11 minutes. About 3.1 CPU-hours for the grid
(one thread per run). Both train 20 epochs of 1,718 steps (34,360 steps, 11 times the 3,120 of
the 20,000-molecule networks), with the same cosine schedule.

``smoke`` is ``qm9_demo_model``'s smoke networks under this experiment's name (the fixture's
training split is whole there already). ``full`` has no runs: under ``full``,
``qm9_demo_model`` itself trains on the whole training split.

Weights: ``<models dir>/qm9_demo_full/<key>.pt`` (:func:`weights_path`), checked against the
record's SHA-256 on loading, as ``qm9_demo_model``'s.
"""
from __future__ import annotations

from dataclasses import dataclass

from factorlab.experiments import qm9_demo_model as demo
from factorlab.experiments.profiles import check_profile
from factorlab.experiments.qm9_common import ALL_TARGETS, BUDGETS, QM9Config, base_config
from factorlab.experiments.registry import Experiment

NAME = "qm9_demo_full"
#: The networks, in grid order (``qm9_demo_model``'s, less the grouped one).
SHARING = ("none", "hard")
#: Epochs per profile (``full``: no runs, see the module docstring).
EPOCHS = {"smoke": BUDGETS["smoke"]["epochs"], "cpu": 20}


@dataclass(kw_only=True)
class Config(demo.Config):
    """A ``qm9_demo_model`` config trained on the whole training split: ``n_train`` None and
    ``sharing`` one of :data:`SHARING`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sharing not in SHARING:
            raise ValueError(f"{NAME} trains sharing {' or '.join(map(repr, SHARING))}, got {self.sharing!r}")
        if self.n_train is not None:
            raise ValueError(f"{NAME} trains on the whole training split: n_train must be None, got {self.n_train}")


def configs(profile: str) -> list[QM9Config]:
    """The networks under ``profile``: :data:`SHARING` on the whole training split for
    :data:`EPOCHS` epochs, everything else from the profile's budget (seed 0, all 19 targets);
    none under ``full``."""
    if check_profile(profile) not in EPOCHS:
        return []
    budget = BUDGETS[profile]
    return [Config(**base_config(NAME, profile, "gine", budget["gine"], n_train=None, epochs=EPOCHS[profile]),
                   sharing=sharing, targets=list(ALL_TARGETS), seed=0) for sharing in SHARING]


def grid(profile: str) -> list[dict]:
    """:func:`configs` as the dicts the run store hashes."""
    return [c.to_dict() for c in configs(profile)]


#: Where a run's weights are saved: ``<models dir>/qm9_demo_full/<key>.pt`` (the demo's rule).
weights_path = demo.weights_path


def train(cfg: dict, device: str = "auto") -> dict:
    """Train one network with :func:`qm9_demo_model.train
    <factorlab.experiments.qm9_demo_model.train>` (the record's parts as there) and keep its
    weights in this experiment's folder (:func:`weights_path`)."""
    Config.from_dict(cfg)
    return demo.train(cfg, device)  # saves to weights_path(cfg): this experiment's folder


#: How the messages name these networks.
_WHAT = ", on the whole training split"


def find_full_record(sharing: str = "none", store=None) -> dict:
    """The record of the saved full-split network ``sharing`` (one of :data:`SHARING`; the
    best profile whose weights file exists): :func:`qm9_demo_model.find_demo_record
    <factorlab.experiments.qm9_demo_model.find_demo_record>` on this experiment.

    Raises:
        ValueError: ``sharing`` is not one of :data:`SHARING`.
        LookupError: no such network is saved (the message names the command that trains it).
    """
    _check_sharing(sharing)
    return demo.find_demo_record(sharing, store, NAME, networks=SHARING, what=_WHAT)


def load_full_predictor(sharing: str = "none", device: str = "cpu", store=None):
    """The saved network of :func:`find_full_record`, checked against its record's SHA-256,
    and that record: ``(QM9Predictor, record)``."""
    _check_sharing(sharing)
    return demo.load_demo_predictor(sharing, device, store, NAME, networks=SHARING, what=_WHAT)


def _check_sharing(sharing: str) -> None:
    if sharing not in SHARING:
        raise ValueError(f"no {NAME} network with sharing={sharing!r}: the networks trained on the whole training "
                         "split are sharing='none' (19 single-task GINEs) and sharing='hard' (one hard-shared GINE)")


EXPERIMENT = Experiment(NAME, "experiment", Config, configs, train, label_keys=("sharing", "seed"))
