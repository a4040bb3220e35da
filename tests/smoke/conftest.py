"""What every smoke test shares: a throw-away run store (``make smoke`` sets one), never the
committed one, and training allowed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _throwaway_store():
    store = os.environ.get("FACTORLAB_RESULTS_DIR")
    if not store or Path(store).resolve() == (REPO / "data" / "results").resolve():
        pytest.fail("smoke tests must run with FACTORLAB_RESULTS_DIR set to a temporary store (use `make smoke`)")
    os.environ.pop("FACTORLAB_REQUIRE_CACHED", None)
