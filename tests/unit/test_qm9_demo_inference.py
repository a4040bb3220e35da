"""The benchmark ``qm9_demo_inference`` (``benchmarks/qm9_demo_inference.py``): its config names
the ``qm9_demo_model`` networks of its profile by their run keys, a missing network is one line
naming the command that trains it, and a smoke run over the smoke networks (trained into a
temporary store) records every network's times, medians of its repeats, and ratios to the
single-task network equal to the ratios of those medians."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
from report_smoke import train_smoke

from factorlab.experiments import get, qm9_demo_inference as bench, qm9_demo_model as demo
from factorlab.experiments.benchmark_cli import benchmark_main
from factorlab.results import RunStore, config_hash

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """A store holding the smoke networks of qm9_demo_model (three, weights under .models)."""
    root = tmp_path_factory.mktemp("store")
    recs = train_smoke("qm9_demo_model", root)
    return root, {r["config"]["sharing"]: r for r in recs}


@pytest.fixture
def in_store(demo_store, monkeypatch):
    root, recs = demo_store
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(root))
    monkeypatch.delenv("FACTORLAB_MODELS_DIR", raising=False)
    monkeypatch.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
    return root, recs


def test_the_config_names_the_profiles_demo_networks_by_key(in_store):
    _, recs = in_store
    cfg = bench.make_config("smoke")
    assert cfg.networks == {s: recs[s]["key"] for s in demo.SHARING}  # none, hard, grouped, in that order
    assert list(cfg.networks) == list(demo.SHARING)
    assert cfg.networks == {c.sharing: config_hash(c.to_dict()) for c in demo.configs("smoke")}
    assert (cfg.device, cfg.threads, cfg.repeats, cfg.batch_sizes) == ("cpu", 1, 3, list(demo.BATCH_SIZES))
    assert [c.to_dict() for c in get(bench.NAME).grid("smoke")] == [cfg.to_dict()]
    assert bench.make_config("full").device == "cuda" and bench.make_config("cpu").device == "cpu"
    # the cpu profile names the committed cpu networks (this store lacks the grouping records,
    # so qm9_demo_model's cpu grid, and with it this config, has no grouped network here)
    cpu = bench.demo_keys("cpu")
    assert list(cpu) == ["none", "hard"]
    for sharing, key in cpu.items():
        committed = json.loads((REPO / "data" / "results" / demo.NAME / f"{key}.json").read_text())
        assert (committed["config"]["profile"], committed["config"]["sharing"]) == ("cpu", sharing)
        assert (REPO / "data" / "models" / demo.NAME / f"{key}.pt").is_file()
    with pytest.raises(ValueError, match=r"networks must include the single-task network 'none'"):
        cfg.replace(networks={"hard": recs["hard"]["key"]})
    with pytest.raises(ValueError, match=r"unknown qm9_demo_model sharing \['soft'\]: choose among none, hard, grouped"):
        cfg.replace(networks={**cfg.networks, "soft": recs["hard"]["key"]})
    with pytest.raises(ValueError, match=r"run keys \(16 hex digits\), got \['abc'\]"):
        cfg.replace(networks={"none": "abc"})


def test_a_missing_demo_network_is_one_line_naming_the_command(in_store, tmp_path, monkeypatch, capsys):
    root, recs = in_store
    cfg = bench.make_config("smoke").to_dict()
    empty = RunStore(tmp_path / "empty")
    with pytest.raises(LookupError) as err:
        bench.demo_records(cfg, empty)
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith("train them with `python -m factorlab run qm9_demo_model --profile smoke`")
    assert msg.startswith(f"qm9_demo_inference (smoke) times the qm9_demo_model networks none ({recs['none']['key']}), "
                          f"hard ({recs['hard']['key']}), grouped ({recs['grouped']['key']}), with no record in ")
    # one network without its record: the command trains that one
    one = {**cfg, "networks": {**cfg["networks"], "hard": "0123456789abcdef"}}
    with pytest.raises(LookupError, match=r"networks hard \(0123456789abcdef\), with no record in .*: train them with "
                                          r"`python -m factorlab run qm9_demo_model --profile smoke --where sharing=hard`$"):
        bench.demo_records(one)
    # a record whose weights file is gone
    monkeypatch.setenv("FACTORLAB_MODELS_DIR", str(tmp_path / "no-models"))
    with pytest.raises(LookupError, match=r"with no weights file in .*no-models/qm9_demo_model: train them with"):
        bench.demo_records(cfg)
    monkeypatch.delenv("FACTORLAB_MODELS_DIR")
    # the grouped network of cpu/full comes after the grouping grid it is chosen from
    assert bench.train_command("cpu", ["grouped"]) == (
        "`python -m factorlab run qm9_grouping --profile cpu` (its best grouping), then "
        "`python -m factorlab run qm9_demo_model --profile cpu --where sharing=grouped`")
    # the script: status 2 and the one line
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path / "empty"))
    assert benchmark_main(bench.NAME, ["--quick", "--device", "cpu"]) == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: qm9_demo_inference (smoke) times the qm9_demo_model")


def test_a_smoke_run_records_medians_and_ratios(in_store, capsys):
    root, recs = in_store
    threads = torch.get_num_threads()
    assert benchmark_main(bench.NAME, ["--quick", "--device", "cpu", "--record"]) == 0
    assert torch.get_num_threads() == threads  # restored after measuring on one thread
    out = capsys.readouterr().out
    (path,) = (root / bench.NAME).glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["config"] == bench.make_config("smoke").to_dict() and rec["key"] == path.stem
    m = rec["metrics"]
    assert m["threads"] == rec["timing"]["threads"] == 1 and m["repeats"] == 3
    assert m["n_test"] == recs["none"]["model"]["n_test"]
    assert list(m["inference"]) == list(m["ratio_to_none"]) == sorted(demo.SHARING)  # JSON keys are sorted
    for s in demo.SHARING:
        inf = m["inference"][s]
        assert set(recs[s]["timing"]["inference"]) <= set(inf)  # the fields of the training record's timing
        samp = inf["samples"]
        assert len(samp["single_s"]) == len(samp["featurize_s"]) == 3
        assert inf["single_s"] == statistics.median(samp["single_s"])
        assert inf["featurize_s"] == statistics.median(samp["featurize_s"])
        by_size = {k: statistics.median(v) for k, v in samp["batched_by_size_s"].items()}
        assert inf["batched_by_size_s"] == by_size and sorted(map(int, by_size)) == list(demo.BATCH_SIZES)
        assert inf["batched_s"] == min(by_size.values()) == by_size[str(inf["batch_size"])]
        assert (inf["single_n"], inf["batched_n"], inf["threads"]) == (min(64, m["n_test"]), m["n_test"], 1)
        for k in bench.RATIO_KEYS:
            assert m["ratio_to_none"][s][k] == inf[k] / m["inference"]["none"][k]
        net = rec["model"]["networks"][s]
        assert net["key"] == recs[s]["key"] and net["sha256"] == recs[s]["model"]["weights"]["sha256"]
        assert net["members"] == recs[s]["model"]["members"]
    assert m["ratio_to_none"]["none"] == {"single_s": 1.0, "batched_s": 1.0}
    assert isinstance(rec["provenance"]["load"]["quiet"], bool)  # the store records the machine's load
    # the printed table: one row per network in grid order, with its ratios
    rows = out.splitlines()[-3:]
    assert [r.split()[0] for r in rows] == list(demo.SHARING)
    assert rows[1].split()[3] == f"{m['ratio_to_none']['hard']['single_s']:.2f}"
    assert bench.matching_records({"none": recs["none"]["key"]}) == [rec]
    assert bench.matching_records({"none": recs["hard"]["key"]}) == []
