"""The published CIFAR-10 numbers are well-formed citations: every key is in the bibliography."""
import re
from pathlib import Path

from factorlab.experiments import cifar_common as cc
from factorlab.literature import CIFAR_PUBLISHED

BIB = Path(__file__).resolve().parents[2] / "book" / "references.bib"


def test_cifar_published_entries_cite_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), flags=re.M))
    assert {e["net"] for e in CIFAR_PUBLISHED} == {"airbench", "resnet9"}
    for e in CIFAR_PUBLISHED:
        assert e["cite"] in keys, e["cite"]
        assert 90 < e["test_acc_pct"] < 100 and e["time_s"] > 0 and e["hardware"] and e["where"]


def test_cifar_published_epochs_are_our_full_recipes():
    ours = {"airbench": cc.airbench_recipe()["epochs"], "resnet9": cc.resnet9_recipe()["epochs"]}
    assert all(e["epochs"] == ours[e["net"]] for e in CIFAR_PUBLISHED)
