"""Smoke-profile records for the report tests: an experiment's smoke grid trained into a
throw-away store (MNIST from FACTORLAB_DATA_MIRROR, else ../shared/datasets beside the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def train_smoke(name: str, store: Path) -> list[dict]:
    """The records of ``name``'s smoke grid, trained into ``store``; skips the test when MNIST
    is neither cached nor mirrored on this machine."""
    from factorlab.data import DataError
    from factorlab.experiments import run_experiment

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACTORLAB_RESULTS_DIR", str(store))
        mp.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
        if not os.environ.get("FACTORLAB_DATA_MIRROR") and (REPO.parent / "shared" / "datasets").is_dir():
            mp.setenv("FACTORLAB_DATA_MIRROR", str(REPO.parent / "shared" / "datasets"))
        try:
            return run_experiment(name, "smoke", "cpu")
        except DataError as err:
            pytest.skip(f"MNIST not available: {err}")
