"""Executors: train the missing runs of a grid one after another, in worker processes on this
machine, or as tasks on a Ray cluster.

    run_configs(configs, "mnist_baselines", executor="processes", jobs=2)

- ``local``: the sequential loop of :func:`factorlab.experiments.run_experiment`, in this process
  (each run under its claim; a failing run raises its own exception).
- ``processes``: the missing configs run in ``jobs`` worker processes (``spawn``), each with
  ``torch.set_num_threads(threads)``, ``threads = max(1, cores // jobs)`` by default.
- ``ray``: each missing config is a Ray task (``num_cpus=threads``, the task's torch threads),
  on a local Ray the call starts (``address=None``) or on the cluster at ``address``
  (``HOST:PORT`` of ``ray start --head``, ``auto``, or ``ray://HOST:PORT``). Ray is optional.

Whichever process trains writes the record through :meth:`RunStore.run` (atomically, at the end),
so every node must see the store's folder (a shared filesystem on a cluster). Two workers never
train the same config: the driver dispatches each missing config once, and the worker trains
under a :class:`Claim` (an exclusive ``flock`` on ``<store>/.claims/<key>``) so that two
commands sharing a store do not collide either; a config claimed elsewhere is waited for and
read from the store when its record appears. The kernel drops a claim when its holder dies, so a
worker killed mid-run leaves neither a record nor a stale claim, and the next call trains the
rest. Results come back in grid order, as read from the store.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import errno
import fcntl
import importlib
import logging
import multiprocessing
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable, Union

EXECUTORS = ("local", "processes", "ray")

#: The Ray release this project pins (requirements.txt); the install hint names it.
RAY_PIN = "ray==2.60.0"

#: Folder of claim files inside the store's root (beside the ``.live`` markers).
CLAIMS_DIR = ".claims"

#: Seconds between looks at a config another command is training.
POLL_S = 2.0

#: Seconds to wait for a TCP connection to a Ray head at ``address`` before giving up.
CONNECT_TIMEOUT_S = 5.0

#: A run's training function ``train(config, device) -> record parts``, or the name of a
#: registered experiment (resolved in the worker, so it need not be picklable).
Train = Union[str, Callable[[dict, str], dict]]

#: ``log(i, n, config, cached)``: called once per config, before it is trained or when it is
#: found in the store (the CLI's progress line).
Log = Callable[[int, int, dict, bool], None]


# ---------------------------------------------------------------- claims

class Claim:
    """An exclusive claim on training run ``key`` in the store at ``root``: an ``flock`` on
    ``<root>/.claims/<key>`` (the file holds ``host pid``). The kernel drops the lock when the
    holder exits or is killed, so a claim never outlives its process; :meth:`release` removes
    the file while still holding the lock, and :meth:`acquire` retries when the file it
    locked was removed meanwhile (so two processes never both hold a key)."""

    def __init__(self, root: str | Path, key: str):
        self.path = Path(root) / CLAIMS_DIR / key
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the claim if no one holds it: True when taken, False when held elsewhere."""
        if self._fd is not None:
            raise RuntimeError(f"claim {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                os.ftruncate(fd, 0)
                os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
                self._fd = fd
                return True
            os.close(fd)  # its holder released (removed) the file between our open and lock

    def release(self) -> None:
        """Give the claim up (a no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_claimed(root: str | Path, key: str) -> bool:
    """Whether some process holds the :class:`Claim` of run ``key`` in the store at ``root`` now."""
    try:
        fd = os.open(Path(root) / CLAIMS_DIR / key, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # closing drops our probe lock
    return False


# ---------------------------------------------------------------- one run, in a worker

def resolve_train(train: Train) -> Callable[[dict, str], dict]:
    """``train`` itself, or the ``train`` of the registered experiment it names."""
    if isinstance(train, str):
        from factorlab.experiments import get_experiment

        return get_experiment(train).train
    if not callable(train):
        raise ValueError(f"train must be an experiment name or a function train(config, device), got {train!r}")
    return train


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when ``threads`` is given."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def start_worker(threads: int | None) -> None:
    """What a worker process sets once, as it starts: ``threads`` torch threads
    (:func:`set_threads`) and the C allocator that keeps freed memory
    (:func:`factorlab.train.allocator.retain_freed_memory`, recorded with each timing)."""
    from factorlab.train.allocator import retain_freed_memory

    set_threads(threads)
    retain_freed_memory()


def train_one(train: Train, config: dict, device: str, root: str, threads: int | None = None) -> str:
    """Train ``config`` into the store at ``root`` under its :class:`Claim`, in this process.

    Returns ``"trained"``, ``"cached"`` (its record was there) or ``"busy"`` (another process
    holds its claim: nothing done). ``device`` is resolved here (``auto`` picks this machine's).
    """
    from factorlab.results import RunStore
    from factorlab.train import resolve_device

    store = RunStore(root)
    if store.get(config) is not None:
        return "cached"
    claim = Claim(root, store.key(config))
    if not claim.acquire():
        return "busy"
    with claim:
        if store.get(config) is not None:  # finished by another process before we claimed it
            return "cached"
        set_threads(threads)
        fn = resolve_train(train)
        dev = str(resolve_device(device))
        store.run(config, lambda c: fn(c, dev), device=dev)
    return "trained"


def _ray_task(train: Train, config: dict, device: str, root: str, threads: int) -> str:
    """The body of a Ray task: :func:`train_one` with ``threads`` torch threads, in a worker
    process started as :func:`start_worker` starts one (Ray reuses its workers: the allocator
    is set by the first task of each)."""
    start_worker(None)
    return train_one(train, config, device, root, threads)


# ---------------------------------------------------------------- Ray

def import_ray():
    """The ``ray`` module; RuntimeError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(f"--executor ray needs Ray, which is not installed here: pip install '{RAY_PIN}' "
                           "(or use --executor processes)") from None
    return ray


def check_address(address: str) -> None:
    """ValueError unless ``address`` is ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``;
    RuntimeError when nothing accepts a TCP connection at ``HOST:PORT`` within
    :data:`CONNECT_TIMEOUT_S` seconds (Ray itself would retry for minutes)."""
    if address == "auto":
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address must be HOST:PORT (the head node's `ray start --head` address, port 6379 "
                         f"by default), ray://HOST:PORT or auto, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise RuntimeError(f"cannot reach a Ray cluster at {address} ({reason}); start one with "
                           "`ray start --head` and pass the address it prints") from None


def connect_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to Ray: the cluster at ``address`` (checked by :func:`check_address` first), or
    a new local Ray with ``num_cpus`` CPUs when ``address`` is None. A Ray this process already
    joined is reused. Returns whether this call started or joined Ray (then the caller shuts it
    down). The ``FACTORLAB_*`` environment variables travel to the cluster's workers."""
    ray = import_ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith("FACTORLAB_")}
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.ERROR)
        else:
            ray.init(address=address, logging_level=logging.ERROR,
                     runtime_env={"env_vars": env} if env else None)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RuntimeError(f"cannot start or join Ray (address {address or 'local'}): {first}") from None
    return True


