"""Executors (``factorlab.experiments.executors``): 2 worker processes and 2 Ray workers give
exactly the records of a sequential run; a killed worker leaves no record and a rerun completes
the grid; claims keep two commands off the same run; bad arguments are one-line errors."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from factorlab.cli import main
from factorlab.experiments import get_experiment, select
from factorlab.experiments.executors import RAY_PIN, Claim, is_claimed, run_configs, run_grid
from factorlab.results import RunStore, live_runs

REPO = Path(__file__).resolve().parents[2]

#: The smoke grid the equivalence tests train: the two MLP runs of ``mnist_baselines``.
WHERE = {"net": "mlp"}


def science(record: dict) -> dict:
    """A record less what depends on when, where and how fast it ran (provenance, timing and
    the ``*_s`` seconds of metrics and history)."""
    out = {k: v for k, v in record.items() if k not in ("provenance", "timing")}
    for part in ("metrics", "history"):
        out[part] = {k: v for k, v in record[part].items() if not k.endswith("_s")}
    return out


def toy_train(config: dict, device: str) -> dict:
    """A toy run (module level, so worker processes import it): sleeps ``config["sleep"]`` s."""
    time.sleep(config["sleep"])
    return {"metrics": {"score": config["seed"] * 10 + 1}, "history": {}, "timing": {}, "model": {"device": device}}


def toy_grid(n: int, sleep: float) -> list[dict]:
    return [{"experiment": "toy_sweep", "profile": "smoke", "seed": s, "sleep": sleep} for s in range(n)]


def leftovers(root: Path) -> list[Path]:
    """Temporary files a write may have left in the store's experiment folders."""
    return [p for p in root.rglob("*.tmp")]


@pytest.fixture(scope="module")
def mlp_configs() -> list[dict]:
    return select(get_experiment("mnist_baselines").grid("smoke"), WHERE)


@pytest.fixture(scope="module")
def sequential(mlp_configs, tmp_path_factory) -> list[dict]:
    """The smoke MLP runs trained one after another here, with 1 torch thread (what each of 2
    workers gets on 2 cores: float reductions may depend on the thread count)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = RunStore(tmp_path_factory.mktemp("sequential"))
        return run_configs(mlp_configs, "mnist_baselines", executor="local", device="cpu", store=store)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray (2 CPUs, no dashboard) for the module; the executor reuses it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its workers cannot import this file
    yield ray
    ray.shutdown()


# ---------------------------------------------------------------- equivalence

def test_two_processes_give_the_sequential_records(capsys, sequential, mlp_configs, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--device", "cpu", "--where", "net=mlp",
                 "--executor", "processes", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(" training ") == 2 and "2 runs of mnist_baselines (smoke)" in out
    store = RunStore(tmp_path)
    seen = []
    records = run_configs(mlp_configs, "mnist_baselines", executor="processes", jobs=2, device="cpu", store=store,
                          log=lambda i, n, cfg, cached: seen.append((i, n, cached)))  # all cached now
    assert seen == [(0, 2, True), (1, 2, True)]
    assert [r["key"] for r in records] == [r["key"] for r in sequential] == [store.key(c) for c in mlp_configs]
    assert [science(r) for r in records] == [science(r) for r in sequential]
    assert all(r["provenance"]["load"]["torch_threads"] == 1 for r in records)
    assert records == [json.loads(store.path(c).read_text()) for c in mlp_configs]  # as stored


def test_two_ray_workers_give_the_sequential_records(ray_local, sequential, mlp_configs, tmp_path):
    store = RunStore(tmp_path)
    records = run_configs(mlp_configs, "mnist_baselines", executor="ray", jobs=2, device="cpu", store=store)
    assert [r["key"] for r in records] == [r["key"] for r in sequential]
    assert [science(r) for r in records] == [science(r) for r in sequential]
    assert all(r["provenance"]["load"]["torch_threads"] == 1 for r in records)
    assert ray_local.is_initialized()  # a Ray the caller started is left running


# ---------------------------------------------------------------- killed workers

def _kill_first_worker(root: Path, holder: dict) -> int:
    """Wait for a live-run marker in the store at ``root`` and SIGKILL the process it names."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "error" not in holder:
        names = live_runs(root)
        if names:
            pid = int(names[0].rsplit(".", 1)[1])
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no run went live: {holder}")


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_a_killed_worker_leaves_no_record_and_a_rerun_completes(executor, request, tmp_path):
    if executor == "ray":
        request.getfixturevalue("ray_local")
    configs = toy_grid(4, sleep=1.0)
    store = RunStore(tmp_path)
    holder: dict = {}

    def sweep():
        try:
            holder["records"] = run_configs(configs, toy_train, executor=executor, jobs=2, store=store)
        except RuntimeError as err:
            holder["error"] = str(err)

    thread = threading.Thread(target=sweep)
    thread.start()
    _kill_first_worker(tmp_path, holder)
    thread.join(120)
    assert "records" not in holder and "died" in holder["error"] and "run the command again" in holder["error"]
    assert "\n" not in holder["error"]
    written = sorted((tmp_path / "toy_sweep").glob("*.json")) if (tmp_path / "toy_sweep").exists() else []
    assert len(written) < 4 and not leftovers(tmp_path)
    before = {p.stem: json.loads(p.read_text()) for p in written}  # whole, valid records only
    assert all(r["key"] == k and r["metrics"]["score"] % 10 == 1 for k, r in before.items())

    records = run_configs(configs, toy_train, executor=executor, jobs=2, store=store)
    assert [r["key"] for r in records] == [store.key(c) for c in configs]
    assert [r["metrics"]["score"] for r in records] == [1, 11, 21, 31]
    assert all(records[[r["key"] for r in records].index(k)] == r for k, r in before.items())  # not retrained
    assert not live_runs(tmp_path) and not any((tmp_path / ".claims").iterdir())


