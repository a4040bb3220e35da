"""The QM9 multitask benchmark's published table (factorlab.literature): the figures the issue
names, each with its citation in book/references.bib and where it was verified."""
from __future__ import annotations

import re
from pathlib import Path

from factorlab import literature as lit
from factorlab.experiments.qm9_common import NASH11

BIB = Path(__file__).resolve().parents[2] / "book" / "references.bib"


def test_published_delta_m_are_the_papers_figures():
    got = {r["method"]: r["delta_m_pct"] for r in lit.QM9_MTL_PUBLISHED}
    assert got == {"equal weighting (LS)": 177.6, "MGDA": 120.5, "PCGrad": 125.7, "CAGrad": 112.8,
                   "uncertainty weighting (UW)": 108.0, "IMTL-G": 77.2, "Nash-MTL": 62.0, "FAMO": 58.5,
                   "FairGrad": 57.9, "GO4Align": 52.7}
    assert lit.QM9_MTL_RETUNED["NTKMTL-SR"] == 30.7
    assert all(v > 0 for v in got.values())  # every single-network method worse than single-task


def test_every_figure_names_its_source_and_verification():
    keys = set(re.findall(r"^@\w+\{([^,]+),", BIB.read_text(), flags=re.M))
    for row in lit.QM9_MTL_PUBLISHED + lit.TASK_AFFINITY_CLAIMS:
        assert row["cite"] in keys, row
        assert isinstance(row["verified"], bool) and row["how"]
    assert all(r["verified"] and r["where"] for r in lit.QM9_MTL_PUBLISHED)
    assert list(lit.NAVON2022_QM9_STL_MAE) == NASH11
