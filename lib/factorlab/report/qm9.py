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

