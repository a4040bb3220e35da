"""factorlab.report.mnist_baselines: frames, table and glued values of the MNIST baselines chapter,
on smoke-profile records and on hand-built records whose numbers are known."""
from __future__ import annotations

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
            device: str = "cpu") -> dict:
    """A hand-built record of one run: test accuracy ``acc`` (fraction), loss falling per epoch."""
    return {
        "experiment": NAME, "key": f"{net}-{variant}-{seed}",
        "config": {"experiment": NAME, "profile": "cpu", "net": net, "variant": variant, "seed": seed,
                   "epochs": epochs, "batch_size": 128},
        "metrics": {"test_acc": acc, "train_loss": 0.1},
        "model": {"params": 1000},
        "timing": {"train_s": train_s},
        "history": {"epoch": list(range(1, epochs + 1)), "train_loss": [1.0 / e for e in range(1, epochs + 1)],
                    "test_acc": [acc] * epochs},
        "provenance": {"device": device},
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
    assert keys[-6:] == ["n_seeds", "epochs_conv1", "epochs_conv2", "epochs_mlp", "devices", "train_minutes"]


def test_results_table_rows_and_journal_column():
    table = report.results_table(_hand_records())
    assert len(table) == 8 and list(table.columns)[:3] == ["network", "optimizer, weight decay", "epochs"]
    row = table.iloc[0]
    assert row["network"] == "(a) MLP 784-512-512-10" and row["optimizer, weight decay"].endswith("(journal)")
    assert row["test acc. (%)"] == "97.50 ± 0.71" and row["journal (%)"] == "n/r" and row["seeds"] == 2
    assert row["train time (s)"] == "60 ± 0" and row["params"] == "1,000"
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


def test_accuracy_figure_has_a_loss_panel_only_for_nets_trained_longer():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = _hand_records()
    for r in recs:  # only the MLP trains for more than one epoch
        if r["config"]["net"] != "mlp":
            r["history"] = {"epoch": [1], "train_loss": [0.5], "test_acc": [r["metrics"]["test_acc"]]}
    fig = report.accuracy_figure(recs)
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "(a) MLP 784-512-512-10: training loss"
    plt.close(fig)
