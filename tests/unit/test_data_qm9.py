"""QM9 data layer: sources, validation, the 19 targets, RDKit graphs on XYZ atoms, the cache,
the split, and on-device batching. Everything runs on the committed 300-molecule fixture except
the tests marked ``needs_mirror``, which only *read* the full file (no featurization)."""
from __future__ import annotations

import lzma
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from factorlab.data import DataError
from factorlab.data.qm9 import source as qm9_source
from factorlab.data.qm9 import (ATOMREF_HARTREE, HARTREE_TO_EV, QM9_FIXTURE, TARGETS, QM9Loader,
                                find_qm9_source, load_qm9, load_qm9_arrays, pyg_node_features,
                                qm9_split, qm9_targets, read_qm9_table, target_index)

REPO = Path(__file__).resolve().parents[2]


def _real_mirror() -> Path | None:
    """The dataset mirror: FACTORLAB_DATA_MIRROR if set, else ../shared/datasets beside the repo."""
    for cand in [*os.environ.get("FACTORLAB_DATA_MIRROR", "").split(os.pathsep), str(REPO.parent / "shared" / "datasets")]:
        if cand and (Path(cand) / "qm9" / "qm9.csv.xz").exists():
            return Path(cand).resolve()
    return None


MIRROR = _real_mirror()
needs_mirror = pytest.mark.skipif(MIRROR is None, reason="no QM9 mirror on this machine (set FACTORLAB_DATA_MIRROR "
                                                         "to a folder holding qm9/qm9.csv.xz)")


@pytest.fixture
def datadir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FACTORLAB_DATA_MIRROR", raising=False)
    monkeypatch.setattr(qm9_source, "_qm9pack_installed", lambda: None)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def data():
    return load_qm9(fixture=True)


@pytest.fixture(scope="module")
def table():
    return read_qm9_table(QM9_FIXTURE, expect_rows=None)


@pytest.fixture(scope="module")
def full_table():
    return read_qm9_table(MIRROR / "qm9" / "qm9.csv.xz")


# ----------------------------------------------------------------------------- targets

def test_targets_list_pyg_order_and_units():
    assert [t.index for t in TARGETS] == list(range(19))
    assert [t.name for t in TARGETS] == ["mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G",
                                         "Cv", "U0_atom", "U_atom", "H_atom", "G_atom", "A", "B", "C"]
    assert [t.unit for t in TARGETS][:7] == ["D", "a0^3", "eV", "eV", "eV", "a0^2", "eV"]
    assert TARGETS[11].unit == "cal/(mol K)" and {t.unit for t in TARGETS[16:]} == {"GHz"}
    assert target_index("U0_atom") == 12
    with pytest.raises(KeyError, match="unknown QM9 target"):
        target_index("omega1")


def test_atomrefs_agree_with_pyg_published_ev_values():
    # PyG's qm9.py atomrefs (eV) for U0, U, H, G of H, C, N, O, F (a slightly older Hartree factor)
    pyg = np.array([[-13.61312172, -1029.86312267, -1485.30251237, -2042.61123593, -2713.48485589],
                    [-13.5745904, -1029.82456413, -1485.26398105, -2042.5727046, -2713.44632457],
                    [-13.54887564, -1029.79887659, -1485.2382935, -2042.54701705, -2713.42063702],
                    [-13.90303183, -1030.25891228, -1485.71166277, -2043.01812778, -2713.88796536]]).T
    np.testing.assert_allclose(ATOMREF_HARTREE * HARTREE_TO_EV, pyg, atol=2e-5)


def test_methane_row_maps_to_the_19_targets(data, table):
    y64 = qm9_targets(table)
    assert table["Index"].iloc[0] == 1 and table["SMILES"].iloc[0] == "C"
    h = HARTREE_TO_EV
    want = [0.0, 13.21, -0.3877 * h, 0.1171 * h, 0.5048 * h, 35.3641, 0.044749 * h, -40.47893 * h, -40.476062 * h,
            -40.475117 * h, -40.498597 * h, 6.469,
            (-40.47893 - (-37.846772 + 4 * -0.500273)) * h, (-40.476062 - (-37.845355 + 4 * -0.498857)) * h,
            (-40.475117 - (-37.844411 + 4 * -0.497912)) * h, (-40.498597 - (-37.861317 + 4 * -0.510927)) * h,
            157.7118, 157.70997, 157.70699]
    np.testing.assert_allclose(y64[0], want, rtol=1e-12, atol=1e-12)
    assert abs(y64[0, 12] - (-17.17)) < 0.01  # methane's U0 atomization energy
    assert data.index[0] == 1 and abs(float(data.y[0, 12]) - (-17.17)) < 0.01
    np.testing.assert_allclose(data.y[0].numpy(), y64[0].astype(np.float32), rtol=0, atol=0)  # float64 then cast


