"""factorlab.report.qm9_hard_sharing: the hard-sharing chapter's frames, tables, Δm and glued
values, on smoke-profile records (trained into a temporary store) and on hand-built records
on both sides of "worse than single-task" (a shared MAE 1 % above, equal to and 1 % below)."""
from __future__ import annotations

import math

import matplotlib
import pytest
from report_smoke import train_smoke

from factorlab.report import qm9_hard_sharing as report

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke records of qm9_hard_sharing and of qm9_single_task's GINE, in a temporary store."""
    root = tmp_path_factory.mktemp("store")
    gine = [r for r in train_smoke("qm9_single_task", root) if r["config"]["model"] == "gine"]
    return train_smoke("qm9_hard_sharing", root), gine


def _run(mae: dict[str, float], seed: int = 0, task_set: str | None = None) -> dict:
    """A hand-built record: single-task (``task_set`` None) or hard-shared over ``mae``'s targets."""
    cfg = {"experiment": "qm9_hard_sharing" if task_set else "qm9_single_task", "model": "gine", "seed": seed,
           "sharing": "hard" if task_set else "none", "targets": list(mae), "epochs": 10,
           "model_kwargs": {"layers": 4, "hidden": 64}}
    if task_set:
        cfg["task_set"] = task_set
    return {"config": cfg, "metrics": {"test_mae": dict(mae), "test_mae_std": dict(mae), "valid_mae": dict(mae),
                                       "best_epoch": {t: 1 for t in mae}},
            "model": {"params": 500, "params_per_member": 100, "n_train": 20000},
            "provenance": {"device": "cpu (x86_64, 1 threads)"}}


STL = {"mu": 1.0, "alpha": 2.0, "homo": 4.0}


def _hand():
    records = [_run({"mu": 1.01, "alpha": 2.0, "homo": 3.96}, seed=0, task_set="all19"),  # +1 %, 0, -1 %
               _run({"mu": 1.03, "alpha": 2.02, "homo": 3.96}, seed=1, task_set="all19")]  # +3 %, +1 %, -1 %
    return records, [_run(STL)]


def test_worse_and_better_on_both_sides_of_single_task():
    records, stl = _hand()
    res = report.results_frame(records, stl)
    per_seed = report.delta_m_frame(res).set_index("seed")
    assert list(per_seed.worse) == [1, 2]  # equal (alpha, seed 0) is not worse
    assert per_seed.delta_m.tolist() == pytest.approx([0.0, 1.0])  # mean of (+1, 0, -1) and (+3, +1, -1) %
    rel = report.relative_change(res)["all19"]
    assert rel.to_dict() == pytest.approx({"alpha": 0.5, "homo": -1.0, "mu": 2.0})
    v = report.glue_values("cpu", records, stl)
    assert v["dm_all19"] == pytest.approx(0.5) and v["dm_all19_sd"] == pytest.approx(math.sqrt(0.5))
    assert v["worse_all19"] == 1.5 and v["n_better_all19"] == 1 and v["n_all19"] == 3
    assert (v["best_all19"], v["worst_all19"]) == ("homo", "mu")
    assert v["best_all19_pct"] == pytest.approx(-1.0) and v["worst_all19_pct"] == pytest.approx(2.0)
    assert v["seeds"] == "0, 1" and v["n_seeds"] == 2 and v["params_stl_total"] == "1,900"
    assert "dm_std12" not in v  # no runs of that task set
    table = report.delta_m_table(res)
    assert table.loc[0, "Δm (%), mean ± SE"] == "+0.5 ± 0.5" and table.loc[0, "paired with single-task seed"] == 1 and table.loc[0, "targets worse than single-task (mean over seeds)"] == "1.5"


def test_delta_m_is_paired_with_the_same_single_task_seed():
    """With a single-task run per seed, each shared seed is compared with its own seed: the
    single-task seeds' spread cancels instead of adding to Δm's."""
    records, _ = _hand()
    stl = [_run(STL, seed=0), _run({"mu": 1.03, "alpha": 2.02, "homo": 4.0}, seed=1)]
    res = report.results_frame(records, stl)
    per_seed = report.delta_m_frame(res).set_index("seed")
    # seed 1's shared MAEs equal its single-task MAEs on mu and alpha, -1 % on homo
    assert per_seed.delta_m.tolist() == pytest.approx([0.0, -1 / 3]) and per_seed.paired.all()
    v = report.glue_values("cpu", records, stl)
    assert v["dm_all19_se"] == pytest.approx(v["dm_all19_sd"] / math.sqrt(2)) and v["n_stl_seeds"] == 2
    assert v["pairing"].startswith("each seed's shared model is compared with the single-task models of the same seed")
    unpaired = report.glue_values("cpu", records, [_run(STL, seed=5)])["pairing"]
    assert unpaired.startswith("the single-task side has no seed of its own")


