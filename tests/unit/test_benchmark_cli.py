"""The shared command line of benchmarks/*.py (factorlab.experiments.benchmark_cli)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from factorlab.experiments import benchmark_cli as cli
from factorlab.experiments import registry

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _command(calls: list, **kw) -> cli.BenchmarkCommand:
    """A fake benchmark that logs what it is asked for."""
    def make_config(profile, device, args):
        calls.append(("config", profile, device))
        if getattr(args, "size", 1) < 1:
            raise ValueError(f"size must be at least 1, got {args.size}")
        return {"profile": profile, "size": getattr(args, "size", 1)}

    def measure(cfg, device):
        calls.append(("measure", cfg["profile"], device))
        return {"metrics": {"x": 2 * cfg["size"]}}

    kw.setdefault("header", lambda cfg, device: f"header {cfg['profile']} on {device}")
    return cli.BenchmarkCommand(make_config=make_config, measure=measure,
                                table=lambda rec, cfg: f"x = {rec['metrics']['x']}", **kw)


def test_every_script_is_two_lines_over_benchmark_main():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert len(scripts) == 8
    for script in scripts:
        text = script.read_text()
        (name,) = re.findall(r'benchmark_main\("(\w+)", doc=__doc__\)', text)
        command = cli.command_of(name)  # the module describes its script
        assert isinstance(command, cli.BenchmarkCommand), script.name
        assert "argparse" not in text and "record_run" not in text, script.name
        if command.record:  # a recording benchmark is registered under the same name
            assert name in registry.names("benchmark")


def test_quick_is_the_smoke_profile_and_the_device_picks_cpu_or_full(capsys):
    calls = []
    assert cli.run_command("fake", _command(calls), ["--quick"]) == 0
    assert cli.run_command("fake", _command(calls), []) == 0
    assert calls == [("config", "smoke", "cpu"), ("measure", "smoke", "cpu"),
                     ("config", "cpu", "cpu"), ("measure", "cpu", "cpu")]
    assert capsys.readouterr().out == "header smoke on cpu\nx = 2\nheader cpu on cpu\nx = 2\n"


def test_record_goes_through_the_run_store(monkeypatch, capsys):
    calls, stored = [], []
    monkeypatch.setattr(registry, "record_run",
                        lambda name, cfg, device: stored.append((name, cfg, device)) or {"metrics": {"x": 7}})
    assert cli.run_command("fake", _command(calls), ["--quick", "--record"]) == 0
    assert stored == [("fake", {"profile": "smoke", "size": 1}, "cpu")]
    assert ("measure", "smoke", "cpu") not in calls and capsys.readouterr().out.endswith("x = 7\n")


def test_own_options_and_bad_input_exit_2_with_one_line(capsys):
    def options(parser):
        parser.add_argument("--size", type=int, default=1)

    calls = []
    assert cli.run_command("fake", _command(calls, options=options), ["--size", "3"]) == 0
    assert capsys.readouterr().out.endswith("x = 6\n")
    assert cli.run_command("fake", _command(calls, options=options), ["--size", "0"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == "error: size must be at least 1, got 0\n"


def test_options_offered_follow_the_command():
    def opts(command):
        return {a.dest for a in cli.build_parser("fake", command)._actions} - {"help"}

    assert opts(_command([])) == {"quick", "record"}  # one device: no --device
    assert opts(_command([], devices=("auto", "cpu", "cuda"), threads=True)) == {"quick", "device", "record", "threads"}
    assert opts(_command([], record=False, profile_device={"full": "cuda", "smoke": "cpu"})) == {"profile"}


def test_profile_option_chooses_profile_and_device(capsys):
    calls = []
    command = _command(calls, profile_device={"full": "cuda", "cpu": "cpu", "smoke": "cpu"})
    assert cli.run_command("fake", command, ["--profile", "smoke"]) == 0
    assert calls[0] == ("config", "smoke", "cpu")
    calls.clear()
    assert cli.run_command("fake", command, []) == 0  # the default is the first profile, on its device
    assert calls[0] == ("config", "full", "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available")
def test_cuda_asked_for_without_a_gpu_is_one_line(capsys):
    calls = []
    assert cli.run_command("fake", _command(calls, devices=("cpu", "cuda")), ["--device", "cuda"]) == 2
    assert capsys.readouterr().err == "error: --device cuda but no CUDA GPU is available here\n" and calls == []
    assert cli.run_command("fake", _command(calls, devices=("auto", "cpu", "cuda")), ["--quick"]) == 0
    assert calls[0] == ("config", "smoke", "cpu")  # auto: the CPU here


def test_threads_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        seen = []
        command = cli.BenchmarkCommand(make_config=lambda p, d, a: {}, measure=lambda c, d: {},
                                       table=lambda r, c: seen.append(torch.get_num_threads()) or "", threads=True)
        assert cli.run_command("fake", command, ["--quick", "--threads", "1"]) == 0 and seen == [1]
    finally:
        torch.set_num_threads(before)


def test_unknown_benchmark_names_the_module():
    with pytest.raises(ValueError, match="no benchmark module factorlab.experiments.nope"):
        cli.command_of("nope")
    with pytest.raises(ValueError, match="factorlab.experiments.registry has no COMMAND"):
        cli.command_of("registry")