def test_atomization_energies_are_formed_in_float64(data, table):
    y64 = qm9_targets(table)
    # float32 totals (~-11,000 eV) minus references would be off by up to ~1 meV; the stored column is exact
    naive = data.y[:, 7].double() - (torch.from_numpy(y64[:, 7] - y64[:, 12]).float().double())
    assert np.abs(data.y[:, 12].double().numpy() - y64[:, 12]).max() < 1e-5
    assert (naive.numpy() - y64[:, 12]).std() > 1e-5  # the float32 route really is worse


def test_gap_is_lumo_minus_homo_to_csv_precision(data):
    gap, diff = data.y[:, 4].double(), (data.y[:, 3] - data.y[:, 2]).double()
    assert (gap - diff).abs().max() <= 1.0001e-4 * HARTREE_TO_EV + 1e-5  # CSV prints 4 decimals of Hartree


# ----------------------------------------------------------------------------- the full file (read only)

@needs_mirror
def test_full_mirror_file_has_all_molecules_and_methane(full_table):
    assert len(full_table) == 130831 and full_table["Index"].is_monotonic_increasing
    first = full_table.iloc[0]
    assert first["Index"] == 1 and first["SMILES"] == "C" and first["InternalEnergy_0K_au"] == -40.47893
    gap = full_table["HOMO_LUMO_gap_au"] - (full_table["LUMO_au"] - full_table["HOMO_au"])
    assert gap.abs().max() <= 1.0001e-4
    assert set(full_table["N_atoms"].unique()) <= set(range(3, 30))


@needs_mirror
def test_fixture_rows_are_rows_of_the_mirror(table, full_table):
    sub = full_table.set_index("Index").loc[table["Index"]].reset_index()
    pd.testing.assert_frame_equal(sub, table, check_dtype=False)


# ----------------------------------------------------------------------------- graphs

def test_methane_and_small_molecule_graphs(data):
    m = data.molecule(0)  # methane: C first, then four H
    assert m["x"].tolist() == [[1, 6, 0, 3, 4, 0]] + [[0, 1, 0, 0, 0, 0]] * 4
    assert m["edge_index"].tolist() == [[0, 0, 0, 0, 1, 2, 3, 4], [1, 2, 3, 4, 0, 0, 0, 0]]
    acetylene = data.molecule(3)  # Index 4, C#C: the C-C bond is triple both ways
    assert data.smiles[3] == "C#C"
    ei, ea = acetylene["edge_index"], acetylene["edge_attr"]
    cc = (acetylene["x"][ei[0], 0] == 1) & (acetylene["x"][ei[1], 0] == 1)
    assert ea[cc].tolist() == [2, 2] and set(ea[~cc].tolist()) == {0}
    assert acetylene["x"][:, 3].tolist().count(1) == 2  # both carbons sp


def test_bonded_atoms_are_at_bonding_distances_for_every_fixture_molecule(data):
    src, dst = data.edge_index.long()
    mol = torch.arange(data.num_molecules).repeat_interleave(data.edge_ptr.diff())
    gs, gd = src + data.atom_ptr[mol], dst + data.atom_ptr[mol]
    d = (data.pos[gs] - data.pos[gd]).norm(dim=1)
    assert d.min() > 0.9 and d.max() < 1.9
    assert (data.x[gs, 0] == 0).logical_and(data.x[gd, 0] == 0).sum() == 0  # no H-H bonds
    h = data.x[gs, 0] == 0
    assert (d[h] < 1.3).all()  # X-H bonds are short (one stretched C-H of Index 59827 reaches 1.25)


