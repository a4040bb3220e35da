"""factorlab.report.mnist_baselines: frames, table and glued values of the MNIST baselines chapter,
on smoke-profile records and on hand-built records whose numbers are known."""
from __future__ import annotations

import math

import matplotlib
import pytest

from factorlab.experiments.mnist_baselines import NAME, grid
from factorlab.report import mnist_baselines as report
from report_smoke import train_smoke


@pytest.fixture(scope="module")
def smoke_records(tmp_path_factory):
    """The smoke grid of ``mnist_baselines``, trained into a throw-away store."""
    return train_smoke(NAME, tmp_path_factory.mktemp("store"))


def _record(net: str, variant: str, seed: int, acc: float, train_s: float = 60.0, epochs: int = 2,
            device: str = "cpu", quiet: bool | None = None) -> dict:
    """A hand-built record of one run: test accuracy ``acc`` (fraction) at every epoch, loss
    falling per epoch; ``quiet`` None: a record without load provenance."""
    return {
        "experiment": NAME, "key": f"{net}-{variant}-{seed}",
        "config": {"experiment": NAME, "profile": "cpu", "net": net, "variant": variant, "seed": seed,
                   "epochs": epochs, "batch_size": 128, "lr": 1e-3, "weight_decay": 0.1},
        "metrics": {"test_acc": acc, "train_loss": 0.1},
        "model": {"params": 1000},
        "timing": {"train_s": train_s, "steps": 100 * epochs},
        "history": {"epoch": list(range(1, epochs + 1)), "train_loss": [1.0 / e for e in range(1, epochs + 1)],
                    "test_acc": [acc] * epochs},
        "provenance": {"device": device, **({} if quiet is None else {"load": {"quiet": quiet}})},
    }


def _hand_records() -> list[dict]:
    accs = {("mlp", "journal"): [0.98, 0.97], ("mlp", "l2"): [0.96, 0.96],
            ("conv1", "journal"): [0.90, 0.92], ("conv1", "l2"): [0.95, 0.95], ("conv1", "adamw"): [0.94, 0.96],
            ("conv2", "journal"): [0.97, 0.97], ("conv2", "l2"): [0.98, 0.99], ("conv2", "adamw"): [0.985, 0.985]}
    return [_record(net, variant, seed, a, device="cpu" if net != "conv2" else "cuda")
            for (net, variant), pair in accs.items() for seed, a in enumerate(pair)]


def test_glue_values_on_hand_built_records():
    v = report.glue_values(_hand_records())
    assert v["acc_mlp_journal"] == pytest.approx(97.5) and v["std_mlp_journal"] == pytest.approx(0.7071068)
    assert v["std_mlp_l2"] == pytest.approx(0.0)
    assert v["journal_conv1"] == 80.1 and v["gap_conv1"] == pytest.approx(91.0 - 80.1)
    assert v["journal_conv2"] == 97.1 and v["gap_conv2"] == pytest.approx(97.0 - 97.1)
    assert "journal_mlp" not in v and "gap_mlp" not in v  # the journal reports no MLP accuracy
    # positive wd_cost: the journal's coupled 0.1 is worse than L2 5e-4
    assert v["wd_cost_conv1"] == pytest.approx(95.0 - 91.0) and v["wd_cost_conv2"] == pytest.approx(98.5 - 97.0)
    assert v["adamw_vs_l2_conv1"] == pytest.approx(0.0) and v["adamw_vs_l2_conv2"] == pytest.approx(0.0)
    assert v["profile"] == "cpu" and v["n_runs"] == 16 and v["n_seeds"] == 2
    assert v["epochs_mlp"] == 2 and v["devices"] == "cpu, cuda"
    assert v["train_minutes"] == pytest.approx(16.0)  # 16 runs of 60 s
    assert all(type(x) in (float, int, str) for x in v.values())  # plain Python values glue as plain text
    # glue order of the committed notebook: accuracies, stds, journal gaps, weight-decay effects, counts
    keys = list(v)
    assert keys[0] == "acc_conv1_adamw" and keys.index("std_conv1_adamw") == 8
    assert keys[-10:] == ["clear_se", "reproduce_sd", "epoch_s_conv1", "epoch_s_conv2", "epoch_s_mlp", "quiet_runs",
                          "batch_conv1", "batch_conv2", "batch_mlp", "journal_wd"]
    assert v["batch_mlp"] == v["batch_conv2"] == 128 and v["journal_wd"] == 0.1  # read from the configs
    # paired by seed: conv1 l2 - journal = (5, 3) -> mean 4, se 1; adamw - l2 = (-1, 1) -> 0 ± 1
    assert v["wd_cost_se_conv1"] == pytest.approx(1.0) and v["wd_clear_conv1"] == "clear"
    assert v["adamw_vs_l2_se_conv1"] == pytest.approx(1.0) and v["adamw_clear_conv1"] == "not clear"
    # conv2 journal sd 0: the journal's 97.1 is 0.1 away from a spread of none -> not reproduced
    assert v["reproduces_conv2"] == "does not reproduce" and v["gap_sd_conv2"] == float("inf")
    # conv1 journal: sd sqrt(2) * sqrt(1 + 1/2) = sqrt(3); gap 10.9 -> 6.3 prediction sds
    assert v["gap_sd_conv1"] == pytest.approx(10.9 / 3 ** 0.5) and v["reproduces_conv1"] == "does not reproduce"
    assert v["acc1_conv1_journal"] == pytest.approx(91.0)
    assert v["adamw_shrink_conv1"] == pytest.approx(100 * (1 - (1 - 1e-4) ** 200))  # 2 epochs of 100 steps
    assert math.isnan(v["plateau_conv1"]) and v["plateau_verdict_conv1"] == "was trained too briefly to judge"
    assert v["epoch_s_conv1"] == pytest.approx(30.0) and v["quiet_runs"] == 0


