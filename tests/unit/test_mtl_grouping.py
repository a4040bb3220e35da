"""factorlab.mtl.grouping: pair gains, seed agreement, group prediction, exact partitions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from factorlab.mtl import grouping as grp

TASKS = ["a", "b", "c"]


def _pairs():
    return {("a", "b"): {"a": 0.9, "b": 2.2}, ("a", "c"): {"a": 1.1, "c": 2.7},
            ("b", "c"): {"b": 1.5, "c": 3.3}}


def test_pair_gain_matrix_values_and_orientation():
    single = {"a": 1.0, "b": 2.0, "c": 3.0}
    g = grp.pair_gain_matrix(_pairs(), single, TASKS)
    assert g.shape == (3, 3)
    assert np.isnan(np.diag(g)).all()
    # row i helps column j: b helps a by 10 %, a hurts b by 10 %
    assert g[1, 0] == pytest.approx(10.0)
    assert g[0, 1] == pytest.approx(-10.0)
    assert g[2, 0] == pytest.approx(-10.0)
    assert g[0, 2] == pytest.approx(10.0)
    assert g[2, 1] == pytest.approx(25.0)
    assert g[1, 2] == pytest.approx(-10.0)


def test_pair_gain_matrix_errors_name_what_is_missing():
    single = {"a": 1.0, "b": 2.0, "c": 3.0}
    pairs = _pairs()
    del pairs[("a", "c")]
    with pytest.raises(ValueError, match=r"\('a', 'c'\)"):
        grp.pair_gain_matrix(pairs, single, TASKS)
    pairs = _pairs()
    pairs[("b", "c")] = {"b": 1.0}
    with pytest.raises(ValueError, match="lacks the MAE of task 'c'"):
        grp.pair_gain_matrix(pairs, single, TASKS)
    with pytest.raises(ValueError, match="task 'c'"):
        grp.pair_gain_matrix(_pairs(), {"a": 1.0, "b": 2.0}, TASKS)
    with pytest.raises(ValueError, match="positive"):
        grp.pair_gain_matrix(_pairs(), {"a": 1.0, "b": 0.0, "c": 3.0}, TASKS)
    with pytest.raises(ValueError, match="distinct"):
        grp.pair_gain_matrix(_pairs(), single, ["a", "a"])


def _random_gains(t, seed):
    rng = np.random.default_rng(seed)
    g = rng.normal(0, 10, (t, t))
    np.fill_diagonal(g, np.nan)
    return g


def test_seed_agreement_is_spearman_of_off_diagonal_gains():
    g0 = _random_gains(4, 0)
    g1 = 2 * g0 + 5  # same ranks
    g2 = -g0  # reversed ranks
    agree = grp.seed_agreement(np.stack([g0, g1, g2]))
    assert agree.pairs == [(0, 1), (0, 2), (1, 2)]
    assert agree.rhos == pytest.approx([1.0, -1.0, -1.0])
    assert agree.mean == pytest.approx(-1 / 3)
    with pytest.raises(ValueError, match=r"\(S, T, T\)"):
        grp.seed_agreement(g0)
    flat = np.where(np.isnan(g0), np.nan, 1.0)
    assert math.isnan(grp.seed_agreement(np.stack([g0, flat])).rhos[0])
    bad = np.stack([g0, g1])
    bad[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN off the diagonal"):
        grp.seed_agreement(bad)


def test_predicted_gains_mean_and_max_follow_standley():
    g = np.array([[np.nan, 10.0, -4.0], [2.0, np.nan, 6.0], [0.0, -8.0, np.nan]])
    assert grp.predicted_gains(g, [0, 1, 2]).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert grp.predicted_gains(g, [0, 1, 2], "max").tolist() == pytest.approx([2.0, 10.0, 6.0])
    assert grp.predicted_gains(g, [2, 0]).tolist() == pytest.approx([-4.0, 0.0])
    assert grp.predicted_gains(g, [1]).tolist() == [0.0]
    assert grp.group_score(g, [0, 1]) == pytest.approx(12.0)
    assert grp.predicted_mae(g, [0, 1], [1.0, 2.0, 3.0]).tolist() == pytest.approx([0.98, 1.8])
    with pytest.raises(ValueError, match="choose one of mean, max"):
        grp.predicted_gains(g, [0, 1], "median")
    with pytest.raises(ValueError, match="distinct task indices in 0..2"):
        grp.predicted_gains(g, [0, 3])


BELL = [1, 1, 2, 5, 15, 52, 203, 877]


@pytest.mark.parametrize("n", range(8))
def test_all_partitions_counts_bell_numbers(n):
    parts = [grp.canonical(p) for p in grp.all_partitions(n)]
    assert len(parts) == len(set(parts)) == BELL[n]


@pytest.mark.parametrize("how", grp.AGGREGATES)
@pytest.mark.parametrize("t, seed", [(2, 0), (3, 1), (5, 2), (6, 3), (7, 4)])
def test_best_partitions_equal_brute_force(t, seed, how):
    g = _random_gains(t, seed)
    best = grp.best_partitions(g, how)
    assert sorted(best) == list(range(1, t + 1))
    by_k: dict[int, float] = {}
    for p in grp.all_partitions(t):
        s = grp.partition_score(g, p, how)
        by_k[len(p)] = max(by_k.get(len(p), -np.inf), s)
    for k, part in best.items():
        assert part.k == k
        assert part.score == pytest.approx(by_k[k], abs=1e-9)
        assert grp.partition_score(g, part.groups, how) == pytest.approx(part.score, abs=1e-9)
    assert best[t].groups == tuple((i,) for i in range(t)) and best[t].score == 0.0
    assert best[1].groups == (tuple(range(t)),)


def test_best_partitions_finds_planted_blocks_and_names():
    # tasks 0,1,2 help each other, 3,4 help each other, across blocks they hurt
    blocks = [0, 0, 0, 1, 1]
    g = np.array([[5.0 if blocks[i] == blocks[j] else -5.0 for j in range(5)] for i in range(5)])
    np.fill_diagonal(g, np.nan)
    best = grp.best_partitions(g)
    assert best[2].groups == ((0, 1, 2), (3, 4))
    assert best[2].score == pytest.approx(5.0)
    assert best[2].names(list("abcde")) == [["a", "b", "c"], ["d", "e"]]


def test_best_partitions_handles_eleven_tasks_quickly():
    import time

    g = _random_gains(11, 5)
    t0 = time.perf_counter()
    best = grp.best_partitions(g)
    assert time.perf_counter() - t0 < 30
    assert [p.k for p in best.values()] == list(range(1, 12))
    with pytest.raises(ValueError, match="at most 12 tasks"):
        grp.best_partitions(_random_gains(13, 0))


def test_affinity_partitions_score_mean_within_group_affinity():
    a = np.array([[1.0, 0.9, 0.1, 0.0], [0.7, 1.0, 0.2, 0.1], [0.1, 0.2, 1.0, 0.6], [0.0, 0.1, 0.6, 1.0]])
    best = grp.best_affinity_partitions(a)
    assert best[2].groups == ((0, 1), (2, 3))
    assert best[2].score == pytest.approx((0.8 * 2 + 0.6 * 2) / 4)
    # symmetrised: equal to best_partitions on (A + A^T) / 2
    ref = grp.best_partitions((a + a.T) / 2)
    assert {k: p.groups for k, p in best.items()} == {k: p.groups for k, p in ref.items()}


def test_hierarchical_partitions_cut_into_exactly_k():
    a = np.array([[1.0, 0.9, 0.1, 0.0], [0.9, 1.0, 0.2, 0.1], [0.1, 0.2, 1.0, 0.6], [0.0, 0.1, 0.6, 1.0]])
    h = grp.hierarchical_partitions(a)
    assert [p.k for p in h.values()] == [1, 2, 3, 4]
    assert h[2].groups == ((0, 1), (2, 3))
    assert h[3].groups == ((0, 1), (2,), (3,))  # 0-1 merged first (most similar)
    assert h[4].groups == ((0,), (1,), (2,), (3,))


def test_grouping_delta_m_pairs_each_task_with_its_group():
    single = {"a": 1.0, "b": 2.0, "c": 4.0}
    dm = grp.grouping_delta_m({("a", "b"): {"a": 0.9, "b": 2.2}, ("c",): {"c": 4.0}}, single, ["a", "b", "c"])
    assert dm == pytest.approx(100 * (-0.1 + 0.1 + 0.0) / 3)
    with pytest.raises(ValueError, match=r"tasks \['c'\] are in no group"):
        grp.grouping_delta_m({("a", "b"): {"a": 0.9, "b": 2.2}}, single, ["a", "b", "c"])
    with pytest.raises(ValueError, match="more than one group"):
        grp.grouping_delta_m({("a", "b"): {"a": 1, "b": 2}, ("b", "c"): {"b": 2, "c": 4}}, single, ["a", "b", "c"])


def test_hierarchical_partitions_match_scipy_fcluster_without_ties():
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    rng = np.random.default_rng(7)
    m = rng.uniform(-1, 1, (8, 8))
    h = grp.hierarchical_partitions(m)
    s = (m + m.T) / 2
    off = grp.off_diagonal(s)
    d = 1 - (s - off.min()) / (off.max() - off.min())
    np.fill_diagonal(d, 0.0)
    z = linkage(squareform(d, checks=False), method="average")
    for k in range(1, 9):
        labels = fcluster(z, k, criterion="maxclust")
        ref = grp.canonical([np.flatnonzero(labels == c).tolist() for c in np.unique(labels)])
        assert h[k].groups == ref
    assert grp.hierarchical_partitions(np.ones((1, 1)))[1].groups == ((0,),)