def test_graphs_match_rdkit_molecules_atom_for_atom(data):
    from rdkit import Chem

    assert data.index[data.from_xyz].tolist() == [133857]  # its SMILES is not its relaxed molecule
    for i in range(data.num_molecules):
        if data.from_xyz[i]:
            continue
        mol = Chem.AddHs(Chem.MolFromSmiles(data.smiles[i]))
        m = data.molecule(i)
        deg = torch.bincount(m["edge_index"][0], minlength=m["x"].shape[0])
        ours = sorted(zip(m["x"][:, 1].tolist(), deg.tolist(), m["x"][:, 4].tolist(), m["x"][:, 5].tolist(),
                          m["x"][:, 2].tolist()))
        theirs = sorted((a.GetAtomicNum(), a.GetDegree(), a.GetTotalNumHs(includeNeighbors=True), a.GetFormalCharge(), int(a.GetIsAromatic()))
                        for a in mol.GetAtoms())
        assert ours == theirs, data.smiles[i]
        types = {Chem.BondType.SINGLE: 0, Chem.BondType.DOUBLE: 1, Chem.BondType.TRIPLE: 2, Chem.BondType.AROMATIC: 3}
        assert sorted(m["edge_attr"].tolist()) == sorted(2 * [types[b.GetBondType()] for b in mol.GetBonds()])
    assert (data.x[:, 5] != 0).any() and (data.x[:, 2] == 1).any()  # the fixture has charges and aromatic atoms


def test_graph_from_geometry_when_the_smiles_is_another_molecule(data):
    from rdkit import Chem

    i = int(torch.nonzero(data.index == 133857))
    m = data.molecule(i)
    assert data.smiles[i] == "CC1C2C3C4=CCC13C24"
    smiles_mol = Chem.AddHs(Chem.MolFromSmiles(data.smiles[i]))
    assert m["edge_attr"].shape[0] == 2 * smiles_mol.GetNumBonds()  # same bond count, other graph
    d = (m["pos"][m["edge_index"][0]] - m["pos"][m["edge_index"][1]]).norm(dim=1)
    assert d.max() < 1.6  # every edge is a real bond of the geometry (the SMILES graph needs 2.2 A)
    assert m["edge_attr"].tolist().count(1) == 2 and m["x"][:, 3].tolist().count(2) == 2  # one C=C


def test_pyg_style_float_features(data):
    f = pyg_node_features(data.x[:5])
    assert f.shape == (5, 11) and f.dtype == torch.float32
    assert f[0].tolist() == [0, 1, 0, 0, 0, 6, 0, 0, 0, 1, 4]  # C of methane: sp3, 4 H
    assert f[1].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


# ----------------------------------------------------------------------------- split and statistics

def test_split_is_seeded_disjoint_and_sized():
    full = qm9_split(130831)
    assert [len(full[k]) for k in ("train", "valid", "test")] == [110000, 10000, 10831]
    assert torch.equal(full["train"][:5], torch.from_numpy(np.random.default_rng(0).permutation(130831)[:5]))
    small = qm9_split(300)
    assert [len(small[k]) for k in ("train", "valid", "test")] == [252, 23, 25]
    assert sorted(torch.cat(list(small.values())).tolist()) == list(range(300))
    assert torch.equal(qm9_split(300)["test"], small["test"]) and not torch.equal(qm9_split(300, seed=1)["test"], small["test"])


def test_standardization_uses_the_training_rows_only(data):
    ytr = data.y[data.split["train"]].double()
    torch.testing.assert_close(data.y_mean, ytr.mean(0).float())
    torch.testing.assert_close(data.y_std, ytr.std(0).float())
    assert not torch.allclose(data.y_mean, data.y.double().mean(0).float())
    z = data.standardize(data.y[data.split["train"]])
    assert z.mean(0).abs().max() < 1e-3 and (z.std(0) - 1).abs().max() < 1e-3
    torch.testing.assert_close(data.unstandardize(z), data.y[data.split["train"]], rtol=1e-6, atol=2e-3)


# ----------------------------------------------------------------------------- batching

