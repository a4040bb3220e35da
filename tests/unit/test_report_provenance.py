"""factorlab.report.provenance: the provenance box's quiet / not quiet / load-unknown counts and
the quiet flag shown beside reported times."""
from __future__ import annotations

import pytest

from factorlab.report import provenance as report


def _record(key: str, quiet=None, *, commit: str = "0123456789abcdef", wall: float = 10.0) -> dict:
    """A record of experiment ``e`` whose provenance has a load block with ``quiet`` (none: None)."""
    prov = {"profile": "cpu", "device": "cpu (x86_64, 1 threads)", "git_commit": commit, "git_dirty": False,
            "started": f"2026-01-01T00:00:0{key[-1]}+00:00", "wall_s": wall}
    if quiet is not None:
        prov["load"] = {"quiet": quiet, "other_trainings": 0 if quiet else 1, "cpu_count": 2}
    return {"experiment": "e", "key": key, "config": {"experiment": "e", "profile": "cpu"}, "provenance": prov}


def test_quiet_of_reads_the_load_block():
    assert report.quiet_of(_record("k1", True)) is True
    assert report.quiet_of(_record("k1", False)) is False
    assert report.quiet_of(_record("k1")) is None  # an old record: no load block
    assert report.quiet_of({"provenance": {"load": {"quiet": None}}}) is None
    assert report.quiet_of({}) is None


def test_quiet_label():
    assert report.quiet_label(True) == "yes" and report.quiet_label(False) == "no"
    assert report.quiet_label(None) == "unknown" and report.quiet_label([None, None]) == "unknown"
    assert report.quiet_label([True, True]) == "yes" and report.quiet_label([False, False]) == "no"
    assert report.quiet_label([True, False, None]) == "1 of 3" and report.quiet_label([True, None]) == "1 of 2"
    assert report.quiet_label([False, None]) == "0 of 2"
    with pytest.raises(ValueError):
        report.quiet_label([])


def test_quiet_counts_and_sentence():
    recs = [_record("k1", True), _record("k2", False), _record("k3"), _record("k4")]
    assert report.quiet_counts(recs) == {"quiet": 1, "not_quiet": 1, "unknown": 2, "n": 4}
    assert report.quiet_sentence(recs) == ("1 of the 4 timings were taken on a quiet machine "
                                           "(1 on a busy one, 2 predate load recording)")
    assert report.quiet_sentence(recs[:1], "runs") == "1 of the 1 runs were taken on a quiet machine"


def test_provenance_summary_counts_quiet_runs_per_group():
    recs = [_record("k1", True), _record("k2", False), _record("k3"),
            _record("k4", True, commit="fedcba9876543210", wall=5.0)]
    prov = report.provenance_summary(recs, by_experiment=False)
    assert list(prov.columns) == ["profile", "device", "git commit", "runs", *report.QUIET_COLUMNS,
                                  "first_started", "last_started", "wall_time_s"]
    first = prov[prov["git commit"] == "0123456789"].iloc[0]
    assert first[["runs", "quiet", "not quiet", "load unknown", "wall_time_s"]].tolist() == [3, 1, 1, 1, 30.0]
    second = prov[prov["git commit"] == "fedcba9876"].iloc[0]
    assert second[["runs", "quiet", "not quiet", "load unknown"]].tolist() == [1, 1, 0, 0]
    assert "experiment" in report.provenance_summary(recs).columns
    html = report.provenance_box(recs).data
    assert "load unknown" in html and "not quiet" in html
