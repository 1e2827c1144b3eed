"""Uncertainty and reference levels for any two-sample metric: bootstrap CIs and noise floors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from ..utils.validation import check_choice, check_count, seed_from
from ._common import check_tables
from .wasserstein import _bures, _factor, gaussian_w2

_CHUNK = 50  # replicates per task: fixed, so the random streams do not depend on n_jobs


@dataclass(frozen=True)
class BootstrapResult:
    """``estimate`` (the metric on the full data), the interval [``low``, ``high``] at level
    ``ci`` by ``method``, and the ``replicates`` it was read from."""

    estimate: float
    low: float
    high: float
    ci: float
    replicates: np.ndarray = field(repr=False)
    method: str = "percentile"


def _rows(table):
    """``table`` as a DataFrame, Series or array (rows taken by position), with at least 2 rows."""
    table = table if isinstance(table, (pd.DataFrame, pd.Series)) else np.asarray(table)
    if table.ndim == 0 or len(table) < 2:
        raise ValueError(f"expected a table with at least 2 rows, got shape {np.shape(table)}")
    return table


def _take(table, rows: np.ndarray):
    return table.iloc[rows] if isinstance(table, (pd.DataFrame, pd.Series)) else table[rows]


def _scalar(value) -> float:
    if np.ndim(value) != 0:
        raise TypeError(f"the metric must return a single number, got shape {np.shape(value)}")
    return float(value)


def _draws(seed_sequence, size: int, na: int, nb: int):
    """``size`` pairs of row indices, drawn with replacement from each table."""
    rng = np.random.default_rng(seed_sequence)
    for _ in range(size):
        yield rng.integers(0, na, na), rng.integers(0, nb, nb)


def _metric_chunk(metric, a, b, seed_sequence, size: int) -> np.ndarray:
    return np.array([_scalar(metric(_take(a, ia), _take(b, ib))) for ia, ib in _draws(seed_sequence, size, len(a), len(b))])


def _resampled_moments(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``x[rows]`` and Y with Yᵀ Y = its unbiased covariance, from the counts
    c_i of each row: mean = Σ c_i x_i / n, Y_i = √(c_i / (n − 1)) (x_i − mean)."""
    counts = np.bincount(rows, minlength=len(x))
    kept = counts > 0
    x, counts = x[kept], counts[kept]
    mean = counts @ x / len(rows)
    return mean, (x - mean) * np.sqrt(counts / (len(rows) - 1))[:, None]


def _gaussian_w2_chunk(xa: np.ndarray, xb: np.ndarray, seed_sequence, size: int) -> np.ndarray:
    """:func:`gaussian_w2` of resampled tables without forming them: with A = Y_aᵀ Y_a = F Fᵀ
    (Cholesky), the cross term Fᵀ B F = (Y_b F)ᵀ (Y_b F) and tr B = ‖Y_b‖²_F."""
    out = np.empty(size)
    for r, (ia, ib) in enumerate(_draws(seed_sequence, size, len(xa), len(xb))):
        (ma, ya), (mb, yb) = _resampled_moments(xa, ia), _resampled_moments(xb, ib)
        factor = _factor(ya.T @ ya)
        projected = yb @ factor
        out[r] = _bures(ma, (ya**2).sum(), factor, mb, (yb**2).sum(), projected.T @ projected)
    return out


