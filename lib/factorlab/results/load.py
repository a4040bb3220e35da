"""How busy the machine was while a run trained: load averages, the CPU time other processes
took, and the other factorlab trainings that were live (the store's ``.live/`` markers).

A timing means something only when it was taken on a quiet machine (DESIGN.md, "Profiles").
:func:`load_snapshot` is taken before a run and :func:`load_summary` after it; the summary
goes into the record's provenance as ``load``:

``{"loadavg_1m_start", "loadavg_1m_end", "cpu_count", "torch_threads", "other_trainings",
"other_cpu_cores", "quiet"}``

- ``other_trainings``: the most other live factorlab trainings seen at the start or the end
  (from the live markers of the run store and of the machine-wide folder
  :func:`machine_live_dir`, so it counts runs of every process and executor that share the
  store's folder, and every training on this machine whatever store it writes to);
- ``other_cpu_cores``: CPU seconds used by every other process during the run divided by
  the run's wall seconds (Linux ``/proc/stat`` less this process's own CPU time), i.e. how
  many cores others kept busy on average; None where ``/proc/stat`` is missing;
- ``quiet``: no other training at the start or the end, and others used less than
  :data:`QUIET_OTHER_CORES` cores on average (falling back to the load averages, less this
  run's own threads, below the core count where ``/proc/stat`` is missing).
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Others may use at most this many cores on average (CPU s per wall s) for a run to be quiet.
QUIET_OTHER_CORES = 0.25

#: Folder of live-run markers inside the store's root.
LIVE_DIR = ".live"
#: Environment variable naming the machine-wide folder of live-run markers (default
#: ``<temp dir>/factorlab-live-<uid>``): every training marks itself there too, so a run
#: sees trainings that write to another store (a worktree's grid, a throw-away smoke store).
MACHINE_LIVE_ENV = "FACTORLAB_LIVE_DIR"


def _busy_seconds() -> float | None:
    """CPU seconds every process on the machine has spent busy since boot (``/proc/stat``:
    user + nice + system + irq + softirq + steal), or None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    busy = ticks[0] + ticks[1] + ticks[2] + sum(ticks[5:8])  # skip idle (3) and iowait (4)
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process (all threads) and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _loadavg() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


# ---------------------------------------------------------------- live-run markers

def _marker_name(key: str) -> str:
    return f"{key}.{socket.gethostname()}.{os.getpid()}"


def _alive(name: str) -> bool:
    """Whether the process a marker names is alive (markers of other hosts count as alive)."""
    try:
        _, host, pid = name.rsplit(".", 2)
        pid_i = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid_i, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def machine_live_dir() -> Path:
    """The machine-wide folder of live-run markers (``$FACTORLAB_LIVE_DIR``, or
    ``factorlab-live-<uid>`` in the temporary directory)."""
    env = os.environ.get(MACHINE_LIVE_ENV)
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"factorlab-live-{uid}"


def live_runs(root: str | Path | None = None) -> list[str]:
    """Names (``<key>.<host>.<pid>``) of the live trainings marked in the store at ``root``
    (``None``: in the machine-wide folder :func:`machine_live_dir`); markers of dead local
    processes are removed."""
    folder = machine_live_dir() if root is None else Path(root) / LIVE_DIR
    if not folder.is_dir():
        return []
    live = []
    for p in sorted(folder.iterdir()):
        if _alive(p.name):
            live.append(p.name)
        else:
            try:
                p.unlink()
            except OSError:
                pass
    return live


def live_trainings(root: str | Path | None = None) -> set[str]:
    """Every live training this process can see: the markers of the store at ``root`` (if
    given) and of the machine-wide folder, by name."""
    names = set(live_runs(None))
    if root is not None:
        names |= set(live_runs(root))
    return names


class LiveMarker:
    """Context manager marking the training of run ``key`` as live in the store at ``root``
    (an empty file ``<root>/.live/<key>.<host>.<pid>``) and in the machine-wide folder
    (:func:`machine_live_dir`, same name); both removed on exit."""

    def __init__(self, root: str | Path, key: str):
        self.path = Path(root) / LIVE_DIR / _marker_name(key)
        self.machine_path = machine_live_dir() / _marker_name(key)

    def __enter__(self) -> "LiveMarker":
        for p in (self.path, self.machine_path):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
        return self

    def __exit__(self, *exc) -> None:
        for p in (self.path, self.machine_path):
            try:
                p.unlink()
            except OSError:
                pass

    def others(self) -> int:
        """How many other trainings are live now (this marker excluded), in this store or
        anywhere on the machine."""
        return len(live_trainings(self.path.parent.parent) - {self.path.name})


# ---------------------------------------------------------------- snapshot and summary

@dataclass(frozen=True)
class LoadSnapshot:
    """The machine's state when a run started (see :func:`load_snapshot`)."""

    loadavg: float | None
    busy_s: float | None
    own_cpu_s: float
    wall: float
    others: int


def load_snapshot(marker: LiveMarker | None = None) -> LoadSnapshot:
    """Load average, machine-wide busy CPU seconds, this process's CPU seconds, a wall clock
    and the number of other live trainings (0 without a marker), taken now."""
    return LoadSnapshot(_loadavg(), _busy_seconds(), _own_cpu_seconds(), time.perf_counter(),
                        0 if marker is None else marker.others())


def load_summary(start: LoadSnapshot, marker: LiveMarker | None = None) -> dict:
    """The provenance ``load`` block of a run that started at ``start`` and ends now."""
    end = load_snapshot(marker)
    wall = max(end.wall - start.wall, 1e-9)
    cpus = os.cpu_count() or 1
    threads = _torch_threads()
    other_cores = None
    if start.busy_s is not None and end.busy_s is not None:
        others_s = (end.busy_s - start.busy_s) - (end.own_cpu_s - start.own_cpu_s)
        other_cores = round(max(others_s, 0.0) / wall, 3)
    others = max(start.others, end.others)
    if other_cores is not None:
        calm = other_cores < QUIET_OTHER_CORES
    else:
        own = threads or 1
        loads = [v for v in (start.loadavg, end.loadavg) if v is not None]
        calm = bool(loads) and max(loads) - own < cpus
    return {"loadavg_1m_start": start.loadavg, "loadavg_1m_end": end.loadavg, "cpu_count": cpus,
            "torch_threads": threads, "other_trainings": others, "other_cpu_cores": other_cores,
            "quiet": bool(calm and others == 0)}
