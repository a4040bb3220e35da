"""The command line every ``benchmarks/*.py`` script shares: :func:`benchmark_main`.

A benchmark module (``factorlab.experiments.<name>``) describes its script with a
:class:`BenchmarkCommand` named ``COMMAND``; :func:`benchmark_main` builds the parser, picks the
profile and device, measures (or, with ``--record``, goes through the run store: the stored
record if there is one) and prints the module's table. The scripts are then two lines::

    from factorlab.experiments.benchmark_cli import benchmark_main
    raise SystemExit(benchmark_main("dft_threads_benchmark", doc=__doc__))

Options every script gets: ``--quick`` (the ``smoke`` profile) or, for a command with
``profile_device``, ``--profile``; ``--record`` where the benchmark writes a record;
``--device`` where it runs on more than one; ``--threads`` where it asks for it. Without
``--quick`` the profile follows the device: ``cpu`` on the CPU, ``full`` on a GPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from typing import Any, Callable

#: Where a profile measures, for commands chosen by ``--quick`` and ``--device``.
PROFILE_OF_DEVICE = {"cpu": "cpu", "cuda": "full"}


class BenchmarkError(RuntimeError):
    """A benchmark that cannot run here (a missing package, no GPU): printed as one line
    ``error: ...`` and exit status 2."""


@dataclasses.dataclass(frozen=True)
class BenchmarkCommand:
    """What one benchmark adds to the shared command line.

    Args:
        make_config: ``(profile, device, args) -> config`` (the record's typed config, or any
            object ``measure`` takes where ``record`` is False); ``args`` holds the options of
            ``options``. Raise :class:`BenchmarkError` or ``ValueError`` for a run that cannot be.
        measure: ``(config, device) -> record`` (at least ``metrics``), measured now, not stored.
        table: ``(record, config) -> str``, what the script prints last.
        header: ``(config, device) -> str``, printed before measuring (None: nothing).
        quick: the help of ``--quick``.
        devices: the ``--device`` choices, the first the default (``"auto"``: a GPU if there is
            one); with one device there is no ``--device`` option.
        profile_device: ``{profile: device}`` for a benchmark chosen by ``--profile`` (default
            the first key) instead of ``--quick`` and ``--device``.
        threads: offer ``--threads N`` (torch CPU threads; the number used is recorded).
        record: offer ``--record`` (the run store); False for a benchmark that writes no record.
        options: ``parser -> None``, the benchmark's own options.
        errors: exceptions printed as ``error: ...`` with status 2 (besides :class:`BenchmarkError`).
    """

    make_config: Callable[[str, str, argparse.Namespace], Any]
    measure: Callable[[Any, str], dict]
    table: Callable[[dict, Any], str]
    header: Callable[[Any, str], str] | None = None
    quick: str = "the smoke profile: seconds (smoke test)"
    devices: tuple[str, ...] = ("cpu",)
    profile_device: dict[str, str] | None = None
    threads: bool = False
    record: bool = True
    options: Callable[[argparse.ArgumentParser], None] | None = None
    errors: tuple[type[Exception], ...] = (ValueError,)


def command_of(name: str) -> BenchmarkCommand:
    """The :class:`BenchmarkCommand` of the benchmark module ``factorlab.experiments.<name>``."""
    try:
        module = importlib.import_module(f"factorlab.experiments.{name}")
    except ModuleNotFoundError as err:
        raise ValueError(f"no benchmark module factorlab.experiments.{name}") from err
    command = getattr(module, "COMMAND", None)
    if not isinstance(command, BenchmarkCommand):
        raise ValueError(f"factorlab.experiments.{name} has no COMMAND (a BenchmarkCommand)")
    return command


def build_parser(name: str, command: BenchmarkCommand, description: str | None = None) -> argparse.ArgumentParser:
    """The parser of benchmark ``name``'s script (see the module docstring for the options)."""
    parser = argparse.ArgumentParser(description=description)
    if command.profile_device:
        profiles = list(command.profile_device)
        parser.add_argument("--profile", choices=sorted(profiles), default=profiles[0],
                            help=f"the budget, and with it the device ({', '.join(f'{p}: {d}' for p, d in command.profile_device.items())}; "
                                 f"default {profiles[0]})")
    else:
        parser.add_argument("--quick", action="store_true", help=command.quick)
        if len(command.devices) > 1:
            parser.add_argument("--device", choices=command.devices, default=command.devices[0],
                                help=f"{' | '.join(command.devices)} (default {command.devices[0]})")
    if command.record:
        parser.add_argument("--record", action="store_true",
                            help=f"run it through the run store (experiment {name}): the stored record if there is "
                                 "one, else measured now and stored")
    if command.threads:
        parser.add_argument("--threads", type=int, default=None,
                            help="torch CPU threads (default: torch's own; the number used is recorded)")
    if command.options:
        command.options(parser)
    return parser


def _device(command: BenchmarkCommand, args: argparse.Namespace) -> str:
    """``"cpu"`` or ``"cuda"`` for ``args``; BenchmarkError when CUDA is asked for and absent."""
    import torch

    if command.profile_device:
        device = command.profile_device[args.profile]
    else:
        device = getattr(args, "device", command.devices[0])
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available() and not command.profile_device:
        raise BenchmarkError("--device cuda but no CUDA GPU is available here")
    return device


def benchmark_main(name: str, argv: list[str] | None = None, doc: str | None = None) -> int:
    """Run benchmark ``name``'s script with ``argv`` (default ``sys.argv[1:]``); ``doc``: the
    script's docstring (its first paragraph describes the command). Returns the exit status: 0,
    or 2 (``error: ...`` on stderr) where it cannot run here."""
    return run_command(name, command_of(name), argv, doc)


def run_command(name: str, command: BenchmarkCommand, argv: list[str] | None = None, doc: str | None = None) -> int:
    """:func:`benchmark_main` with the :class:`BenchmarkCommand` given (``name``: the record's
    experiment, for ``--record``)."""
    from factorlab.experiments import registry
    from factorlab.train.allocator import retain_freed_memory

    retain_freed_memory()  # a benchmark's process measures: the allocator every training process uses
    description = " ".join(doc.strip().split("\n\n")[0].split()) if doc else None  # the first paragraph
    args = build_parser(name, command, description).parse_args(argv)
    try:
        if getattr(args, "threads", None) is not None:
            import torch

            torch.set_num_threads(args.threads)
        device = _device(command, args)
        profile = args.profile if command.profile_device else "smoke" if args.quick else PROFILE_OF_DEVICE[device]
        cfg = command.make_config(profile, device, args)
        if command.header:
            print(command.header(cfg, device), flush=True)
        if getattr(args, "record", False):
            rec = registry.record_run(name, cfg, device)
        else:
            rec = command.measure(cfg, device)
    except (BenchmarkError, *command.errors) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(command.table(rec, cfg))
    return 0


def one_run_grid(make_config: Callable[..., Any]) -> tuple[Callable, Callable, Callable]:
    """``(config, configs, grid)`` of a benchmark measured once per profile, from its
    ``make_config(profile, device=None)`` (a typed config with ``to_dict``):
    ``config(profile, device)`` the dict the run store hashes for ``device``'s kind,
    ``configs(profile)`` the one run on the profile's device, ``grid(profile)`` its dicts."""

    def config(profile: str, device) -> dict:
        return make_config(profile, device).to_dict()

    def configs(profile: str) -> list:
        return [make_config(profile)]

    def grid(profile: str) -> list[dict]:
        return [c.to_dict() for c in configs(profile)]

    return config, configs, grid