def bootstrap(metric, a, b, n: int = 1000, ci: float = 0.95, random_state=None, n_jobs: int = 1,
              method: str = "percentile") -> BootstrapResult:
    r"""Bootstrap confidence interval of ``metric(a, b)``.

    Each of the ``n`` replicates resamples the rows of ``a`` and of ``b`` independently, with
    replacement and at their own sizes, and evaluates ``metric`` (any function of two tables
    returning one number; it gets the same type as given: DataFrame, Series or array);
    ``estimate`` θ̂ is the metric on the full data. With q_α the α-quantile of the replicates:

    - ``"percentile"``: [q_{(1−ci)/2}, q_{(1+ci)/2}];
    - ``"basic"`` (reverse percentile): [2θ̂ − q_{(1+ci)/2}, 2θ̂ − q_{(1−ci)/2}], clipped at 0
      from below for metrics ≥ 0: an interval for the population value θ;
    - ``"centered"``: [θ̂ − (q_{(1+ci)/2} − m*), θ̂ + (m* − q_{(1−ci)/2})], m* the replicates'
      mean: an interval for E[θ̂] at these sample sizes, i.e. how much the number itself
      varies over fresh samples of the same sizes.

    Distances (W2, MMD, ...) are biased upwards by sample size, and resampling with
    replacement adds duplicate rows, so the replicates sit above θ̂ and a percentile interval
    can miss θ̂ altogether. In many dimensions the bias dominates (139 ROIs: the W2 between
    two real samples of 1000 is ≈ 2.5 SD), so the basic interval for θ lies far below θ̂.
    To compare generators evaluated at equal sample sizes, and against a
    :func:`noise_floor` at those sizes, use ``"centered"``.

    Replicates run in fixed chunks of 50, each with its own stream spawned from
    ``random_state``, so the result is identical for any ``n_jobs``. Parallel chunks run in
    joblib's default process workers, each importing roisynth once (seconds); for NumPy-heavy
    metrics ``with joblib.parallel_config(backend="threading"):`` avoids that start-up.
    ``metric=gaussian_w2`` takes a fast path (weighted covariances and a Cholesky-based trace
    term instead of resampled tables and matrix square roots) giving the same replicates.
    """
    from joblib import Parallel, delayed

    if not callable(metric):
        raise TypeError(f"metric must be a function of two tables, got {type(metric).__name__}")
    n = check_count(n)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    check_choice(method, "method", ("percentile", "basic", "centered"))
    if metric is gaussian_w2:
        (xa, xb), _ = check_tables(a=a, b=b)
        chunk = partial(_gaussian_w2_chunk, xa, xb)
    else:
        a, b = _rows(a), _rows(b)
        chunk = partial(_metric_chunk, metric, a, b)
    estimate = _scalar(metric(a, b))
    sizes = [_CHUNK] * (n // _CHUNK) + ([n % _CHUNK] if n % _CHUNK else [])
    streams = np.random.SeedSequence(seed_from(random_state)).spawn(len(sizes))
    replicates = np.concatenate(Parallel(n_jobs=n_jobs)(delayed(chunk)(s, k) for s, k in zip(streams, sizes)))
    if not np.isfinite(replicates).all():
        raise ValueError(f"the metric returned NaN or infinite values in {(~np.isfinite(replicates)).sum()} replicates")
    low, high = np.quantile(replicates, [(1 - ci) / 2, (1 + ci) / 2])
    if method == "basic":
        floor = 0.0 if (replicates >= 0).all() and estimate >= 0 else -np.inf
        low, high = max(2 * estimate - high, floor), 2 * estimate - low
    elif method == "centered":
        centre = replicates.mean()
        low, high = estimate - (centre - low), estimate + (high - centre)
    return BootstrapResult(estimate, float(low), float(high), ci, replicates, method)


def noise_floor(metric, real_train, real_test, n: int | None = None, random_state=None) -> float:
    r"""The value ``metric`` takes between two *real* samples at the sizes being compared:

    .. math:: \mathrm{floor} = \mathrm{metric}(T_n, \text{real\_test}),

    where T_n is ``n`` rows of ``real_train`` drawn without replacement (all of it when
    ``n`` is None). Pass ``n`` = the number of synthetic rows scored by
    ``metric(synthetic, real_test)``: a perfect synthesizer, whose rows are fresh draws from
    the real distribution, scores the floor on average, so a fidelity number reads as the
    ratio metric(synthetic, real_test) / floor (1 = as good as real data).
    """
    real_train = _rows(real_train)
    if n is not None:
        n = check_count(n)
        if n > len(real_train):
            raise ValueError(f"n={n} exceeds the {len(real_train)} rows of real_train")
        rows = np.sort(np.random.default_rng(seed_from(random_state)).choice(len(real_train), n, replace=False))
        real_train = _take(real_train, rows)
    return _scalar(metric(real_train, real_test))
