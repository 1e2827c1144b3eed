"""roisynth.subtyping: label alignment across fold models and their consensus."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from roisynth.subtyping import alignment, consensus, fold_subsets


def _noisy_probas(truth, k, rng, flip=0.1):
    proba = 0.7 * np.eye(k)[truth] + 0.3 * rng.random((len(truth), k)) / k
    flipped = rng.random(len(truth)) < flip
    proba[flipped] = rng.random((flipped.sum(), k))
    return proba / proba.sum(1, keepdims=True)


def test_alignment_undoes_a_relabelling():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 500)
    proba = _noisy_probas(truth, 4, rng)
    permutation = rng.permutation(4)
    order = alignment(truth, proba[:, permutation])
    np.testing.assert_array_equal(proba[:, permutation][:, order], proba)


def test_consensus_recovers_the_truth_from_relabelled_noisy_folds():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 400)
    folds = [_noisy_probas(truth, 3, rng)[:, rng.permutation(3)] for _ in range(7)]
    result = consensus(folds)
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    np.testing.assert_allclose(result.proba.sum(1), 1)
    # each fold disagrees with the truth on ~7 % of rows, so pairs of folds agree less than 1
    assert 0.6 < result.mean_ari < 0.95
    assert result.pairwise_ari.shape == (7, 7) and np.allclose(np.diag(result.pairwise_ari), 1)
    for fold, order, labels in zip(folds, result.orders, result.fold_labels):
        np.testing.assert_array_equal(fold[:, order].argmax(1), labels)


def test_one_fold_has_no_agreement_to_report():
    result = consensus([np.eye(2)[[0, 1, 1, 0]]])
    assert np.isnan(result.mean_ari) and list(result.labels) == [0, 1, 1, 0]


def test_fold_subsets():
    subsets = fold_subsets(100, 5, 0.8, np.random.default_rng(0))
    assert len(subsets) == 5 and all(len(s) == 80 and len(set(s)) == 80 for s in subsets)
    assert not all(np.array_equal(subsets[0], s) for s in subsets[1:])
    with pytest.raises(ValueError, match="fraction"):
        fold_subsets(100, 5, 1.5, np.random.default_rng(0))
