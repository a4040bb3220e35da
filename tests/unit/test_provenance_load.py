"""Machine load, live-run markers and the dirty-tree rule of the run store (issue: evidence)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from factorlab.results import RunStore
from factorlab.results.load import (LIVE_DIR, MACHINE_LIVE_ENV, LiveMarker, live_runs, live_trainings,
                                    load_snapshot, load_summary, machine_live_dir)
from factorlab.results.provenance import code_version, git_state
from factorlab.results.store import DirtyTreeError, check_clean

LOAD_KEYS = {"loadavg_1m_start", "loadavg_1m_end", "cpu_count", "torch_threads", "other_trainings",
             "other_cpu_cores", "quiet"}


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_git_state_counts_only_code_changes(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "notebooks" / "n.ipynb").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "c")
    state = git_state(tmp_path)
    assert state["dirty"] is False and state["dirty_files"] == [] and len(state["commit"]) == 40
    (tmp_path / "notebooks" / "n.ipynb").write_text("{\"changed\": 1}\n")  # outputs and records: not code
    (tmp_path / "data" / "results" / "x").mkdir(parents=True)
    (tmp_path / "data" / "results" / "x" / "k.json").write_text("{}\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")
    (tmp_path / "lib" / "new.py").write_text("y = 1\n")
    (tmp_path / "requirements.txt").write_text("torch\n")
    state = git_state(tmp_path)
    assert state["dirty"] is True
    assert state["dirty_files"] == ["lib/a.py", "lib/new.py", "requirements.txt"]


def test_code_version_follows_the_code_only(tmp_path):
    """Commits of records, notebooks or prose keep the code version; a commit to lib/, benchmarks/
    or the requirements changes it; outside a repository it is None."""
    assert code_version(tmp_path) is None
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "n.ipynb").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "c")
    v0 = code_version(tmp_path)
    assert v0 is not None and len(v0) == 64
    (tmp_path / "notebooks" / "n.ipynb").write_text("{\"changed\": 1}\n")
    (tmp_path / "data" / "results" / "x").mkdir(parents=True)
    (tmp_path / "data" / "results" / "x" / "k.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "records and outputs")
    assert code_version(tmp_path) == v0
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path) == v0  # uncommitted: the tree is dirty, git_state says so
    _git(tmp_path, "commit", "-qam", "code")
    v1 = code_version(tmp_path)
    assert v1 not in (None, v0)
    (tmp_path / "requirements.txt").write_text("torch\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "requirements")
    assert code_version(tmp_path) not in (v0, v1)
    (tmp_path / "sub").mkdir()
    assert code_version(tmp_path / "sub") is None  # not the top of the repository


def test_check_clean_refuses_published_profiles_only(monkeypatch):
    monkeypatch.delenv("FACTORLAB_ALLOW_DIRTY", raising=False)
    dirty = {"commit": "a" * 40, "dirty": True, "dirty_files": ["lib/factorlab/x.py"]}
    with pytest.raises(DirtyTreeError, match=r"lib/factorlab/x.py.*FACTORLAB_ALLOW_DIRTY=1"):
        check_clean({"experiment": "toy", "profile": "cpu"}, dirty)
    with pytest.raises(DirtyTreeError, match="full run of 'toy'"):
        check_clean({"experiment": "toy", "profile": "full"}, dirty)
    check_clean({"experiment": "toy", "profile": "smoke"}, dirty)  # smoke is never published
    check_clean({"experiment": "toy", "profile": "cpu"}, {**dirty, "dirty": False, "dirty_files": []})
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    check_clean({"experiment": "toy", "profile": "cpu"}, dirty)


def test_store_marks_allowed_dirty_runs(tmp_path, monkeypatch):
    import factorlab.results.store as store_mod

    dirty = {"commit": "b" * 40, "dirty": True, "dirty_files": ["lib/factorlab/x.py"]}
    monkeypatch.setattr(store_mod, "git_state", lambda: dirty)
    store = RunStore(tmp_path)
    cfg = {"experiment": "toy", "profile": "cpu", "seed": 0}
    monkeypatch.delenv("FACTORLAB_ALLOW_DIRTY", raising=False)
    calls = []
    with pytest.raises(DirtyTreeError):
        store.run(cfg, lambda c: calls.append(c) or {"metrics": {"a": 1}})
    assert calls == [] and not store.path(cfg).exists()  # refused before training; nothing written
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    prov = store.run(cfg, lambda c: {"metrics": {"a": 1}})["provenance"]
    assert prov["git_dirty"] is True and prov["allowed_dirty"] is True
    assert prov["git_dirty_files"] == ["lib/factorlab/x.py"]
    assert set(prov["load"]) == LOAD_KEYS


def test_live_markers_are_seen_and_stale_ones_removed(tmp_path):
    host = socket.gethostname()
    live = tmp_path / LIVE_DIR
    live.mkdir()
    (live / f"otherkey.{host}.{os.getppid()}").touch()  # a live process (our parent)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (live / f"stale.{host}.{dead.pid}").touch()
    with LiveMarker(tmp_path, "mine") as marker:
        assert marker.path.exists()
        assert marker.others() == 1
        assert sorted(n.split(".")[0] for n in live_runs(tmp_path)) == ["mine", "otherkey"]
    assert not (live / f"stale.{host}.{dead.pid}").exists()
    assert not marker.path.exists()


def test_a_training_in_another_store_is_seen_through_the_machine_folder(tmp_path):
    host = socket.gethostname()
    other_store, mine = tmp_path / "other", tmp_path / "mine"
    with LiveMarker(other_store, "theirs") as theirs:
        assert theirs.machine_path.parent == machine_live_dir() and theirs.machine_path.exists()
        with LiveMarker(mine, "mine") as marker:
            assert marker.others() == 1  # nothing in my store's .live/, one on the machine
            assert live_trainings(mine) == {f"theirs.{host}.{os.getpid()}", f"mine.{host}.{os.getpid()}"}
            start = load_snapshot(marker)
            load = load_summary(start, marker)
        assert load["other_trainings"] == 1 and load["quiet"] is False
    assert not list(machine_live_dir().iterdir())  # both markers removed on exit


def test_machine_live_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(MACHINE_LIVE_ENV, str(tmp_path / "x"))
    assert machine_live_dir() == tmp_path / "x"
    monkeypatch.delenv(MACHINE_LIVE_ENV)
    assert machine_live_dir().name == f"factorlab-live-{os.getuid()}"


def test_another_training_makes_a_run_not_quiet(tmp_path):
    host = socket.gethostname()
    with LiveMarker(tmp_path, "mine") as marker:
        start = load_snapshot(marker)
        (tmp_path / LIVE_DIR / f"other.{host}.{os.getppid()}").touch()
        load = load_summary(start, marker)
    assert load["other_trainings"] == 1 and load["quiet"] is False
    assert set(load) == LOAD_KEYS and load["cpu_count"] == os.cpu_count()


def test_other_cpu_cores_is_machine_cpu_less_own_cpu_per_wall_second(monkeypatch):
    import factorlab.results.load as load_mod

    clock = {"busy": 100.0, "own": 10.0, "wall": 50.0}
    monkeypatch.setattr(load_mod, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(load_mod, "_own_cpu_seconds", lambda: clock["own"])
    monkeypatch.setattr(load_mod.time, "perf_counter", lambda: clock["wall"])
    start = load_snapshot()
    clock.update(busy=100.0 + 2 * 10 * 0.9 + 2.0, own=10.0 + 18.0, wall=60.0)  # we used 1.8 cores for 10 s
    summary = load_summary(start)
    assert summary["other_cpu_cores"] == pytest.approx(0.2) and summary["quiet"] is True
    clock.update(busy=100.0 + 18.0 + 3.0, own=28.0, wall=60.0)  # others: 3 CPU s in 10 s
    summary = load_summary(start)
    assert summary["other_cpu_cores"] == pytest.approx(0.3) and summary["quiet"] is False


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")
def test_cpu_used_by_another_process_is_measured():
    # a process we do not wait for (double fork) counts as another's CPU; other load only adds
    start = load_snapshot()
    subprocess.run([sys.executable, "-c",
                    "import os,time\nif os.fork()==0:\n t=time.time()\n while time.time()-t<1.5: pass\n os._exit(0)"],
                   check=True)
    time.sleep(1.6)
    other = load_summary(start)
    assert other["other_cpu_cores"] > 0.5 and other["quiet"] is False