def _naive_batch(data, ids):
    """Per-molecule concatenation with offsets: the reference the vectorized batcher must equal."""
    parts = [data.molecule(int(i)) for i in ids]
    offsets = np.cumsum([0] + [p["x"].shape[0] for p in parts])
    return {"x": torch.cat([p["x"] for p in parts]), "pos": torch.cat([p["pos"] for p in parts]),
            "edge_index": torch.cat([p["edge_index"] + int(o) for p, o in zip(parts, offsets)], dim=1),
            "edge_attr": torch.cat([p["edge_attr"] for p in parts]),
            "batch": torch.cat([torch.full((p["x"].shape[0],), k) for k, p in enumerate(parts)]),
            "y": torch.cat([p["y"] for p in parts]), "ptr": torch.from_numpy(offsets)}


def test_vectorized_batch_equals_naive_concatenation(data):
    g = torch.Generator().manual_seed(0)
    for size in (1, 7, 64, 300):
        ids = torch.randperm(data.num_molecules, generator=g)[:size]
        got, want = data.batch(ids)._asdict(), _naive_batch(data, ids)
        for k in want:
            assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]), k
    repeated = torch.tensor([5, 5, 0])  # repeats are allowed (bootstrap)
    assert torch.equal(data.batch(repeated).edge_index, _naive_batch(data, repeated)["edge_index"])


