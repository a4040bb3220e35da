"""Fixtures shared by the unit and smoke tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module (bit-for-bit comparisons of training runs), then
    the thread count it had. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def float64():
    """Exact comparisons in double precision for one test; restores the default dtype
    afterwards. Use with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def private_live_dir(tmp_path_factory, monkeypatch):
    """Each test sees its own machine-wide live-run folder, so trainings running elsewhere on
    the machine (a background grid) do not change the load a test's runs record."""
    monkeypatch.setenv("FACTORLAB_LIVE_DIR", str(tmp_path_factory.mktemp("live")))
