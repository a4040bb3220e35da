"""What the QM9 chapters share: one row per (run, target) of the QM9 training experiments
(``qm9_single_task``, ``qm9_hard_sharing``), and the targets' names and units."""
from __future__ import annotations

import pandas as pd

from factorlab.data.qm9 import TARGETS

#: The 19 targets in the order of :data:`factorlab.data.qm9.TARGETS`.
TARGET_ORDER: list[str] = [t.name for t in TARGETS]
#: Unit of each target (eV, D, a0^3, ...), by name.
UNITS: dict[str, str] = {t.name: t.unit for t in TARGETS}


def mae_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run and target of QM9 training records (``qm9_single_task``,
    ``qm9_hard_sharing``): ``setting`` ("single-task" for ``sharing == "none"``, else the
    config's ``task_set``), ``model``, ``seed``, ``target``, the test MAE ``mae`` (target
    units), ``mae_std`` (test MAE / training standard deviation), ``valid_mae``,
    ``best_epoch`` and ``composition_mae`` (the linear composition model's test MAE, None
    without one)."""
    rows = []
    for r in records:
        c, m = r["config"], r["metrics"]
        setting = "single-task" if c["sharing"] == "none" else c["task_set"]
        for t in c["targets"]:
            rows.append({"setting": setting, "target": t, "model": c["model"], "seed": c["seed"],
                         "mae": m["test_mae"][t], "mae_std": m["test_mae_std"][t], "valid_mae": m["valid_mae"][t],
                         "best_epoch": m["best_epoch"][t],
                         "composition_mae": m.get("composition_test_mae", {}).get(t)})
    return pd.DataFrame(rows)


def exact_agreement(own: dict[int, dict[str, float]], reference: dict[int, dict[str, float]], what: str) -> dict:
    """Whether the single-task test MAEs ``own`` (``{seed: {target: MAE}}``, trained inside
    another experiment) are the reference's (:func:`factorlab.experiments.qm9_pairs.
    reference_from_records`), over the seeds both have and ``own``'s targets: ``seeds``
    compared, ``targets``, ``identical`` (every MAE equal exactly), ``max_diff_pct`` (largest
    |difference| in % of the reference) and a ``verdict`` sentence naming ``what`` ("not
    measured" without a common seed)."""
    import math

    seeds = sorted(s for s in set(own) & set(reference) if all(t in reference[s] for t in own[s]))
    if not seeds:
        return {"seeds": 0, "targets": 0, "identical": False, "max_diff_pct": math.nan,
                "verdict": f"not measured: no seed has both {what} and qm9_single_task"}
    diffs = [abs(own[s][t] - reference[s][t]) / reference[s][t] * 100 for s in seeds for t in own[s]]
    identical = all(own[s][t] == reference[s][t] for s in seeds for t in own[s])
    return agreement_summary(identical, float(max(diffs)), len(seeds), len({t for s in seeds for t in own[s]}), what)


def agreement_summary(identical: bool, max_diff_pct: float, seeds: int, targets: int, what: str) -> dict:
    """:func:`exact_agreement`'s result from its parts (also for several comparisons merged)."""
    verdict = (f"identical: every test MAE of {what} equals qm9_single_task's exactly ({seeds} seed(s), "
               f"{targets} targets)" if identical else
               f"not identical: the test MAEs of {what} differ by up to {max_diff_pct:.2g} % from "
               f"qm9_single_task's ({seeds} seed(s))")
    return {"seeds": seeds, "targets": targets, "identical": identical, "max_diff_pct": max_diff_pct,
            "verdict": verdict}