def test_paired_change_per_target_and_clear_counts():
    """Per target, shared minus single-task MAE of the same seed in % of the single-task mean:
    mu is +1 % and +3 % (mean +2, SE 1: not clear); alpha (+2 %) and homo (-1 %) move by the
    same amount on both seeds, so their SE is 0 and they are clear (one worse, one better)."""
    records, _ = _hand()
    records[0]["metrics"]["test_mae"]["alpha"] = 2.04  # +2 % on both seeds of single-task 2.0
    records[1]["metrics"]["test_mae"]["alpha"] = 2.04
    stl = [_run(STL, seed=0), _run({"mu": 1.0, "alpha": 2.0, "homo": 4.0}, seed=1)]
    res = report.results_frame(records, stl)
    p = report.paired_change(res)["all19"]
    assert p["mean"].to_dict() == pytest.approx(report.relative_change(res)["all19"].to_dict())
    assert p.loc["mu", "se"] == pytest.approx(1.0) and not p.loc["mu", "clear"] and p.loc["mu", "n"] == 2
    assert p.loc["alpha", "se"] == pytest.approx(0.0) and p.loc["alpha", "clear"]
    assert p.loc["homo", "se"] == pytest.approx(0.0) and p.loc["homo", "clear"]
    v = report.glue_values("cpu", records, stl)
    assert (v["clear_worse_all19"], v["clear_better_all19"]) == (1, 1)
    assert v["best_all19"] == "homo" and v["best_all19_clear"] == "clear" and v["best_all19_se"] == pytest.approx(0.0)
    table = report.target_table(res).set_index("target")
    assert table.loc["mu", "all19 SE (paired, %)"] == "1.0" and table.loc["mu", "all19 change (%)"] == "+2.0"
    assert table.loc["A", "all19 SE (paired, %)"] == ""
    unpaired = report.paired_change(report.results_frame(records, [_run(STL, seed=5)]))["all19"]
    assert (unpaired.n == 0).all() and not unpaired.clear.any()


def test_one_seed_has_no_spread():
    records, stl = _hand()
    v = report.glue_values("cpu", records[:1], stl)
    assert v["dm_all19"] == pytest.approx(0.0) and v["dm_all19_sd"] == 0.0
    assert report.delta_m_table(report.results_frame(records[:1], stl)).loc[0, "Δm (%), mean ± SE"] == "+0.0"


def test_smoke_glue_values_and_table(smoke):
    records, stl = smoke
    v = report.glue_values("smoke", records, stl)
    res = report.results_frame(records, stl)
    assert report.task_sets(res) == ["all19", "std12"] and v["n_all19"] == 19 and v["n_std12"] == 12
    mtl = next(r for r in records if r["config"]["task_set"] == "all19")["metrics"]["test_mae"]
    single = stl[0]["metrics"]["test_mae"]
    for t in ("mu", "U0", "C"):
        assert v[f"rel_all19_{t}"] == pytest.approx(100 * (mtl[t] - single[t]) / single[t])
    assert v["worse_all19"] == sum(mtl[t] > single[t] for t in mtl)
    assert v["params_all19"] == f"{next(r['model']['params'] for r in records if r['config']['task_set'] == 'all19'):,}"
    assert len(v) == 13 + 2 * 4 + 2 * 10 + 19 + 12
    table = report.target_table(res).set_index("target")
    assert table.loc["A", "std12 MAE"] == "" and table.loc["mu", "all19 change (%)"] == f"{v['rel_all19_mu']:+.1f}"
    fig = report.change_figure(res)
    assert len(fig.axes[0].patches) == 19 + 19  # std12's seven missing targets are NaN bars
    assert fig.axes[0].get_legend_handles_labels()[1] == ["shared, 19 targets", "shared, 12 targets"]


def test_smoke_delta_m_is_taken_against_each_seeds_single_task_records(smoke):
    """The same numbers as the rule before the shared reference: Δm of each shared run against
    the single-task test MAEs of its seed, read straight from the qm9_single_task records."""
    from factorlab.mtl import delta_m

    records, stl = smoke
    single: dict[int, dict[str, float]] = {}
    for r in stl:
        single.setdefault(r["config"]["seed"], {}).update(r["metrics"]["test_mae"])
    f = report.delta_m_frame(report.results_frame(records, stl))
    assert len(f) == len(records) and f.paired.all()
    by_run = {(r["config"]["task_set"], r["config"]["seed"]): r["metrics"]["test_mae"] for r in records}
    for _, row in f.iterrows():
        mtl = by_run[(row["task set"], row.seed)]
        assert row.delta_m == pytest.approx(100 * delta_m(mtl, single[row.seed]), rel=1e-12)


def test_a_single_task_record_of_another_budget_is_refused():
    records, _ = _hand()
    other = _run(STL)
    other["config"]["epochs"] = 7
    with pytest.raises(ValueError, match=r"^the single-task record of \['mu', 'alpha', 'homo'\] \(seed 0\) differs "
                                         r"from qm9_hard_sharing's budget in epochs: Δm and pair gains need the same "
                                         r"budget$"):
        report.results_frame(records, [other])
    with pytest.raises(ValueError, match="differs from qm9_hard_sharing's budget in epochs"):
        report.glue_values("cpu", records, [other])
    report.results_frame(records, [{**other, "config": {**other["config"], "seed": 7}}])  # no run of seed 7 to compare


def test_no_single_task_reference_is_a_clear_error():
    records, _ = _hand()
    split = [_run({"mu": 1.0, "alpha": 2.0}, seed=0), _run({"homo": 4.0}, seed=1)]  # no seed holds all three
    with pytest.raises(ValueError, match=r"^the single-task reference is missing \(no seed of the GINE "
                                         r"qm9_single_task records holds all their 3 targets\): run "
                                         r"`python -m factorlab run qm9_single_task`$"):
        report.results_frame(records, split)
    with pytest.raises(ValueError, match=r"\(no GINE qm9_single_task record\)"):
        report.results_frame(records, [])
    res = report.results_frame(records, split + [_run({"homo": 4.0}, seed=0)])  # seed 0 complete, seed 1 not
    assert sorted(set(res[res.setting == "single-task"].seed)) == [0]
