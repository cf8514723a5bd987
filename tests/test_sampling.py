import numpy as np
import scipy.sparse as sp

from deepmine.sampling import FreeItemSampler, evaluation_negatives, training_triplets


def owned_matrix(pairs, n_users, n_items):
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_users, n_items))


def test_negatives_avoid_owned_items_of_heavy_user():
    n_items = 50
    owned_items = [i for i in range(n_items) if i not in (3, 17, 18, 49)]
    train = np.array([(0, i) for i in owned_items] + [(1, 5)], dtype=np.int64)
    triplets, report = training_triplets(train, n_users=2, n_items=n_items, epochs=200, negatives=5, seed=7)
    heavy = triplets[triplets[..., 0] == 0]
    assert set(np.unique(heavy[:, 2])) == {3, 17, 18, 49}
    counts = np.bincount(heavy[:, 2], minlength=n_items)[[3, 17, 18, 49]]
    expected = len(heavy) / 4
    # Each count is binomial (n = 46,000 draws, p = 1/4): sd = sqrt(n p (1 - p)) ~ 93.
    sd = np.sqrt(len(heavy) * 0.25 * 0.75)
    assert np.all(np.abs(counts - expected) < 4 * sd)
    assert report["triplets_per_epoch"] == len(train) * 5


def test_negatives_never_owned_and_positives_kept():
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    pairs = np.unique(np.stack([rng.integers(0, n_users, 400), rng.integers(0, n_items, 400)], 1), axis=0)
    triplets, _ = training_triplets(pairs, n_users, n_items, epochs=3, negatives=2, seed=1)
    owned = {tuple(p) for p in pairs.tolist()}
    for epoch in triplets:
        assert all((u, n) not in owned for u, _, n in epoch.tolist())
        positives = sorted(map(tuple, epoch[:, :2].tolist()))
        assert positives == sorted(map(tuple, np.repeat(pairs, 2, axis=0).tolist()))


def test_triplets_are_deterministic_and_epochs_differ():
    pairs = np.array([(u, i) for u in range(20) for i in range(u % 5, 30, 7)], dtype=np.int64)
    first, _ = training_triplets(pairs, 20, 30, epochs=2, negatives=1, seed=5)
    second, _ = training_triplets(pairs, 20, 30, epochs=2, negatives=1, seed=5)
    other, _ = training_triplets(pairs, 20, 30, epochs=2, negatives=1, seed=6)
    assert np.array_equal(first, second)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first, other)
    assert first.dtype == np.int32


def test_user_owning_every_item_is_left_out():
    train = np.array([(0, 0), (0, 1), (1, 0)], dtype=np.int64)
    triplets, report = training_triplets(train, 2, 2, epochs=1, negatives=1, seed=0)
    assert triplets.tolist() == [[[1, 0, 1]]]
    assert report["interactions_without_negative"] == 2


def test_free_item_mapping_enumerates_complement():
    sampler = FreeItemSampler(owned_matrix([(0, 0), (0, 2), (0, 3), (0, 7), (1, 9)], 2, 10))
    assert sampler.free_item(0, np.arange(6)).tolist() == [1, 4, 5, 6, 8, 9]
    assert sampler.free_item(1, np.arange(9)).tolist() == list(range(9))


def test_evaluation_negatives_distinct_outside_all_items_and_padded():
    owned = owned_matrix([(0, 0), (0, 1), (1, 2)] + [(2, i) for i in range(8)], 3, 10)
    negatives = evaluation_negatives(owned, np.array([0, 1, 2]), count=5, seed=3)
    assert negatives.shape == (3, 5)
    for user, row in enumerate(negatives):
        drawn = row[row >= 0]
        assert len(set(drawn.tolist())) == len(drawn)
        assert not set(drawn.tolist()) & set(owned[user].indices.tolist())
    assert sorted(negatives[2].tolist()) == [-1, -1, -1, 8, 9]
    assert np.array_equal(negatives, evaluation_negatives(owned, np.array([0, 1, 2]), count=5, seed=3))