def test_loader_covers_each_molecule_once_per_epoch(data):
    loader = QM9Loader(data, "train", batch_size=50, shuffle=True, seed=3)
    assert len(loader) == 6
    epoch1 = list(loader)
    seen = torch.cat([b.y for b in epoch1])
    assert seen.shape[0] == 252
    assert torch.equal(seen.sort(0).values, data.y[data.split["train"]].sort(0).values)
    assert torch.equal(torch.cat([b.batch.bincount() for b in epoch1]),
                       torch.cat([b.ptr.diff() for b in epoch1]))
    epoch2 = torch.cat([b.y for b in loader])
    assert not torch.equal(seen, epoch2)
    again = torch.cat([b.y for b in QM9Loader(data, "train", batch_size=50, shuffle=True, seed=3)])
    assert torch.equal(again, seen)
    assert len(QM9Loader(data, torch.arange(10), batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="unknown split"):
        QM9Loader(data, "dev")
    with pytest.raises(ValueError, match="positive int"):
        QM9Loader(data, batch_size=0)


# ----------------------------------------------------------------------------- sources, errors, cache

def test_nothing_found_names_the_three_ways(datadir):
    with pytest.raises(DataError) as err:
        find_qm9_source()
    msg = str(err.value)
    assert "FACTORLAB_DATA_MIRROR is unset" in msg and "qm9/qm9.csv.xz" in msg
    assert "pip download --no-deps qm9pack==1.0.3" in msg and "source=" in msg
    with pytest.raises(DataError, match="does not exist"):
        find_qm9_source(datadir / "nope.csv")


def test_source_order_raw_then_mirror(datadir, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "qm9").mkdir(parents=True)
    (mirror / "qm9" / "qm9.csv.xz").write_bytes(b"x")
    monkeypatch.setenv("FACTORLAB_DATA_MIRROR", str(mirror))
    assert find_qm9_source() == mirror / "qm9" / "qm9.csv.xz"
    (datadir / "raw" / "qm9").mkdir(parents=True)
    (datadir / "raw" / "qm9" / "qm9.csv.xz").write_bytes(b"x")
    assert find_qm9_source() == datadir / "raw" / "qm9" / "qm9.csv.xz"


def _write_qm9pack(folder: Path, table: pd.DataFrame) -> None:
    """qm9pack's layout: three part CSVs with extra columns (XYZ_file, Stoichiometry, ...)."""
    extra = table.assign(XYZ_file=[f"dsgdb9nsd_{i:06d}.xyz" for i in table["Index"]], Stoichiometry="[0,0,0,0,0]")
    cols = ["XYZ_file", "Index", "SMILES", "InChi", "N_atoms", "Stoichiometry"] + list(table.columns[4:])
    for k, part in enumerate(np.array_split(np.arange(len(extra)), 3)):
        extra.iloc[part][cols].to_csv(folder / f"qm9_part{k + 1}.csv", index=False)


def test_installed_qm9pack_and_its_wheel_are_read(datadir, tmp_path, monkeypatch, table):
    pkg = tmp_path / "site" / "qm9pack"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    _write_qm9pack(pkg / "data", table)
    monkeypatch.undo()  # restore the real _qm9pack_installed, keep a clean environment below
    monkeypatch.setenv("FACTORLAB_DATA_DIR", str(datadir))
    monkeypatch.delenv("FACTORLAB_DATA_MIRROR", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = find_qm9_source()
    assert found == pkg / "data"
    pd.testing.assert_frame_equal(read_qm9_table(found, expect_rows=None), table)
    wheel = tmp_path / "qm9pack-1.0.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for p in sorted((pkg / "data").iterdir()):
            zf.write(p, f"qm9pack/data/{p.name}")
    pd.testing.assert_frame_equal(read_qm9_table(wheel, expect_rows=None), table)
    with pytest.raises(DataError, match="300 molecules, expected 130831"):
        read_qm9_table(wheel)


def test_malformed_files_give_clear_errors(tmp_path, table):
    text = QM9_FIXTURE.read_text()
    lines = text.splitlines()
    bad = tmp_path / "cols.csv"
    bad.write_text(lines[0].replace("HOMO_au", "HOMO") + "\n" + "\n".join(lines[1:]))
    with pytest.raises(DataError, match=r"missing columns \['HOMO_au'\]"):
        read_qm9_table(bad, expect_rows=None)
    half = tmp_path / "half.csv.xz"
    half.write_bytes(lzma.compress(text.encode())[:20000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_qm9_table(half, expect_rows=None)
    cut = tmp_path / "cut.csv"  # a plain CSV cut mid-row
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match="corrupt"):
        read_qm9_table(cut, expect_rows=None)
    natoms = tmp_path / "natoms.csv"
    natoms.write_text(lines[0] + "\n" + lines[1].replace(",5,", ",6,", 1) + "\n")
    with pytest.raises(DataError, match="N_atoms disagrees"):
        read_qm9_table(natoms, expect_rows=None)
    with pytest.raises(DataError, match="300 molecules, expected 130831"):
        read_qm9_table(QM9_FIXTURE)


def test_cache_is_built_verified_and_rebuilt(datadir, tmp_path, monkeypatch):
    monkeypatch.setattr(qm9_source, "QM9_NUM_MOLECULES", 300)  # treat the fixture as "the full set"
    half = tmp_path / "qm9.csv.xz"
    half.write_bytes(lzma.compress(QM9_FIXTURE.read_bytes())[:30000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_qm9(source=half)
    processed = datadir / "processed"
    assert not processed.exists() or not any(processed.iterdir())  # no broken cache left behind
    a = load_qm9_arrays(source=QM9_FIXTURE)
    cache = processed / "qm9.pt"
    assert cache.exists() and [p.name for p in processed.iterdir()] == ["qm9.pt"]
    assert a["atoms"].dtype == torch.uint8 and a["bonds"].dtype == torch.int8 and a["y"].dtype == torch.float32
    d = load_qm9(source=datadir / "missing.csv")  # the verified cache is used; the source is not read
    assert torch.equal(d.y, a["y"])
    blob = bytearray(cache.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the tensors: detected by the SHA-256
    cache.write_bytes(bytes(blob))
    again = load_qm9_arrays(source=QM9_FIXTURE)
    assert all(torch.equal(again[k], a[k]) for k in a if k != "smiles") and again["smiles"] == a["smiles"]
    cache.write_bytes(b"garbage")
    with pytest.raises(DataError, match="does not exist"):
        load_qm9_arrays(source=datadir / "missing.csv")  # a corrupt cache is not trusted


def test_cache_loads_without_rdkit(datadir, monkeypatch):
    monkeypatch.setattr(qm9_source, "QM9_NUM_MOLECULES", 300)
    load_qm9_arrays(source=QM9_FIXTURE)
    code = ("import sys; sys.modules['rdkit'] = None\n"  # as on the GPU machine: no RDKit
            "from factorlab.data.qm9 import load_qm9\n"
            "d = load_qm9(source='/nonexistent')\n"
            "assert d.num_molecules == 300 and d.batch(d.split['test']).y.shape == (25, 19)\n")
    env = {**os.environ, "FACTORLAB_DATA_DIR": str(datadir)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
