"""The ``full`` grid of ``qm9_tensor_mtl`` runs in smoke: one run of each kind (a DMTRL
decomposition, a deep relationship network, the deeper hard-shared network) trained through the
experiment's own ``train`` at its full width (the ``full`` profile's GINE), on the committed
fixture for two steps (:func:`~factorlab.experiments.qm9_common.smoke_variant`). Nothing is
written to the run store."""
from __future__ import annotations

import json
import math

import pytest

from factorlab.experiments import qm9_tensor_mtl as tm
from factorlab.experiments.qm9_common import NASH11

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

CONFIGS = [next(c for c in tm.grid("full") if c["method"] == m) for m in ("tucker", "mrn", "deep")]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c["method"])
def test_full_run_trains_in_smoke(cfg):
    smoke = tm.smoke_variant(cfg)
    for key in ("method", "targets", "model_kwargs", "seed", "rel_error", "lam", "deep_match", "deep_layers"):
        assert smoke[key] == cfg[key], key
    assert smoke["profile"] == "smoke" and cfg["model_kwargs"]["hidden"] == 128
    rec = tm.train(smoke, "cpu")
    assert set(rec["metrics"]["test_mae"]) == set(NASH11)
    assert all(math.isfinite(v) for v in rec["metrics"]["test_mae"].values())
    assert rec["timing"]["steps"] == 2 and rec["history"]["single_history"]["epoch"] == [1]
    info = rec["model"]
    if cfg["method"] == "deep":  # 6 convolutions, its width at the Tucker network's parameter count
        assert info["layers"] == cfg["model_kwargs"]["layers"] + cfg["deep_layers"]
        assert info["params"] == tm.deep_params(smoke, info["width"])
        assert abs(info["params"] - info["match_params"]) <= abs(tm.deep_params(smoke, info["width"] + 1)
                                                                  - info["match_params"])
    elif cfg["method"] == "tucker":
        assert 0 < info["params"] < info["single_params"]
    json.dumps(rec, allow_nan=False)
