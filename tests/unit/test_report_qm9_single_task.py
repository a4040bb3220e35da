"""factorlab.report.qm9_single_task: the QM9 single-task chapter's frames, tables, verdicts and
glued values, on smoke-profile records (trained into a temporary store) and on hand-built
records on both sides of chemical accuracy (ratio 1)."""
from __future__ import annotations

import math
import statistics

import matplotlib
import pytest
from report_smoke import train_smoke

from factorlab.mtl import CHEMICAL_ACCURACY
from factorlab.report import qm9_single_task as report

matplotlib.use("Agg")

LOADER_METRICS = {"n_molecules": 300, "threads": 1, "ours_load_s": 0.01, "pyg_load_s": 0.05, "load_ratio": 5.0,
                  "ours_train_s": 0.9, "pyg_train_s": 1.0, "train_ratio": 1.0 / 0.9}


def _loader_config() -> dict:
    """The config of the loader benchmark's smoke run, as the registry builds it."""
    from factorlab.experiments import get

    return get(report.LOADER_BENCHMARK).grid("smoke")[0].to_dict()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke records of qm9_dataset and qm9_single_task, and a hand-made loader record, in
    a temporary store."""
    from factorlab.results import RunStore

    root = tmp_path_factory.mktemp("store")
    ds, records = train_smoke("qm9_dataset", root)[0], train_smoke("qm9_single_task", root)
    loader = RunStore(root).run(_loader_config(), lambda c: {"metrics": dict(LOADER_METRICS)})
    return {"root": root, "ds": ds, "records": records, "loader": loader}


def _run(mae: dict[str, float], seed: int = 0, model: str = "gine", composition: dict | None = None) -> dict:
    """A hand-built qm9_single_task record with test MAEs ``mae`` (one member per target)."""
    targets = list(mae)
    return {"experiment": "qm9_single_task",
            "config": {"experiment": "qm9_single_task", "model": model, "seed": seed, "sharing": "none",
                       "targets": targets, "profile": "cpu", "lr": 1e-3, "batch_size": 64, "epochs": 10,
                       "model_kwargs": {"layers": 4, "hidden": 64}},
            "metrics": {"test_mae": dict(mae), "test_mae_std": {t: 0.5 * v for t, v in mae.items()},
                        "valid_mae": dict(mae), "best_epoch": {t: 9 for t in targets},
                        "composition_test_mae": dict(composition or {t: 3 * v for t, v in mae.items()})},
            "model": {"params_per_member": 1234, "n_train": 20000, "n_valid": 2000, "n_test": 10831},
            "provenance": {"device": "cpu (x86_64, 1 threads)"}}


def test_smoke_glue_values(smoke):
    ds, records, loader = smoke["ds"], smoke["records"], smoke["loader"]
    v = report.glue_values("smoke", ds, records, loader)
    gine = next(r for r in records if r["config"]["model"] == "gine")
    assert v["profile"] == "smoke" and v["n_runs"] == len(records) == 2  # a GINE and a SchNet run
    assert v["n_mol"] == f"{ds['metrics']['n_molecules']:,}" and v["n_test"] == f"{ds['metrics']['split']['test']:,}"
    assert v["epochs"] == gine["config"]["epochs"] and v["params"] == f"{gine['model']['params_per_member']:,}"
    assert v["lb_n"] == "300" and v["lb_batch"] == 128 and v["lb_load_ratio"] == 5.0
    assert v["lb_load_share"] == pytest.approx(5.0)  # 100 * 0.05 / 1.0
    # one GINE seed: the glued MAE is the record's, the ratio divides by the cited accuracy
    for t in ("U0", "mu", "A"):
        assert v[f"mae_{t}"] == pytest.approx(gine["metrics"]["test_mae"][t])
    assert v["ratio_mu"] == pytest.approx(gine["metrics"]["test_mae"]["mu"] / CHEMICAL_ACCURACY["mu"])
    assert math.isnan(v["ratio_A"]) and v["n_with_acc"] == len(CHEMICAL_ACCURACY) == 16
    expected = sum(gine["metrics"]["test_mae"][t] / a < 1 for t, a in CHEMICAL_ACCURACY.items())
    assert v["n_chem"] == expected
    corr = report.correlation_frame(ds)
    assert v["corr_total_min"] == pytest.approx(min(corr.loc[a, b] for a in report.TOTAL_ENERGIES
                                                    for b in report.TOTAL_ENERGIES if a != b))
    assert v["n_targets"] == 19 and v["print_step_mev"] == pytest.approx(2.7211, abs=1e-4)  # 1e-4 Hartree
    assert v["u_mean_ev"] == pytest.approx(ds["metrics"]["targets"]["U"]["mean"])
    # the store records the load of the loader's run: quiet or not, never unknown
    assert v["lb_quiet"] == ("yes" if loader["provenance"]["load"]["quiet"] else "no")
    assert v["n_seeds"] == 1 and v["seeds_phrase"] == "one seed" and math.isnan(v["seed_cv_median_pct"])
    assert len(v) == 106


def test_glue_values_seed_spread(smoke):
    """Three seeds of hand-built GINE records: the phrase and the median seed CV over targets."""
    ds, loader = smoke["ds"], smoke["loader"]
    maes = {"mu": [1.0, 1.1, 1.2], "U0": [2.0, 2.0, 2.0], "gap": [0.1, 0.2, 0.3]}
    records = [_run({t: m[s] for t, m in maes.items()}, seed=s) for s in range(3)]
    v = report.glue_values("cpu", ds, records, loader)
    assert v["n_seeds"] == 3 and v["seeds_phrase"] == "3 seeds"
    cvs = sorted(100 * statistics.stdev(m) / statistics.mean(m) for m in maes.values())
    assert v["seed_cv_median_pct"] == pytest.approx(cvs[1])


def test_smoke_frames_and_figures(smoke):
    runs = report.runs_frame(smoke["records"])
    assert len(runs) == 19 + 2  # the GINE's 19 targets and the SchNet's two
    g = report.per_target(runs)
    assert list(g.target) == report.TARGET_ORDER and (g.seeds == 1).all()  # SchNet rows left out
    table = report.results_table(g)
    assert table.loc[table.target == "A", "ratio"].item() == "" and table["MAE / std"].str.match(r"\d\.\d{3}$").all()
    assert list(report.targets_table(smoke["ds"]).columns) == ["target", "unit", "meaning", "mean", "std", "min", "max"]
    assert list(report.loader_table(smoke["loader"])["PyG / ours"]) == ["5.00×", "1.11×"]
    assert set(report.loader_table(smoke["loader"])["quiet"]) <= {"yes", "no"}
    fig = report.ratio_figure(g, "smoke")
    assert len(fig.axes[0].patches) == 16  # one bar per target with a cited accuracy
    assert fig.axes[0].get_legend_handles_labels()[1][-1] == "ours (smoke profile)"
    fig = report.correlation_figure(report.correlation_frame(smoke["ds"]))
    assert len(fig.axes) == 2  # the map and its colour bar


def test_chemical_accuracy_on_both_sides_of_one():
    mu, alpha = CHEMICAL_ACCURACY["mu"], CHEMICAL_ACCURACY["alpha"]
    g = report.per_target(report.runs_frame([_run({"mu": 0.99 * mu, "alpha": 1.01 * alpha, "A": 5.0})]))
    s = report.chemical_accuracy_summary(g)
    assert s["n_chem"] == 1 and s["n_with_acc"] == 2  # 0.99 is accurate, 1.01 is not; A has no target
    assert (s["best_target"], s["worst_target"]) == ("mu", "alpha")
    assert s["best_ratio"] == pytest.approx(0.99) and s["worst_ratio"] == pytest.approx(1.01)
    assert s["median_ratio"] == pytest.approx(1.0)
    g = report.per_target(report.runs_frame([_run({"mu": 1.0 * mu, "alpha": 2 * alpha})]))
    assert report.chemical_accuracy_summary(g)["n_chem"] == 0  # exactly 1 is not below 1


def test_seeds_are_averaged_and_gain_is_composition_over_network():
    runs = report.runs_frame([_run({"mu": 1.0, "alpha": 2.0}, seed=0, composition={"mu": 4.0, "alpha": 3.0}),
                              _run({"mu": 3.0, "alpha": 2.0}, seed=1, composition={"mu": 4.0, "alpha": 3.0}),
                              _run({"mu": 100.0}, seed=0, model="schnet")])
    g = report.per_target(runs).set_index("target")
    assert g.loc["mu", "mae"] == 2.0 and g.loc["mu", "mae_sd"] == pytest.approx(math.sqrt(2))
    assert g.loc["mu", "seeds"] == 2 and g.loc["alpha", "mae_sd"] == 0.0
    assert report.results_table(g.reset_index()).set_index("target").loc["mu", "test MAE"] == "2 ± 1.4"
    gain = report.composition_gain(g.dropna(subset=["mae"]).reset_index())
    assert gain == {"gain_min": 1.5, "gain_max": 2.0, "gain_min_target": "alpha", "gain_max_target": "mu"}


def test_min_correlation_ignores_the_diagonal():
    import pandas as pd

    corr = pd.DataFrame([[1.0, 0.9, 0.8], [0.9, 1.0, 0.95], [0.8, 0.95, 1.0]], index=list("abc"), columns=list("abc"))
    assert report.min_correlation(corr, ["a", "b"]) == 0.9 and report.min_correlation(corr, "abc") == 0.8


def test_loader_record_comes_from_the_registry(smoke, monkeypatch):
    from factorlab.results import RunStore

    monkeypatch.setenv("FACTORLAB_REQUIRE_CACHED", "1")  # stored: nothing is measured
    assert report.loader_record("smoke", "cpu", store=RunStore(smoke["root"]))["key"] == smoke["loader"]["key"]
    with pytest.raises(ValueError, match="profile"):
        report.loader_record("huge", "cpu", store=RunStore(smoke["root"]))


def test_loader_quiet_flag_yes_no_unknown():
    base = {"config": {"batch_size": 128}, "metrics": dict(LOADER_METRICS), "provenance": {"device": "cpu"}}
    assert set(report.loader_table(base)["quiet"]) == {"unknown"}  # a record from before the load block
    for quiet, label in ((True, "yes"), (False, "no")):
        rec = {**base, "provenance": {"device": "cpu", "load": {"quiet": quiet}}}
        assert set(report.loader_table(rec)["quiet"]) == {label}