def test_reproduced_within_two_prediction_sds_and_plateau_on_long_runs():
    # journal conv1 80.1: runs at 80.0 and 81.0 (sd 0.707, prediction sd 0.866): gap 0.4 -> reproduced
    records = [r for r in _hand_records() if r["config"]["net"] != "conv1"]
    records += [_record("conv1", v, seed, a, epochs=10, quiet=seed == 0)
                for v, pair in {"journal": [0.800, 0.810], "l2": [0.95, 0.95], "adamw": [0.95, 0.95]}.items()
                for seed, a in enumerate(pair)]
    v = report.glue_values(records)
    assert v["reproduces_conv1"] == "reproduces" and v["gap_sd_conv1"] == pytest.approx(0.4 / 0.5 ** 0.5 / 1.5 ** 0.5)
    assert v["plateau_conv1"] == pytest.approx(0.0) and v["plateau_verdict_conv1"] == "has plateaued"  # flat
    assert v["plateau_verdict_mlp"] == "was trained too briefly to judge"  # 2 epochs
    assert v["converged_note"] == ("so our figure for (b) is a converged accuracy and that for (c) is not shown to "
                                   "be one; whether the journal's are, it does not say")
    assert v["quiet_runs"] == 3
    table = report.results_table(records)
    assert table.loc[table["optimizer, weight decay"] == "Adam, L2 0.1 (journal)", "quiet"].tolist() == ["0/2", "1/2"]
    # a run still climbing: +1 point per epoch over the last 10 epochs -> change of 5 points
    climbing = _record("conv1", "journal", 0, 0.8, epochs=10)
    climbing["history"]["test_acc"] = [0.70 + 0.01 * e for e in range(10)]
    assert report.plateau_frame([climbing])["change"].tolist() == pytest.approx([5.0])
    records = [r for r in records if (r["config"]["net"], r["config"]["variant"], r["config"]["seed"]) != ("conv1", "journal", 0)]
    v = report.glue_values(records + [climbing])
    assert v["plateau_conv1"] == pytest.approx(2.5) and v["plateau_verdict_conv1"] == "has not plateaued"  # seed mean
    assert v["converged_note"] == "so neither our numbers nor the journal's are shown here to be converged accuracies"
    both = report.converged_note({"conv1": "has plateaued", "conv2": "has plateaued"})
    assert both == "so our figures are converged accuracies; whether the journal's are, it does not say"


def test_results_table_rows_and_journal_column():
    table = report.results_table(_hand_records())
    assert len(table) == 8 and list(table.columns)[:3] == ["network", "optimizer, weight decay", "epochs"]
    row = table.iloc[0]
    assert row["network"] == "(a) MLP 784-512-512-10" and row["optimizer, weight decay"].endswith("(journal)")
    assert row["test acc. (%, mean ± SD)"] == "97.50 ± 0.71" and row["journal (%)"] == "n/r" and row["seeds"] == 2
    assert row["train time (s, mean ± SD)"] == "60 ± 0" and row["params"] == "1,000"
    assert list(table["journal (%)"]) == ["n/r", "", "80.1", "", "", "97.1", "", ""]