def ray_threads(ray, jobs: int | None) -> tuple[int, int]:
    """``(jobs, threads)`` on the Ray cluster: ``jobs`` defaults to its CPUs; each task gets
    ``threads = max(1, cpus // jobs)``, at most the CPUs of its largest node."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    per_node = max((int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
    jobs = jobs or max(1, cpus)
    return jobs, max(1, min(cpus // jobs, per_node))


# ---------------------------------------------------------------- the driver

def _check_jobs(executor: str, jobs: int | None) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if executor == "local" and jobs not in (None, 1):
        raise ValueError(f"--jobs {jobs} needs --executor processes or ray (local runs one at a time)")


def _first_line(err: BaseException) -> str:
    """What went wrong, in one line without colour codes (a Ray task's error: its cause)."""
    if isinstance(err, BrokenProcessPool):
        return "a worker process died (killed, or out of memory)"
    if type(err).__name__ in ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError"):
        return "the Ray worker died (killed, or out of memory)"
    cause = getattr(err, "cause", None)  # ray.exceptions.RayTaskError wraps the task's exception
    if isinstance(cause, BaseException) and cause is not err:
        return _first_line(cause)
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    text = (text.splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _dispatch(todo: list[tuple[int, dict]], n: int, submit: Callable[[dict], cf.Future], jobs: int,
              store, log: Log | None) -> list[tuple[dict, BaseException]]:
    """Go through ``todo`` ((grid index, config)) in order: a config in the store is logged as
    cached, one another command holds is waited for, the others go to ``submit``, at most
    ``jobs`` in flight. Stops submitting at the first failure and returns every (config,
    exception) once the runs in flight have ended."""
    root = store.root
    pending = collections.deque(todo)
    waiting: list[tuple[int, dict]] = []
    running: dict[cf.Future, tuple[int, dict]] = {}
    failures: list[tuple[dict, BaseException]] = []
    while running or (not failures and (pending or waiting)):
        while pending and len(running) < jobs and not failures:
            i, cfg = pending.popleft()
            if store.get(cfg) is not None:
                if log is not None:
                    log(i, n, cfg, True)
            elif is_claimed(root, store.key(cfg)):
                waiting.append((i, cfg))
            else:
                if log is not None:
                    log(i, n, cfg, False)
                running[submit(cfg)] = (i, cfg)
        if not running:
            if waiting and not pending:
                time.sleep(POLL_S)
        else:
            done, _ = cf.wait(running, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i, cfg = running.pop(fut)
                try:
                    if fut.result() == "busy":  # claimed elsewhere between our look and the worker's
                        waiting.append((i, cfg))
                except BaseException as err:  # noqa: BLE001 -- reported together below
                    failures.append((cfg, err))
        still = []
        for i, cfg in waiting:  # records appear when the other command finishes; a freed claim
            if store.get(cfg) is not None or not is_claimed(root, store.key(cfg)):  # without one: ours
                pending.append((i, cfg))
            else:
                still.append((i, cfg))
        waiting = still
    return failures


def run_configs(configs: list[dict], train: Train, *, executor: str = "local", jobs: int | None = None,
                address: str | None = None, device: str = "auto", store=None, log: Log | None = None,
                threads: int | None = None) -> list[dict]:
    """The records of ``configs`` in their order: from ``store`` (default
    :class:`~factorlab.results.RunStore`), training the missing ones with ``train`` (a function
    ``train(config, device)`` importable by the workers, or a registered experiment's name) on
    ``executor`` with ``jobs`` runs at a time. ``threads``: torch threads per worker (default
    ``max(1, cores // jobs)``; on Ray, capped at a node's CPUs). ``address``: the Ray cluster
    (``ray`` only; None starts a local Ray). ValueError for bad arguments; RuntimeError naming
    the failed runs when some could not be trained (the records of the others are written)."""
    from factorlab.results import RunNotCachedError, RunStore, check_config, git_state, require_cached
    from factorlab.results.store import check_clean

    _check_jobs(executor, jobs)
    if address is not None and executor != "ray":
        raise ValueError(f"--address is for --executor ray, not {executor}")
    resolve_train(train)  # fail early on an unknown experiment name
    if executor != "ray":  # this machine trains: fail early on a device it lacks
        from factorlab.train import resolve_device

        resolve_device(device)
    store = store if store is not None else RunStore()
    root = str(store.root)
    n = len(configs)
    for c in configs:
        check_config(c)
    keys = [store.key(c) for c in configs]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    todo = [(i, configs[i]) for i in sorted(first.values())]  # each run once, in grid order
    missing = [(i, cfg) for i, cfg in todo if store.get(cfg) is None]
    if missing:
        if require_cached():
            raise RunNotCachedError(f"{len(missing)} runs of {missing[0][1]['experiment']!r} are not in the run "
                                    f"store {root} and FACTORLAB_REQUIRE_CACHED is set, so they are not trained")
        check_clean(missing[0][1], git_state())  # refuse a dirty tree before starting any worker
    cores = os.cpu_count() or 1
    if not missing:
        failures = []
        for i, cfg in todo if log is not None else []:
            log(i, n, cfg, True)
    elif executor == "local":
        failures = _dispatch(todo, n, lambda cfg: _run_here(train, cfg, device, root, threads), 1, store, log)
        if failures:  # here, the run's own exception (with its traceback) says most
            raise failures[0][1]
    elif executor == "processes":
        jobs = jobs or cores
        threads = threads or max(1, cores // jobs)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=start_worker,
                                    initargs=(threads,)) as pool:
            failures = _dispatch(todo, n, lambda cfg: pool.submit(train_one, train, cfg, device, root, threads),
                                 jobs, store, log)
    else:
        ray = import_ray()
        started = connect_ray(address, num_cpus=cores if address is None else None)
        try:
            jobs, auto_threads = ray_threads(ray, jobs)
            threads = threads or auto_threads
            task = ray.remote(_ray_task).options(num_cpus=threads, max_retries=0,
                                                 num_gpus=1 if str(device).startswith("cuda") else 0)
            failures = _dispatch(todo, n, lambda cfg: task.remote(train, cfg, device, root, threads).future(),
                                 jobs, store, log)
        finally:
            if started:
                ray.shutdown()
    if failures:
        cfg, err = failures[0]
        done = sum(store.get(c) is not None for _, c in missing)
        raise RuntimeError(f"{len(failures)} of {len(missing)} runs to train failed ({done} trained and recorded; "
                           f"run the command again to train the rest; --executor local shows a traceback); "
                           f"run {store.key(cfg)}: {_first_line(err)}")
    records = [store.get(c) for c in configs]
    lost = [k for k, r in zip(keys, records) if r is None]
    if lost:
        raise RuntimeError(f"{len(lost)} runs were trained but their records are not in the store {root} (e.g. "
                           f"{lost[0]}): on a cluster, the store must be on a filesystem every node shares "
                           "(set FACTORLAB_RESULTS_DIR)")
    return records


def _run_here(train: Train, config: dict, device: str, root: str, threads: int | None) -> cf.Future:
    """:func:`train_one` in this process, as a finished future (the ``local`` executor)."""
    fut: cf.Future = cf.Future()
    try:
        fut.set_result(train_one(train, config, device, root, threads))
    except Exception as err:  # noqa: BLE001 -- the driver reports it
        fut.set_exception(err)
    return fut


def run_grid(name: str, profile: str, device: str = "auto", *, executor: str = "local", jobs: int | None = None,
             address: str | None = None, store=None, log: Log | None = None,
             where: dict[str, str] | None = None) -> list[dict]:
    """Every run of registered experiment ``name`` under ``profile`` (restricted by ``where``,
    see :func:`factorlab.experiments.select`) through :func:`run_configs` (``local``: the loop
    of :func:`factorlab.experiments.run_experiment`, each run under its claim)."""
    from factorlab.experiments import check_profile, get_experiment, select

    configs = select(get_experiment(name).grid(check_profile(profile)), where)
    return run_configs(configs, name, executor=executor, jobs=jobs, address=address, device=device,
                       store=store, log=log)


__all__ = ["CLAIMS_DIR", "EXECUTORS", "RAY_PIN", "Claim", "check_address", "connect_ray", "import_ray",
           "is_claimed", "run_configs", "run_grid", "train_one"]
