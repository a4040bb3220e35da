"""The registry of everything that writes a run record: every committed record's config is
rebuilt through its experiment's typed config with the same key (no record is re-run); every
grid round-trips through its config class; the list command shows every registered name;
benchmark records come from ``run_experiment`` like any run."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from factorlab.cli import main
from factorlab.experiments import EXPERIMENTS, PROFILES, RunConfig, get, get_experiment, names, run_experiment
from factorlab.experiments.config import matches
from factorlab.results import RunNotCachedError, RunStore, config_hash

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "data" / "results"


def _committed() -> dict[str, list[Path]]:
    by = defaultdict(list)
    for path in sorted(RESULTS.glob("*/*.json")):
        by[path.parent.name].append(path)
    return dict(by)


COMMITTED = _committed()
BENCHMARKS = ["cifar_anchor", "dft_threads_benchmark", "layers_benchmark", "memory_format_benchmark",
              "qm9_demo_inference", "qm9_loader_benchmark", "train_throughput"]
#: Benchmarks whose cpu record is still to be measured on a quiet machine (none committed yet).
NOT_YET_RECORDED = {"train_throughput"}


def test_every_record_folder_is_registered():
    assert COMMITTED, f"no records under {RESULTS}"
    assert sorted(set(COMMITTED) - set(EXPERIMENTS)) == []


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_every_committed_record_keeps_its_key_through_the_typed_config(name):
    exp = get(name)
    for path in COMMITTED[name]:
        record = json.loads(path.read_text())
        rebuilt = exp.from_dict(record["config"])
        assert isinstance(rebuilt, exp.config)
        assert rebuilt.to_dict() == record["config"], path
        assert config_hash(rebuilt.to_dict()) == record["key"] == path.stem, path


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_grids_round_trip_through_their_config(name, profile):
    from factorlab.experiments.registry import GridNeedsRecordsError

    exp = get(name)
    try:
        configs = exp.grid(profile)
    except GridNeedsRecordsError as err:  # a grid chosen from records this store lacks
        assert "python -m factorlab run" in str(err) and f"--profile {profile}" in str(err)
        pytest.skip(str(err))
    dicts = [c.to_dict() for c in configs]
    assert dicts == get_experiment(name).grid(profile)  # the module's dicts are the typed configs'
    assert [exp.from_dict(d) for d in dicts] == configs
    assert all(d["experiment"] == name and d["profile"] == profile for d in dicts)
    json.dumps(dicts)  # plain JSON
    assert len({config_hash(d) for d in dicts}) == len(dicts)
    assert all(isinstance(exp.label(c), str) and exp.label(c) == exp.label(c.to_dict()) for c in configs)


def test_every_name_is_listed_with_its_kind_and_runs(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(EXPERIMENTS)
    by = {line.split()[0]: line for line in lines}
    assert by["mnist_baselines"].split()[1] == "experiment" and "smoke: 8, cpu: 24, full: 40" in by["mnist_baselines"]
    for name in BENCHMARKS:
        assert by[name].split()[1] == "benchmark" and "smoke: 1, cpu: 1, full: 1" in by[name]
    assert main(["list", "--kind", "benchmark", "--names"]) == 0
    assert capsys.readouterr().out.split() == BENCHMARKS == names("benchmark")


def test_benchmark_records_come_from_run_experiment(monkeypatch):
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")  # nothing may be measured here
    store = RunStore(RESULTS)
    for name in BENCHMARKS:
        if name in NOT_YET_RECORDED and name not in COMMITTED:
            continue
        key = config_hash(get_experiment(name).grid("cpu")[0])  # older records of the profile may stay beside it
        (path,) = [p for p in COMMITTED[name] if p.stem == key]
        (rec,) = run_experiment(name, "cpu", store=store)
        assert rec == json.loads(path.read_text())
    with pytest.raises(RunNotCachedError, match="python -m factorlab run layers_benchmark --profile full"):
        run_experiment("layers_benchmark", "full", store=store)


def test_a_benchmark_measures_on_the_device_its_profile_names():
    exp = get("layers_benchmark")
    full, cpu = exp.grid("full")[0], exp.grid("cpu")[0]
    assert (full.device, cpu.device, exp.grid("smoke")[0].device) == ("cuda", "cpu", "cpu")
    assert exp.device_for(full, "auto") == "cuda" and exp.device_for(cpu, "auto") == exp.device_for(cpu, "cpu") == "cpu"
    with pytest.raises(ValueError, match=r"layers_benchmark's full profile measures on cuda, not cpu: on a GPU use "
                                         r"--profile full, on the CPU --profile cpu \(or smoke\)"):
        exp.device_for(full, "cpu")
    assert get("mnist_baselines").device_for({"device": "cuda"}, "cpu") == "cpu"  # experiments: as asked


def test_from_dict_names_unknown_missing_and_mistyped_keys():
    exp = get("mnist_baselines")
    cfg = exp.grid("smoke")[0].to_dict()
    with pytest.raises(ValueError, match=r"^mnist_baselines.Config: unknown keys \['colour'\]; its keys are \[.*'variant', 'weight_decay'\]$"):
        exp.from_dict({**cfg, "colour": "red"})
    with pytest.raises(ValueError, match=r"missing keys \['seed'\]"):
        exp.from_dict({k: v for k, v in cfg.items() if k != "seed"})
    with pytest.raises(ValueError, match=r"^mnist_baselines.Config.seed must be int, got '0'$"):
        exp.from_dict({**cfg, "seed": "0"})
    with pytest.raises(ValueError, match=r"^mnist_baselines.Config.net must be 'mlp' \| 'conv1' \| 'conv2', got 'vgg'"):
        exp.from_dict({**cfg, "net": "vgg"})
    with pytest.raises(ValueError, match="not a config of 'mnist_baselines' \\(its experiment is 'cifar_init'\\)"):
        exp.from_dict(get("cifar_init").grid("smoke")[0].to_dict())
    with pytest.raises(ValueError, match="unknown experiment 'nope': choose one of cifar_anchor"):
        get("nope")


def test_a_key_written_only_off_its_default_stays_absent():
    init, base = get("cifar_init"), get("cifar_baselines")
    off = init.grid("cpu")[0]
    assert off.dirac is False and off.to_dict()["dirac"] is False
    on = base.grid("cpu")[0]
    assert on.dirac is True and "dirac" not in on.to_dict()
    with pytest.raises(ValueError, match="key 'dirac' is written only when it is not True; leave it out"):
        base.from_dict({**on.to_dict(), "dirac": True})
    with pytest.raises(ValueError, match="dirac=False applies to the dense airbench net only"):
        on.replace(net="resnet9", dirac=False)


def test_labels_come_from_the_experiment():
    assert get("mnist_baselines").label(get("mnist_baselines").grid("smoke")[0]) == "net=mlp variant=journal seed=0"
    fact = [c for c in get("cifar_factorized").grid("smoke") if c.wd_mode == "scaled"][0]
    assert get("cifar_factorized").label(fact) == \
        "net=airbench width=0.125 factorize=family:separable_lowrank,factor:4 wd_mode=scaled seed=0"
    assert get("qm9_hard_sharing").label(get("qm9_hard_sharing").grid("cpu")[-1]) == "task_set=std12 seed=2"
    assert get("dft_validation").label(get("dft_validation").grid("smoke")[0]) == "qm9_index=1 heavy_atoms=1"
    assert get("layers_benchmark").label(get("layers_benchmark").grid("cpu")[0]) == "device=cpu budget_s=0.3"


def test_json_types_are_checked_exactly():
    assert matches(1, float) and matches(1.5, float) and not matches(True, int) and not matches(True, float)
    assert matches(None, int | None) and not matches(1.0, int)
    assert matches(["a"], list[str]) and not matches(("a",), list[str]) and not matches([1], list[str])
    assert matches({"a": 1}, dict[str, int]) and not matches({1: 1}, dict)
    assert matches("cpu", Literal["cpu", "cuda"]) and not matches("tpu", Literal["cpu", "cuda"])


def test_a_config_class_of_ones_own():
    @dataclass(kw_only=True)
    class Toy(RunConfig):
        experiment: str
        width: float
        tag: str | None = None
        OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("tag",)

    toy = Toy(experiment="toy", width=2)
    assert toy.to_dict() == {"experiment": "toy", "width": 2} and type(toy.to_dict()["width"]) is int
    assert Toy.from_dict({"experiment": "toy", "width": 0.5, "tag": "x"}).tag == "x"
    with pytest.raises(ValueError, match="^test_registry.Toy.width must be float, got 'wide'$"):
        Toy(experiment="toy", width="wide")