# ---------------------------------------------------------------- claims

def test_a_claim_is_exclusive_and_dies_with_its_holder(tmp_path):
    first, second = Claim(tmp_path, "k"), Claim(tmp_path, "k")
    assert not is_claimed(tmp_path, "k")
    assert first.acquire() and is_claimed(tmp_path, "k")
    assert not second.acquire()
    first.release()
    assert not (tmp_path / ".claims" / "k").exists() and not is_claimed(tmp_path, "k")
    assert second.acquire()
    second.release()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from factorlab.experiments.executors import Claim; "
        f"assert Claim({str(tmp_path)!r}, 'k').acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert is_claimed(tmp_path, "k") and not Claim(tmp_path, "k").acquire()
    finally:
        holder.kill()
        holder.wait()
    assert not is_claimed(tmp_path, "k")  # the kernel dropped the killed holder's lock
    with Claim(tmp_path, "k") as again:
        assert again.acquire()


def test_a_run_claimed_by_another_command_is_waited_for_not_trained(tmp_path, monkeypatch):
    import factorlab.experiments.executors as ex

    monkeypatch.setattr(ex, "POLL_S", 0.05)
    configs = toy_grid(3, sleep=0.0)
    store = RunStore(tmp_path)
    trained = []

    def counting_train(cfg, device):
        trained.append(cfg["seed"])
        return toy_train(cfg, device)

    other = Claim(tmp_path, store.key(configs[1]))  # "another command" trains seed 1
    assert other.acquire()
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.update(records=run_configs(configs, counting_train, store=store)))
    thread.start()
    deadline = time.monotonic() + 30
    while sorted(trained) != [0, 2] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert thread.is_alive() and sorted(trained) == [0, 2]  # waiting for seed 1
    store.run(configs[1], lambda c: toy_train(c, "elsewhere"))
    other.release()
    thread.join(30)
    assert sorted(trained) == [0, 2]
    assert [r["model"]["device"] for r in holder["records"]] == ["cpu", "elsewhere", "cpu"]


def test_a_freed_claim_without_a_record_is_trained_here(tmp_path, monkeypatch):
    import factorlab.experiments.executors as ex

    monkeypatch.setattr(ex, "POLL_S", 0.05)
    configs = toy_grid(1, sleep=0.0)
    store = RunStore(tmp_path)
    other = Claim(tmp_path, store.key(configs[0]))
    assert other.acquire()
    threading.Timer(0.3, other.release).start()  # the other command died without a record
    (record,) = run_configs(configs, toy_train, store=store)
    assert record["metrics"]["score"] == 1 and record["model"]["device"] == "cpu"


def test_local_runs_in_grid_order_once_and_raises_a_runs_own_error(tmp_path):
    configs = toy_grid(3, sleep=0.0)
    store = RunStore(tmp_path)
    store.run(configs[1], lambda c: toy_train(c, "before"))
    seen = []
    records = run_configs([configs[0], configs[1], configs[0], configs[2]], toy_train, store=store,
                          log=lambda i, n, cfg, cached: seen.append((i, n, cfg["seed"], cached)))
    assert seen == [(0, 4, 0, False), (1, 4, 1, True), (3, 4, 2, False)]  # the repeated config once
    assert [r["model"]["device"] for r in records] == ["cpu", "before", "cpu", "cpu"] and records[0] == records[2]

    def broken(cfg, device):
        raise ZeroDivisionError("a bug in a run")

    with pytest.raises(ZeroDivisionError, match="a bug in a run"):
        run_configs(toy_grid(4, 0.0), broken, store=store)
    assert len(store.records("toy_sweep")) == 3 and not any((tmp_path / ".claims").iterdir())


# ---------------------------------------------------------------- arguments and the command line

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_bad_address_is_a_quick_one_line_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    pytest.importorskip("ray")
    port = _closed_port()
    t0 = time.monotonic()
    code = main(["run", "mnist_baselines", "--profile", "smoke", "--executor", "ray", "--address", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - t0 < 15
    assert err.startswith(f"error: cannot reach a Ray cluster at 127.0.0.1:{port} (") and err.count("\n") == 1
    assert "ray start --head" in err
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--executor", "ray", "--address", "nonsense"]) == 2
    assert capsys.readouterr().err == ("error: --address must be HOST:PORT (the head node's `ray start --head` "
                                       "address, port 6379 by default), ray://HOST:PORT or auto, got 'nonsense'\n")
    assert not any(tmp_path.rglob("*.json"))


def test_cli_ray_without_ray_says_how_to_install_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--executor", "ray"]) == 2
    assert capsys.readouterr().err == (f"error: --executor ray needs Ray, which is not installed here: pip install "
                                       f"'{RAY_PIN}' (or use --executor processes)\n")


def test_bad_executor_arguments_are_one_line_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--jobs", "2"]) == 2
    assert capsys.readouterr().err == "error: --jobs 2 needs --executor processes or ray (local runs one at a time)\n"
    assert main(["run", "mnist_baselines", "--profile", "smoke", "--executor", "processes", "--address", "auto"]) == 2
    assert capsys.readouterr().err == "error: --address is for --executor ray, not processes\n"
    with pytest.raises(ValueError, match="unknown executor 'threads': choose one of local, processes, ray"):
        run_configs(toy_grid(1, 0.0), toy_train, executor="threads", store=RunStore(tmp_path))
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        run_grid("mnist_baselines", "smoke", executor="processes", jobs=0)
    assert not any(tmp_path.rglob("*.json"))


def test_ray_is_pinned_exactly():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert RAY_PIN in [line.split("#")[0].strip() for line in lines]
    assert '"ray>=' in (REPO / "pyproject.toml").read_text()
