"""Experiment mnist_architecture (the journal's unstated architecture details as variants) and
its report helpers: the grid per profile, each variant's exact parameter count and shapes,
mnist_baselines' nets, configs and committed keys left unchanged by the new model options, and
the table and paired differences on hand-built records (exact means and standard errors)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from factorlab.experiments import get
from factorlab.experiments import mnist_architecture as A
from factorlab.experiments import mnist_baselines as B
from factorlab.models import ConvNet1, ConvNet2, build_mnist_model, count_params
from factorlab.report import mnist_architecture as report
from factorlab.results import RunStore, config_hash

REPO = Path(__file__).resolve().parents[2]
BASELINE_RECORDS = sorted((REPO / "data" / "results" / "mnist_baselines").glob("*.json"))

#: Parameters of each variant, counted by hand: conv k x k (weights + bias), dense, output.
PARAMS = {
    # conv 1->32 5x5; dense 32*14*14 -> 100; out 100 -> 10
    ("conv1", "pool"): (1 * 32 * 25 + 32) + (32 * 14 * 14 * 100 + 100) + (100 * 10 + 10),
    # conv 1->32 5x5; conv 32->32 5x5; out 32*7*7 -> 10
    ("conv2", "kernel5"): (1 * 32 * 25 + 32) + (32 * 32 * 25 + 32) + (32 * 7 * 7 * 10 + 10),
    # conv 1->32 3x3; conv 32->32 3x3; dense 32*7*7 -> 100; out 100 -> 10
    ("conv2", "dense100"): (1 * 32 * 9 + 32) + (32 * 32 * 9 + 32) + (32 * 7 * 7 * 100 + 100) + (100 * 10 + 10),
    # conv 1->32 5x5; conv 32->32 5x5; dense 32*7*7 -> 100; out 100 -> 10
    ("conv2", "kernel5_dense100"): (1 * 32 * 25 + 32) + (32 * 32 * 25 + 32) + (32 * 7 * 7 * 100 + 100) + (100 * 10 + 10),
}


# --- the grid ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, n, seeds", [("smoke", 4, [0]), ("cpu", 12, [0, 1, 2]), ("full", 20, [0, 1, 2, 3, 4])])
def test_grid_has_every_variant_once_per_seed(profile, n, seeds):
    configs = A.grid(profile)
    assert len(configs) == n and len({config_hash(c) for c in configs}) == n
    assert [(c["net"], c["arch"]) for c in configs[::len(seeds)]] == list(PARAMS)
    assert [c["seed"] for c in configs] == seeds * 4
    assert all(c["experiment"] == "mnist_architecture" and c["variant"] == "journal" for c in configs)
    assert all(c["epochs"] == (1 if profile == "smoke" else 30) for c in configs)
    assert all((c["n_train"], c["n_test"]) == ((512, 256) if profile == "smoke" else (None, None)) for c in configs)


def test_each_run_is_the_journal_run_of_mnist_baselines_but_for_its_architecture():
    for profile in ("smoke", "cpu", "full"):
        base = {(c["net"], c["seed"]): c for c in B.grid(profile) if c["variant"] == "journal"}
        for c in A.grid(profile):
            b = base[c["net"], c["seed"]]
            assert {k: v for k, v in c.items() if k not in ("experiment", "model_kwargs", "arch")} == \
                {k: v for k, v in b.items() if k not in ("experiment", "model_kwargs")}
            assert c["model_kwargs"] == {**b["model_kwargs"], **A.ARCHS[c["net"]][c["arch"]]}
    by = {c["arch"]: c for c in A.grid("cpu")}
    assert by["pool"]["model_kwargs"] == {"filters": 32, "kernel": 5, "hidden": 100, "pool": True}
    assert by["kernel5"]["model_kwargs"] == {"filters": 32, "kernel": 5}
    assert by["dense100"]["model_kwargs"] == {"filters": 32, "kernel": 3, "hidden": 100}
    assert by["kernel5_dense100"]["model_kwargs"] == {"filters": 32, "kernel": 5, "hidden": 100}
    assert (by["pool"]["lr"], by["pool"]["weight_decay"], by["pool"]["batch_size"]) == (1e-4, 0.1, 128)
    assert (by["kernel5"]["lr"], by["kernel5"]["optimizer"], by["kernel5"]["batch_size"]) == (1e-3, "adam", 1000)


def test_registered_with_a_label_and_a_checked_arch():
    exp = get("mnist_architecture")
    assert exp.kind == "experiment" and exp.label(A.grid("smoke")[0]) == "net=conv1 arch=pool seed=0"
    cfg = A.grid("smoke")[0]
    with pytest.raises(ValueError, match=r"arch 'kernel5' is not a variant of 'conv1'; its variants are \['pool'\]"):
        exp.from_dict({**cfg, "arch": "kernel5"})
    with pytest.raises(ValueError, match=r"Config.variant must be 'journal', got 'l2'"):
        exp.from_dict({**cfg, "variant": "l2"})


# --- the models -------------------------------------------------------------------------------

@pytest.mark.parametrize("net, arch", list(PARAMS))
def test_each_variant_has_its_hand_counted_parameters_and_shapes(net, arch):
    (cfg,) = [c for c in A.grid("smoke") if (c["net"], c["arch"]) == (net, arch)]
    model = build_mnist_model(cfg["model"], **cfg["model_kwargs"])
    assert count_params(model) == PARAMS[net, arch]
    x = torch.zeros(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == ((3, 32, 14, 14) if net == "conv1" else (3, 32, 7, 7))


def test_default_nets_are_the_ones_mnist_baselines_trained():
    """The new options at their defaults leave the modules, and so a seeded initialisation, as
    they were: the same state-dict names and shapes, the same weights."""
    shapes = {
        "conv1": [("features.0.weight", (32, 1, 5, 5)), ("features.0.bias", (32,)),
                  ("classifier.1.weight", (100, 32 * 28 * 28)), ("classifier.1.bias", (100,)),
                  ("classifier.3.weight", (10, 100)), ("classifier.3.bias", (10,))],
        "conv2": [("features.0.weight", (32, 1, 3, 3)), ("features.0.bias", (32,)),
                  ("features.3.weight", (32, 32, 3, 3)), ("features.3.bias", (32,)),
                  ("classifier.1.weight", (10, 32 * 7 * 7)), ("classifier.1.bias", (10,))],
    }
    explicit = {"conv1": lambda: ConvNet1(filters=32, kernel=5, hidden=100, pool=False),
                "conv2": lambda: ConvNet2(filters=32, kernel=3, hidden=None)}
    for net in ("conv1", "conv2"):
        torch.manual_seed(0)
        default = build_mnist_model(net, **B.NETS[net]["model_kwargs"])
        torch.manual_seed(0)
        off = explicit[net]()
        assert [(k, tuple(v.shape)) for k, v in default.state_dict().items()] == shapes[net]
        assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), off.state_dict().values()))
        assert repr(default) == repr(off)
    assert [type(m).__name__ for m in build_mnist_model("conv1").features] == ["Conv2d", "ReLU"]
    assert [type(m).__name__ for m in build_mnist_model("conv2").classifier] == ["Flatten", "Linear"]


@pytest.mark.skipif(not BASELINE_RECORDS, reason="no committed mnist_baselines records")
def test_mnist_baselines_configs_and_keys_are_unchanged():
    exp = get("mnist_baselines")
    committed = {p.stem for p in BASELINE_RECORDS}
    assert {config_hash(c) for c in B.grid("cpu")} <= committed  # every cpu run of the grid keeps its record
    seen = set()
    for path in BASELINE_RECORDS:
        record = json.loads(path.read_text())
        rebuilt = exp.from_dict(record["config"]).to_dict()
        assert rebuilt == record["config"] and config_hash(rebuilt) == record["key"] == path.stem
        net = rebuilt["net"]
        if net not in seen:  # the net rebuilt from its config has the parameters it was trained with
            seen.add(net)
            assert count_params(build_mnist_model(rebuilt["model"], **rebuilt["model_kwargs"])) == record["model"]["params"]
    assert seen == {"mlp", "conv1", "conv2"}


# --- the report, on hand-built records ---------------------------------------------------------

#: Test accuracies (%) by seed: the chapter's nets (mnist_baselines journal runs) and variants.
ACC = {("conv1", "chapter"): [94.0, 93.0, 95.0], ("conv1", "pool"): [96.0, 96.0, 98.0],
       ("conv2", "chapter"): [95.0, 94.0, 96.0], ("conv2", "kernel5"): [96.0, 96.0],
       ("conv2", "dense100"): [95.5]}


def _record(cfg: dict, acc: float) -> dict:
    params = 1000 if cfg["experiment"] == "mnist_baselines" else PARAMS[cfg["net"], cfg["arch"]]
    return {"config": cfg, "metrics": {"test_acc": acc / 100}, "model": {"params": params},
            "timing": {"train_s": 60.0}}


def _records(profile: str = "cpu") -> tuple[list[dict], list[dict]]:
    arch = [_record(c, ACC[c["net"], c["arch"]][c["seed"]]) for c in A.grid(profile)
            if c["seed"] < len(ACC.get((c["net"], c["arch"]), []))]
    base = [_record(c, ACC[c["net"], "chapter"][c["seed"]]) for c in B.grid(profile)
            if c["variant"] == "journal" and c["net"] in ("conv1", "conv2")]
    return arch, base


def test_accuracy_frame_has_a_row_per_run():
    arch, base = _records()
    f = report.accuracy_frame(arch, base + [_record(c, 50.0) for c in B.grid("cpu") if c["variant"] != "journal"])
    assert len(f) == 6 + 6  # other variants and nets of mnist_baselines are left out
    assert list(f.columns[:6]) == ["net", "arch", "variant", "seed", "profile", "acc"]
    assert list(zip(f.net, f.arch, f.seed))[:6] == [("conv1", "pool", 0), ("conv1", "pool", 1), ("conv1", "pool", 2),
                                                    ("conv2", "kernel5", 0), ("conv2", "kernel5", 1),
                                                    ("conv2", "dense100", 0)]
    assert set(f.arch[6:]) == {"chapter"} and f.acc.iloc[2] == pytest.approx(98.0)


def test_variants_frame_pairs_by_seed_with_exact_standard_errors():
    arch, base = _records()
    f = report.variants_frame(arch + [_record(A.grid("smoke")[0], 10.0)], base, "cpu")  # other profiles: ignored
    assert list(zip(f.net, f.arch)) == [("conv1", "chapter"), ("conv1", "pool"), ("conv2", "chapter"),
                                        ("conv2", "kernel5"), ("conv2", "dense100"), ("conv2", "kernel5_dense100")]
    rows = f.set_index(["net", "arch"]).to_dict("index")
    pool = rows["conv1", "pool"]  # differences 2, 3, 3: mean 8/3, sd 1/sqrt(3), se 1/3
    assert pool["n"] == 3 and pool["n_pairs"] == 3 and pool["params"] == PARAMS["conv1", "pool"]
    assert pool["acc"] == pytest.approx(290 / 3) and pool["acc_se"] == pytest.approx(2 / 3)
    assert pool["diff"] == pytest.approx(8 / 3) and pool["diff_se"] == pytest.approx(1 / 3)
    k5 = rows["conv2", "kernel5"]  # differences 1, 2: mean 1.5, sd 1/sqrt(2), se 1/2
    assert (k5["n"], k5["n_pairs"]) == (2, 2) and k5["diff"] == pytest.approx(1.5) and k5["diff_se"] == pytest.approx(0.5)
    d100 = rows["conv2", "dense100"]  # one seed: difference 0.5, no standard error
    assert d100["n_pairs"] == 1 and d100["diff"] == pytest.approx(0.5)
    assert math.isnan(d100["diff_se"]) and math.isnan(d100["acc_se"])
    both = rows["conv2", "kernel5_dense100"]
    assert both["n"] == 0 and both["n_pairs"] == 0 and math.isnan(both["acc"]) and math.isnan(both["diff"])
    assert pd.isna(both["params"])  # no records: no count
    chap = rows["conv2", "chapter"]
    assert chap["n"] == 3 and chap["acc"] == pytest.approx(95.0) and chap["acc_se"] == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(chap["diff"]) and chap["params"] == 1000
    assert list(f.journal) == [80.1, 80.1, 97.1, 97.1, 97.1, 97.1]


def test_runs_of_other_settings_do_not_pair():
    arch, base = _records()
    other = [{**r, "config": {**r["config"], "lr": 1e-3}} if r["config"]["net"] == "conv1" else r for r in base]
    rows = report.variants_frame(arch, other, "cpu").set_index(["net", "arch"]).to_dict("index")
    assert rows["conv1", "pool"]["n_pairs"] == 0 and math.isnan(rows["conv1", "pool"]["diff"])
    assert rows["conv2", "kernel5"]["n_pairs"] == 2
    t = report.variants_table(arch, other, "cpu")
    assert t.loc[1, "vs. chapter's (points)"] == "no pair"


def test_table_says_not_run_and_cites_the_journal():
    arch, base = _records()
    t = report.variants_table(arch, base, "cpu")
    assert list(t.columns) == ["net", "architecture", "params", "seeds", "test acc. (%)",
                               "vs. chapter's (points)", "journal (%)"]
    assert list(t["test acc. (%)"]) == ["94.00 ± 0.58", "96.67 ± 0.67", "95.00 ± 0.58", "96.000 ± 0.000", "95.50",
                                        "not run"]
    assert list(t["vs. chapter's (points)"]) == ["(reference)", "+2.67 ± 0.33 (3 pairs)", "(reference)",
                                                     "+1.50 ± 0.50 (2 pairs)", "+0.50 (1 pair)", "—"]
    assert list(t.params) == ["1,000", "629,142", "1,000", "42,154", "167,478", "—"]
    assert list(t.seeds) == [3, 3, 3, 2, 1, 0] and list(t["journal (%)"]) == ["80.1"] * 2 + ["97.1"] * 4
    empty = report.variants_table([], [], "full")
    assert len(empty) == 6 and set(empty["test acc. (%)"]) == {"not run"} and set(empty.seeds) == {0}
    assert list(empty["vs. chapter's (points)"]) == ["(reference)", "—", "(reference)"] + ["—"] * 3


def test_glue_values():
    arch, base = _records()
    v = report.glue_values(arch, base, "cpu")
    assert v["arch_diff_conv1_pool"] == pytest.approx(8 / 3) and v["arch_diff_se_conv1_pool"] == pytest.approx(1 / 3)
    assert v["arch_clear_conv1_pool"] == "clear"  # 8/3 > 2 * 1/3
    assert v["arch_clear_conv2_kernel5"] == "clear" and v["arch_clear_conv2_dense100"] == "not measured"
    assert v["arch_clear_conv2_kernel5_dense100"] == "not run" and v["arch_n_conv2_kernel5_dense100"] == 0
    assert v["arch_acc_conv1_chapter"] == pytest.approx(94.0) and "arch_diff_conv1_chapter" not in v
    assert (v["arch_runs"], v["arch_grid"]) == (6, 12)
    assert v["arch_sentence"] == (
        "With the journal's settings, (b) with 2x2 max-pooling after the conv reaches 96.67 % (+2.67 ± 0.33 points "
        "against the chapter's net over 3 seed pairs, clear); (c) with 5x5 kernels reaches 96.00 % (+1.50 ± 0.50 "
        "points against the chapter's net over 2 seed pairs, clear); (c) with dense 100 (ReLU) before the output "
        "reaches 95.50 % (+0.50 points against the chapter's net over 1 seed pair, not measured). Not run yet: (c) "
        "with 5x5 kernels and dense 100.")
    assert report.glue_values([], base, "cpu")["arch_sentence"] == (
        "None of the 12 runs of the architecture variants is recorded yet, so whether an unstated architecture detail "
        "explains the gaps is not measured.")


def _write(store: RunStore, recs: list[dict]) -> None:
    for r in recs:
        path = store.path(r["config"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**r, "key": store.key(r["config"])}))


def test_stored_records_only_read_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")
    store = RunStore(tmp_path)
    assert report.stored_records("cpu", store) == ([], [])  # nothing trained
    arch, base = _records()
    _write(store, arch[::-1] + base + [_record(c, 50.0) for c in B.grid("cpu") if c["variant"] == "l2"])
    got_arch, got_base = report.stored_records("cpu", store)
    assert [r["config"] for r in got_arch] == [r["config"] for r in arch]  # grid order
    assert [r["config"] for r in got_base] == [r["config"] for r in base]  # the journal runs of conv1, conv2 only
    assert report.stored_records("full", store) == ([], [])


@pytest.mark.skipif(not BASELINE_RECORDS, reason="no committed mnist_baselines records")
def test_the_committed_store_gives_the_chapters_runs_to_pair_with():
    arch, base = report.stored_records("cpu")
    assert len(base) == 6 and {(r["config"]["net"], r["config"]["variant"]) for r in base} == \
        {("conv1", "journal"), ("conv2", "journal")}
    t = report.variants_table(arch, base, "cpu")
    assert list(t.seeds[[0, 2]]) == [3, 3]
    assert all((n == 0) == (acc == "not run") for n, acc in zip(t.seeds, t["test acc. (%)"]))
