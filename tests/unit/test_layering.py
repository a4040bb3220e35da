"""The layering check (factorlab.devtools.layering): factorlab itself passes, and the checker
catches cycles, upward and sideways imports, lazy ones included, on a small fake package."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from factorlab.devtools.layering import LAYERS, check, discover, main, module_imports

FACTORLAB = Path(__file__).resolve().parents[2] / "lib" / "factorlab"
FAKE_LAYERS = (("low",), ("mid", "side"), ("high",))


def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "fake"
    for name, text in {"__init__.py": "", **files}.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pkg


def test_factorlab_has_no_cycles_and_no_imports_against_the_layer_order():
    problems = check(FACTORLAB)
    assert problems == [], "\n".join(problems)


def test_every_top_level_module_of_factorlab_is_placed_once():
    placed = [name for tier in LAYERS for name in tier]
    assert len(placed) == len(set(placed))
    top = {m.split(".")[1] for m in discover(FACTORLAB) if "." in m}
    assert top <= set(placed), sorted(top - set(placed))


def test_the_command_exits_0_on_factorlab():
    out = subprocess.run([sys.executable, "-m", "factorlab.devtools.layering"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("no problems")


def test_checker_catches_a_lazy_upward_import_and_the_cycle_it_closes(tmp_path):
    pkg = _package(tmp_path, {
        "low.py": "def f():\n    from fake.high import g  # lazy, still a dependency\n    return g\n",
        "high.py": "from fake import low\n\ndef g():\n    return low.f\n",
        "mid/__init__.py": "from .core import h\n",
        "mid/core.py": "import fake.low\n\ndef h():\n    return 1\n",
        "side.py": "from fake.mid import h\n",
    })
    problems = check(pkg, layers=FAKE_LAYERS)
    assert problems == [
        "fake/low.py:2: upward import: fake.low (tier 0, low) imports fake.high (tier 2, high)",
        "fake/side.py:1: sideways import: fake.side imports fake.mid, both on tier 1 (side, mid: siblings never "
        "import each other)",
        "import cycle: fake.high -> fake.low -> fake.high (fake/high.py:1, fake/low.py:2)",
        "package cycle: high -> low -> high (fake.high -> fake.low at fake/high.py:1; fake.low -> fake.high at "
        "fake/low.py:2)",
    ]


def test_checker_catches_a_cycle_between_modules_of_one_package(tmp_path):
    pkg = _package(tmp_path, {
        "low/__init__.py": "from fake.low.a import x\n",
        "low/a.py": "x = 1\n\ndef y():\n    from fake.low import b\n    return b\n",
        "low/b.py": "from . import a\n",
    })
    assert check(pkg, layers=FAKE_LAYERS) == [
        "import cycle: fake.low.a -> fake.low.b -> fake.low.a (fake/low/a.py:4, fake/low/b.py:1)"]


def test_checker_names_unplaced_modules_and_sees_import_module(tmp_path):
    pkg = _package(tmp_path, {
        "low.py": "import importlib\n\ndef f():\n    return importlib.import_module('fake.mid')\n",
        "mid/__init__.py": "",
        "extra.py": "",
    })
    problems = check(pkg, layers=FAKE_LAYERS)
    assert problems[0].startswith("fake.extra: not on any tier of the layer order")
    assert problems[1] == "fake/low.py:4: upward import: fake.low (tier 0, low) imports fake.mid (tier 1, mid)"
    assert len(problems) == 2


def test_from_import_of_a_submodule_depends_on_the_submodule(tmp_path):
    pkg = _package(tmp_path, {"mid/__init__.py": "from fake.mid import core\n", "mid/core.py": "",
                              "high.py": "from fake.mid import core, nothing\nfrom . import low\n",
                              "low.py": ""})
    mods = discover(pkg)
    assert sorted(mods) == ["fake", "fake.high", "fake.low", "fake.mid", "fake.mid.core"]
    found = [i.dst for i in module_imports("fake.high", mods["fake.high"], mods)]
    assert found == ["fake.mid", "fake.mid.core", "fake.low"]  # `nothing` is a name in fake.mid


def test_main_prints_the_problems_and_exits_1(tmp_path, capsys):
    pkg = _package(tmp_path, {"low.py": "import fake.high\n", "high.py": ""})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("factorlab.devtools.layering.LAYERS", FAKE_LAYERS)
        assert main(["--root", str(pkg)]) == 1
    out = capsys.readouterr().out
    assert "fake/low.py:1: upward import" in out and out.strip().endswith("1 problem")
    assert main(["--root", str(tmp_path)]) == 2