def test_mixed_profiles_are_refused():
    recs = _hand_records()
    recs[0]["config"]["profile"] = "smoke"
    with pytest.raises(ValueError, match="exactly one profile"):
        report.glue_values(recs)


def test_smoke_records(smoke_records):
    runs = report.runs_frame(smoke_records)
    assert len(runs) == len(grid("smoke")) == 8
    v = report.glue_values(smoke_records)
    by = {(r["config"]["net"], r["config"]["variant"]): r for r in smoke_records}
    for (net, variant), r in by.items():
        assert v[f"acc_{net}_{variant}"] == pytest.approx(100 * r["metrics"]["test_acc"])
        assert v[f"std_{net}_{variant}"] == 0.0  # one seed
    assert v["gap_conv2"] == pytest.approx(100 * by["conv2", "journal"]["metrics"]["test_acc"] - 97.1)
    assert v["profile"] == "smoke" and v["n_runs"] == 8 and v["n_seeds"] == 1
    assert v["epochs_mlp"] == v["epochs_conv1"] == v["epochs_conv2"] == 1
    assert v["train_minutes"] == pytest.approx(sum(r["timing"]["train_s"] for r in smoke_records) / 60)
    assert len(report.results_table(smoke_records)) == 8


def test_accuracy_figure_has_an_accuracy_and_a_loss_panel_per_net():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = report.accuracy_figure(_hand_records())
    assert len(fig.axes) == 6  # 2 rows (test accuracy, training loss) x 3 nets
    assert [ax.get_title() for ax in fig.axes[:3]] == list(report.NET_LABEL.values())
    assert fig.axes[3].get_yscale() == "log" and fig.axes[0].get_ylabel() == "test accuracy (%)"
    # one legend under each net's column, with that net's variants (the MLP has two)
    assert [ax.get_legend() for ax in fig.axes] == [None] * 6 and len(fig.legends) == 3
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [" ".join(t.split()) for t in texts] == ["SGD, no weight decay (journal)", "SGD, L2 5e-4"]
    assert "\n" in texts[0]  # wrapped to the column's width
    plt.close(fig)


def test_journal_weight_decay_is_read_from_the_records_and_must_agree():
    records = _hand_records()
    assert report.glue_values(records)["journal_wd"] == 0.1
    next(r for r in records if r["key"] == "conv1-journal-1")["config"]["weight_decay"] = 0.2
    assert math.isnan(report.glue_values(records)["journal_wd"])


def test_throughput_table_and_glue_values_from_a_record():
    from factorlab.report.mnist_baselines import throughput_glue_values, throughput_table

    rows = [{"net": "mlp", "batch_size": 100, "steps": 200, "fit_s": 0.0012, "plain_s": 0.0011, "ratio": 0.0012 / 0.0011,
             "cpu_ratio": 1.05, "same_weights": True},
            {"net": "conv2", "batch_size": 1000, "steps": 15, "fit_s": 0.5, "plain_s": 0.49, "ratio": 0.5 / 0.49,
             "cpu_ratio": 1.01, "same_weights": True}]
    rec = {"metrics": {"rows": rows, "ratio_max": 0.0012 / 0.0011, "target_ratio": 1.1, "n_within_target": 2, "n": 2,
                       "all_same_weights": True},
           "timing": {"threads": 1}, "provenance": {"load": {"quiet": True}}}
    t = throughput_table(rec)
    assert t["fit_classifier (ms/step)"].tolist() == ["1.20", "500.00"]
    assert t["ratio"].tolist() == ["1.091", "1.020"] and t["same weights"].tolist() == ["yes", "yes"]
    assert t.net.tolist() == ["(a) MLP 784-512-512-10", "(c) 2 conv + pooling"]
    g = throughput_glue_values(rec)
    assert g["tp_within"] == 2 and g["tp_n"] == 2 and g["tp_same"] == "yes" and g["tp_quiet"] == "yes"
    assert g["tp_conv2_fit_ms"] == 500.0 and g["tp_threads"] == 1
    rec["provenance"]["load"]["quiet"] = False
    assert throughput_glue_values(rec)["tp_quiet"] == "no"
