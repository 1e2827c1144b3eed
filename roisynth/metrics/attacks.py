r"""Privacy attacks on synthetic data: singling out, linkability and attribute inference.

The framework is that of anonymeter (Giomi et al., "A Unified Framework for Quantifying Privacy
Risk in Synthetic Data", PETS 2023), the reference a data-access committee recognizes: the three
criteria of factual anonymization of the Article 29 Working Party (opinion 05/2014), each measured
by an attack that uses the synthetic data to guess something about real people.

Every attack is run three times:

- the **main** attack targets the ``train`` rows, the real people the generator learned from;
- the **control** attack targets the ``control`` rows, real people of the same population that
  the generator never saw: what it achieves comes from what the synthetic data teach about the
  population (their utility), not from a leak;
- the **baseline** attack guesses at random, ignoring the synthetic data (a sanity check: the
  main attack should beat it, otherwise the attack, not the data, is the weak point).

With :math:`k` successes in :math:`n` attacks, each success rate is the Wilson score estimate
at confidence level :math:`1 - \alpha` (:math:`z = \Phi^{-1}(1 - \alpha/2)`),

.. math:: \hat r = \frac{k + z^2/2}{n + z^2}, \qquad
          \delta_r = \frac{z}{n + z^2} \sqrt{\frac{k (n - k)}{n} + \frac{z^2}{4}},

and the privacy risk is the main attack's success beyond the control's, relative to what the
control attack leaves to gain,

.. math:: R = \frac{\hat r_{\mathrm{main}} - \hat r_{\mathrm{control}}}{1 - \hat r_{\mathrm{control}}},
          \qquad \delta_R = \sqrt{\frac{\delta_{\mathrm{main}}^2}{(1 - \hat r_{\mathrm{control}})^2}
          + \frac{(1 - \hat r_{\mathrm{main}})^2 \, \delta_{\mathrm{control}}^2}{(1 - \hat r_{\mathrm{control}})^4}},

the error propagated to first order; the reported risk and its interval
:math:`[R - \delta_R, R + \delta_R]` are clipped to [0, 1] (so are the rates' intervals).
R = 0: the synthetic data help the attacker no more on the training people than on strangers;
R = 1: every attack that could succeed on the training people does.

Tables are mixed: numeric columns, and categorical ones (strings, booleans, categories, any
non-numeric dtype). Nearest neighbours (linkability, inference) use the Gower-style distance of
anonymeter: the sum over columns of \|a − b\| / range for numeric columns (the range over the
synthetic rows and the attacked rows together) and of 1[a ≠ b] for categorical ones. Missing
values are refused.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..utils.validation import check_choice, check_count, check_nonnegative, seed_from

MODES = ("univariate", "multivariate")

#: Refusal thresholds of :func:`privacy_flags`, the defaults of a release:
#:
#: - ``exact_rows``, ``exact_quasi_identifiers``: the most synthetic rows allowed to equal a
#:   training row, or a training subject's quasi-identifier tuple (0: a copied record is a
#:   disclosure whatever the statistics say);
#: - ``exact_cell_share``: the largest share of one column's checked cells allowed to be training
#:   values (a few coincidences of rounded measurements are chance, a copied column is not);
#: - ``risk``: the largest lower confidence bound allowed for an attack's risk. anonymeter and
#:   the CNIL's opinion on it leave the threshold to the data controller; 0.1 flags a synthetic
#:   cohort when, with 95 % confidence, more than one in ten of the attacks the control
#:   attack leaves to gain succeeds because of the training data. The lower bound (not the
#:   estimate) keeps small audits from being refused on noise.
PRIVACY_THRESHOLDS = {"exact_rows": 0, "exact_quasi_identifiers": 0, "exact_cell_share": 0.01, "risk": 0.1}

#: Columns of :func:`privacy_audit`.
AUDIT_COLUMNS = ("risk", "risk_low", "risk_high", "main_rate", "control_rate", "baseline_rate", "n_attacks",
                 "copies", "n_checked")

# Query operators of the singling-out attack, by code.
_EQ, _NE, _LT, _GT, _LE, _GE = range(6)
_OPERATORS = (np.equal, np.not_equal, np.less, np.greater, np.less_equal, np.greater_equal)


@dataclass(frozen=True)
class AttackResult:
    """Outcome of one privacy attack (see :mod:`roisynth.metrics.attacks` for the formulas).

    Fields are also readable by name, ``result["risk"]``; :meth:`as_dict` gives them all.

    Parameters
    ----------
    risk, risk_low, risk_high : float
        The residual risk R and its confidence interval, in [0, 1].
    main_rate, main_low, main_high : float
        Success rate of the attack on the training rows, and its Wilson interval.
    control_rate, control_low, control_high : float
        Success rate of the same attack on the control rows, and its Wilson interval.
    baseline_rate : float
        Success rate of the random-guess attack.
    n_attacks : int
        Attacks of each kind (the denominator of the rates).

    Examples
    --------
    >>> from roisynth.metrics.attacks import attack_result
    >>> result = attack_result(500, n_main=400, n_control=100, n_baseline=5)
    >>> type(result).__name__, round(result["main_rate"], 3)
    ('AttackResult', 0.798)
    """

    risk: float
    risk_low: float
    risk_high: float
    main_rate: float
    main_low: float
    main_high: float
    control_rate: float
    control_low: float
    control_high: float
    baseline_rate: float
    n_attacks: int

    def as_dict(self) -> dict:
        """The fields as a dict, in declaration order.

        Returns
        -------
        dict
            Field name -> value.

        Examples
        --------
        >>> from roisynth.metrics.attacks import attack_result
        >>> list(attack_result(100, n_main=50, n_control=10, n_baseline=1).as_dict())[:3]
        ['risk', 'risk_low', 'risk_high']
        """
        return asdict(self)

    def __getitem__(self, name: str):
        return getattr(self, name)


def _wilson(successes: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score centre and half-width of a rate."""
    denominator = n + z * z
    centre = (successes + z * z / 2) / denominator
    spread = z / denominator * math.sqrt(successes * (n - successes) / n + z * z / 4)
    return centre, spread


def _clip(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def attack_result(n_attacks: int, n_main: float, n_control: float, n_baseline: float,
                  confidence_level: float = 0.95) -> AttackResult:
    r"""Rates, risk and intervals from the success counts of the three attacks.

    Parameters
    ----------
    n_attacks : int
        Attacks of each kind.
    n_main, n_control, n_baseline : float
        Successes of the main, control and baseline attacks (the control count of the
        singling-out attack may be fractional after its size correction).
    confidence_level : float, default=0.95
        Coverage of the intervals.

    Returns
    -------
    AttackResult
        See the module docstring for the formulas.

    Examples
    --------
    >>> from roisynth.metrics.attacks import attack_result
    >>> result = attack_result(500, n_main=400, n_control=100, n_baseline=5)
    >>> round(result.risk, 2), round(result.risk_low, 2), round(result.risk_high, 2)
    (0.75, 0.7, 0.79)
    """
    n_attacks = check_count(n_attacks, "n_attacks")
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    for name, k in (("n_main", n_main), ("n_control", n_control), ("n_baseline", n_baseline)):
        if not 0 <= k <= n_attacks:
            raise ValueError(f"{name} must be between 0 and n_attacks={n_attacks}, got {k!r}")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence_level / 2))
    main, d_main = _wilson(n_main, n_attacks, z)
    control, d_control = _wilson(n_control, n_attacks, z)
    baseline, _ = _wilson(n_baseline, n_attacks, z)
    risk = (main - control) / (1 - control)
    d_risk = math.hypot(d_main / (1 - control), (1 - main) * d_control / (1 - control) ** 2)
    return AttackResult(
        risk=_clip(risk), risk_low=_clip(risk - d_risk), risk_high=_clip(risk + d_risk),
        main_rate=main, main_low=_clip(main - d_main), main_high=_clip(main + d_main),
        control_rate=control, control_low=_clip(control - d_control), control_high=_clip(control + d_control),
        baseline_rate=baseline, n_attacks=n_attacks,
    )


# --- tables ------------------------------------------------------------------------------------


class _Tables:
    """The synthetic, train and control tables encoded as float arrays on the same columns.

    Numeric columns keep their values; categorical columns become integer codes shared by the
    three tables. ``numeric[j]`` tells which is which (decided on ``train``).
    """

    def __init__(self, synthetic, train, control):
        frames = {"synthetic": synthetic, "train": train, "control": control}
        for name, table in frames.items():
            if isinstance(table, pd.Series) or not isinstance(table, (pd.DataFrame, np.ndarray, list, tuple)):
                raise TypeError(f"{name} must be a pandas DataFrame or a 2-D NumPy array, got {type(table).__name__}")
        frames = {name: self._frame(name, t, frames["train"]) for name, t in frames.items()}
        self.columns = list(frames["train"].columns)
        for name, frame in frames.items():
            missing = [c for c in self.columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in self.columns]
            if missing or extra:
                raise ValueError(f"{name} columns differ from train: missing {missing}, extra {extra}")
            if len(frame) < 2:
                raise ValueError(f"{name} needs at least 2 rows, got {len(frame)}")
            missing_values = frame.columns[frame.isna().any().to_numpy()]
            if len(missing_values):
                raise ValueError(f"{name} column {missing_values[0]!r} has missing values; the attacks need complete "
                                 "tables (drop or impute those rows first)")
        self.numeric = np.array([pd.api.types.is_numeric_dtype(frames["train"][c])
                                 and not pd.api.types.is_bool_dtype(frames["train"][c]) for c in self.columns])
        arrays = {name: np.empty((len(f), len(self.columns))) for name, f in frames.items()}
        for j, column in enumerate(self.columns):
            if self.numeric[j]:
                for name, frame in frames.items():
                    if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
                        raise TypeError(f"column {column!r} is numeric in train but {frame[column].dtype} in {name}")
                    values = frame[column].to_numpy(float)
                    if not np.isfinite(values).all():
                        raise ValueError(f"{name} column {column!r} has infinite values")
                    arrays[name][:, j] = values
            else:
                codes, _ = pd.factorize(pd.concat([f[column].astype(str) for f in frames.values()]))
                for name, chunk in zip(frames, np.split(codes, np.cumsum([len(f) for f in frames.values()])[:-1])):
                    arrays[name][:, j] = chunk
        self.synthetic, self.train, self.control = arrays["synthetic"], arrays["train"], arrays["control"]

    @staticmethod
    def _frame(name, table, train) -> pd.DataFrame:
        if isinstance(table, pd.DataFrame):
            return table
        arr = np.asarray(table)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (subjects x columns), got shape {arr.shape}")
        columns = train.columns if isinstance(train, pd.DataFrame) else [f"x{i}" for i in range(arr.shape[1])]
        if arr.shape[1] != len(columns):
            raise ValueError(f"{name} has {arr.shape[1]} columns but train has {len(columns)}")
        return pd.DataFrame(arr, columns=columns)

    def indices(self, columns, name: str) -> np.ndarray:
        """Positions of ``columns``; an unknown column is an error naming it and ``name``."""
        if isinstance(columns, str):
            columns = [columns]
        columns = list(columns)
        if not columns:
            raise ValueError(f"{name} is empty; give at least one column")
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise ValueError(f"{name} names columns not in the tables: {unknown}")
        return np.array([self.columns.index(c) for c in columns])


def _n_attacks(n_attacks, train: np.ndarray, control: np.ndarray) -> int:
    """Attacked rows per table: ``n_attacks``, or all the rows the smaller of train and control has."""
    limit = min(len(train), len(control))
    if n_attacks is None:
        return limit
    n_attacks = check_count(n_attacks, "n_attacks")
    if n_attacks > limit:
        raise ValueError(f"n_attacks={n_attacks} exceeds the rows of train ({len(train)}) or control "
                         f"({len(control)}); each attack targets a different real row")
    return n_attacks


def _neighbours(synthetic: np.ndarray, targets: np.ndarray, numeric: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Indices of each target's ``n_neighbors`` nearest synthetic rows in the Gower-style distance.

    Numeric columns are divided by their range over both tables; a categorical column becomes a
    one-hot block scaled by 1/2, whose L1 distance is 1 between different categories and 0
    between equal ones. The L1 (Manhattan) distance over these features is the mixed distance.
    """
    from sklearn.neighbors import NearestNeighbors

    both = np.vstack([synthetic, targets])
    blocks = []
    if numeric.any():
        values = both[:, numeric]
        spread = values.max(0) - values.min(0)
        blocks.append(values / np.where(spread > 0, spread, 1.0))
    for j in np.flatnonzero(~numeric):
        codes = both[:, j].astype(int)
        blocks.append(0.5 * np.eye(codes.max() + 1)[codes])
    features = np.hstack(blocks)
    finder = NearestNeighbors(n_neighbors=n_neighbors, metric="manhattan", algorithm="brute")
    return finder.fit(features[: len(synthetic)]).kneighbors(features[len(synthetic):], return_distance=False)


# --- singling out -------------------------------------------------------------------------------


@dataclass
class _Queries:
    """Conjunctions of ``column <op> value`` predicates, one query per row of the arrays."""

    columns: np.ndarray  # (n_queries, n_terms) int
    operators: np.ndarray  # (n_queries, n_terms) int, codes into _OPERATORS
    values: np.ndarray  # (n_queries, n_terms) float

    def __len__(self) -> int:
        return len(self.columns)

    def take(self, index) -> _Queries:
        return _Queries(self.columns[index], self.operators[index], self.values[index])

    def keys(self) -> list[bytes]:
        return [row.tobytes() for row in np.hstack([self.columns, self.operators, self.values])]


def _match_counts(table: np.ndarray, queries: _Queries, cells: int = 4_000_000) -> np.ndarray:
    """Number of rows of ``table`` each query matches, in batches of about ``cells`` comparisons."""
    n_queries, n_terms = queries.columns.shape
    counts = np.zeros(n_queries, dtype=int)
    step = max(1, cells // max(1, len(table) * n_terms))
    for start in range(0, n_queries, step):
        batch = queries.take(slice(start, start + step))
        x = table[:, batch.columns]  # (rows, queries, terms)
        match = np.zeros(x.shape, dtype=bool)
        for code in np.unique(batch.operators):
            selected = batch.operators == code
            match |= selected & _OPERATORS[code](x, batch.values)
        counts[start:start + step] = match.all(axis=2).sum(axis=0)
    return counts


def _singling_out(table: np.ndarray, candidates: _Queries, n_queries: int, exclude: set | None = None) -> _Queries:
    """The first ``n_queries`` distinct candidates (in their order, leaving out the keys in
    ``exclude``) that match exactly one row of ``table``."""
    seen = set() if exclude is None else set(exclude)
    fresh = []
    for i, key in enumerate(candidates.keys()):
        if key not in seen:
            seen.add(key)
            fresh.append(i)
    candidates = candidates.take(np.array(fresh, dtype=int))
    chosen = []
    step = max(4 * n_queries, 1000)
    for start in range(0, len(candidates), step):
        batch = np.arange(start, min(start + step, len(candidates)))
        chosen.extend(batch[_match_counts(table, candidates.take(batch)) == 1])
        if len(chosen) >= n_queries:
            break
    return candidates.take(np.array(chosen[:n_queries], dtype=int))


def _univariate_queries(synthetic: np.ndarray, numeric: np.ndarray, n_queries: int, rng) -> _Queries:
    """Queries on one rare attribute: ``x <= min``, ``x >= max`` (numeric columns) and ``x == v``
    for every value ``v`` held by a single synthetic row, shuffled; those singling out a
    synthetic row are kept."""
    columns, operators, values = [], [], []
    for j in range(synthetic.shape[1]):
        if numeric[j]:
            columns += [j, j]
            operators += [_LE, _GE]
            values += [synthetic[:, j].min(), synthetic[:, j].max()]
        unique, counts = np.unique(synthetic[:, j], return_counts=True)
        rare = unique[counts == 1]
        columns += [j] * len(rare)
        operators += [_EQ] * len(rare)
        values += rare.tolist()
    order = rng.permutation(len(columns))
    candidates = _Queries(np.array(columns)[order, None], np.array(operators)[order, None],
                          np.array(values, dtype=float)[order, None])
    return _singling_out(synthetic, candidates, n_queries)


def _multivariate_queries(synthetic: np.ndarray, numeric: np.ndarray, n_queries: int, n_cols: int,
                          max_attempts: int, rng) -> _Queries:
    """Queries on ``n_cols`` attributes of a random synthetic row: ``x >= v`` where the row's value
    v is above the column's median, ``x <= v`` otherwise, ``x == v`` for categorical columns;
    drawn until ``n_queries`` distinct ones single out a synthetic row or ``max_attempts`` are
    spent."""
    medians = np.median(synthetic, axis=0)
    found, keys, attempts = [], set(), 0
    while len(keys) < n_queries and attempts < max_attempts:
        size = min(max(2 * n_queries, 1000), max_attempts - attempts)
        attempts += size
        rows = rng.integers(len(synthetic), size=size)
        columns = np.sort(np.argsort(rng.random((size, synthetic.shape[1])), axis=1)[:, :n_cols], axis=1)
        values = synthetic[rows[:, None], columns]
        operators = np.where(numeric[columns], np.where(values > medians[columns], _GE, _LE), _EQ)
        batch = _singling_out(synthetic, _Queries(columns, operators, values), n_queries - len(keys), keys)
        found.append(batch)
        keys.update(batch.keys())
    return _Queries(*(np.vstack([getattr(q, f) for q in found]) for f in ("columns", "operators", "values")))


def _random_queries(synthetic: np.ndarray, numeric: np.ndarray, n_queries: int, n_cols: int, rng) -> _Queries:
    """The baseline attacker's queries: random columns, each with a random value of the synthetic
    column and a random operator (any of the six for numeric columns, == or != otherwise)."""
    columns = np.sort(np.argsort(rng.random((n_queries, synthetic.shape[1])), axis=1)[:, :n_cols], axis=1)
    values = np.empty(columns.shape)
    for j in np.unique(columns):
        where = columns == j
        values[where] = rng.choice(np.unique(synthetic[:, j]), size=int(where.sum()))
    operators = np.where(numeric[columns], rng.integers(6, size=columns.shape), rng.integers(2, size=columns.shape))
    return _Queries(columns, operators, values)


def _singling_out_integral(n, w):
    r"""∫₀ʷ n v (1 − v)^{n−1} dv = (1 − (n w + 1)(1 − w)ⁿ) / (n + 1): the chance that a query
    whose weight is uniform on [0, w] singles out one row among n (Cohen & Nissim, 2020)."""
    return (1 - (n * w + 1) * (1 - w) ** n) / (n + 1)


def _control_size_correction(control: np.ndarray, queries: _Queries, n_train: int, rng) -> float:
    """Factor bringing the control successes to the size of the training table.

    Whether a query singles out depends on the table's size. As anonymeter does, the successes
    on random subsets of the control rows (10 sizes from min(1000, n) to n, 5 draws each) are
    fitted by ``a · _singling_out_integral(size, w)``, starting from w = 1/n, and the factor is
    the fit at ``n_train`` over the fit at the control size n. Under 1000 control rows every
    subset has n rows and the fit stays at its start: queries matching about one control row
    in n. That is conservative when training rows outnumber control rows (the factor is below
    1, the control attack looks weaker); widening the sizes to identify w extrapolated the
    control success upwards instead and hid real risks in our benchmark (see
    benchmarks/RESULTS.md).
    """
    from scipy.optimize import curve_fit

    n = len(control)
    sizes = np.repeat(np.linspace(min(1000, n), n, 10).astype(int), 5)
    successes = np.array([(_match_counts(control[rng.choice(n, size, replace=False)], queries) == 1).sum()
                          for size in sizes])
    if not successes.any():
        return 1.0
    model = lambda size, w, a: a * _singling_out_integral(size, w)  # noqa: E731
    w0 = 1 / sizes.max()
    try:
        (w, a), _ = curve_fit(model, sizes, successes, p0=(w0, 1 / _singling_out_integral(sizes.max(), w0)),
                              bounds=((0, 0), (1, np.inf)), max_nfev=10_000)
    except RuntimeError:
        warnings.warn("the control-size correction of the singling-out attack did not converge; control "
                      "successes are left uncorrected", RuntimeWarning, stacklevel=3)
        return 1.0
    return float(model(n_train, w, a) / model(n, w, a))


def _matched_successes(table: np.ndarray, queries: _Queries, size: int, rng) -> float:
    """Successes of ``queries`` on ``table`` cut at random into ``len(table) // size`` disjoint parts of
    ``size`` rows, averaged over the parts: the success count a table of ``size`` rows would give."""
    parts = len(table) // size
    order = rng.permutation(len(table))[:parts * size].reshape(parts, size)
    return float(np.mean([(_match_counts(table[rows], queries) == 1).sum() for rows in order]))


#: How :func:`singling_out_risk` compares training and control tables of different sizes.
SIZE_CORRECTIONS = ("match", "anonymeter")


def singling_out_risk(synthetic, train, control, *, n_attacks: int = 500, mode: str = "multivariate",
                      n_cols: int = 3, max_attempts: int = 100_000, size_correction: str = "match",
                      confidence_level: float = 0.95, random_state=None) -> AttackResult:
    r"""Singling-out risk: can the synthetic data point at a single real person?

    The attacker writes queries that match exactly one synthetic row, betting that they match
    exactly one real person too (a predicate that isolates one individual, Article 29 WP):

    - ``"univariate"``: one rare attribute, ``x <= min(x)`` or ``x >= max(x)`` for numeric
      columns and ``x == v`` for a value held by a single synthetic row (for continuous
      columns, every value: a copied cell singles its owner out);
    - ``"multivariate"``: ``n_cols`` attributes of a random synthetic row, each ``x >= v`` if the
      row's value is above the column median and ``x <= v`` otherwise (``x == v`` for
      categorical columns), kept when the conjunction matches that row alone.

    A query succeeds on a table when it matches exactly one of its rows. The main attack runs
    the ``n_attacks`` queries on the training rows, the control attack the same queries on the
    control rows, and the baseline random queries (random columns, values and operators) on
    the training rows. Duplicate rows are dropped from every table first. Rates are over
    ``n_attacks`` even when fewer queries single out a synthetic row (a warning says so).

    Whether a query matches exactly one row depends on the table's size, so training and
    control tables of different sizes are not comparable as they are:

    - ``size_correction="match"`` (default) compares equal sizes: the larger table is cut at
      random into disjoint parts the size of the smaller and its successes are averaged over
      the parts. A generator that never saw the training rows then scores risk 0 in
      expectation, whatever the sizes (training and control parts are exchangeable);
    - ``"anonymeter"`` rescales the control successes to the training size by the fitted model
      of :func:`_control_size_correction`, as anonymeter 1.1.0 does. With fewer than 1000
      control rows that model cannot be identified, and on the bundled cohort (2373 training,
      594 control rows) fresh draws from the true simulator — a generator that cannot leak —
      scored multivariate risk 0.21 [0.17, 0.25] this way (anonymeter itself agrees within
      its interval), 0.0 with ``"match"`` (benchmarks/RESULTS.md, "privacy audit").

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        The synthetic rows (the attacker's knowledge).
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the generator was trained on (the targets).
    control : DataFrame or ndarray of shape (n_control, n_columns)
        Real rows of the same population the generator never saw.
    n_attacks : int, default=500
        Queries of each attack.
    mode : {"univariate", "multivariate"}, default="multivariate"
        How the queries are written (see above).
    n_cols : int, default=3
        Attributes per multivariate query (and per random baseline query in that mode).
    max_attempts : int, default=100_000
        Candidate multivariate queries tried before giving up on reaching ``n_attacks``.
    size_correction : {"match", "anonymeter"}, default="match"
        How tables of different sizes are compared (see above).
    confidence_level : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seed of the queries and of the control subsets.

    Returns
    -------
    AttackResult
        Risk, rates and intervals (see :mod:`roisynth.metrics.attacks`).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import singling_out_risk
    >>> rng = np.random.default_rng(0)
    >>> train, control = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    >>> copier = singling_out_risk(train, train, control, mode="univariate", random_state=0)
    >>> copier.risk_low > 0.9  # copied values single out their owners
    True
    >>> fresh = singling_out_risk(rng.normal(size=(300, 4)), train, control, mode="univariate", random_state=0)
    >>> fresh.risk_low
    0.0
    """
    check_choice(mode, "mode", MODES)
    check_choice(size_correction, "size_correction", SIZE_CORRECTIONS)
    n_attacks = check_count(n_attacks, "n_attacks")
    max_attempts = check_count(max_attempts, "max_attempts")
    tables = _Tables(synthetic, train, control)
    n_cols = check_count(n_cols, "n_cols")
    if n_cols > len(tables.columns):
        raise ValueError(f"n_cols={n_cols} exceeds the {len(tables.columns)} columns of the tables")
    rng = np.random.default_rng(seed_from(random_state))
    synth, real, held_out = (np.unique(t, axis=0) for t in (tables.synthetic, tables.train, tables.control))
    if mode == "univariate":
        n_terms = 1
        queries = _univariate_queries(synth, tables.numeric, n_attacks, rng)
    else:
        n_terms = n_cols
        queries = _multivariate_queries(synth, tables.numeric, n_attacks, n_cols, max_attempts, rng)
    if len(queries) < n_attacks:
        warnings.warn(f"singling out ({mode}): only {len(queries)} of n_attacks={n_attacks} queries single out a "
                      "synthetic row; the rates are over n_attacks, so the risk may be underestimated",
                      RuntimeWarning, stacklevel=2)
    if size_correction == "match":
        size = min(len(real), len(held_out))
        n_main, n_control = (_matched_successes(t, queries, size, rng) for t in (real, held_out))
    else:
        n_main = int((_match_counts(real, queries) == 1).sum())
        n_control = float((_match_counts(held_out, queries) == 1).sum())
        if n_control and len(held_out) != len(real):
            n_control = min(n_control * _control_size_correction(held_out, queries, len(real), rng), n_attacks)
    baseline = _random_queries(synth, tables.numeric, n_attacks, n_terms, rng)
    n_baseline = int((_match_counts(real, baseline) == 1).sum())
    return attack_result(n_attacks, n_main, n_control, n_baseline, confidence_level)


# --- linkability --------------------------------------------------------------------------------


def linkability_risk(synthetic, train, control, *, aux_columns, n_neighbors: int = 1, n_attacks=None,
                     confidence_level: float = 0.95, random_state=None) -> AttackResult:
    r"""Linkability risk: can the synthetic data join two partial records of the same person?

    The attacker holds two tables about the same people, one with the columns ``aux_columns[0]``,
    the other with ``aux_columns[1]`` (say, a register with site, age and sex, and an imaging
    table). For a target row, each part's ``n_neighbors`` nearest synthetic rows are found on
    its own columns (Gower-style distance, see :mod:`roisynth.metrics.attacks`); the attack links
    the two parts, and succeeds, when the two neighbour sets share a synthetic row. The main
    attack targets ``n_attacks`` training rows, the control attack ``n_attacks`` control rows,
    the baseline draws ``n_neighbors`` random synthetic rows for each part.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        The synthetic rows (the attacker's knowledge).
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the generator was trained on (the targets).
    control : DataFrame or ndarray of shape (n_control, n_columns)
        Real rows of the same population the generator never saw.
    aux_columns : (list of str, list of str)
        The columns of the attacker's two tables.
    n_neighbors : int, default=1
        Synthetic neighbours of each part (1: the two parts must share their nearest row).
    n_attacks : int or None, default=None
        Target rows of each attack (different rows); None: as many as the smaller of
        ``train`` and ``control`` has.
    confidence_level : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seed of the target and baseline draws.

    Returns
    -------
    AttackResult
        Risk, rates and intervals (see :mod:`roisynth.metrics.attacks`).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.metrics import linkability_risk
    >>> rng = np.random.default_rng(0)
    >>> draw = lambda: pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    >>> train, control = draw(), draw()
    >>> split = (["a", "b"], ["c", "d"])
    >>> linkability_risk(train, train, control, aux_columns=split, random_state=0).risk_low > 0.9
    True
    >>> linkability_risk(draw(), train, control, aux_columns=split, random_state=0).risk_low
    0.0
    """
    tables = _Tables(synthetic, train, control)
    if not isinstance(aux_columns, (tuple, list)) or len(aux_columns) != 2 or isinstance(aux_columns[0], str):
        raise ValueError("aux_columns must be a pair (columns_a, columns_b) of column lists, "
                         f"got {aux_columns!r}")
    parts = [tables.indices(columns, f"aux_columns[{i}]") for i, columns in enumerate(aux_columns)]
    n_neighbors = check_count(n_neighbors, "n_neighbors")
    if n_neighbors > len(tables.synthetic):
        raise ValueError(f"n_neighbors={n_neighbors} exceeds the {len(tables.synthetic)} synthetic rows")
    n_attacks = _n_attacks(n_attacks, tables.train, tables.control)
    rng = np.random.default_rng(seed_from(random_state))

    def links(targets: np.ndarray) -> int:
        a, b = (_neighbours(tables.synthetic[:, p], targets[:, p], tables.numeric[p], n_neighbors) for p in parts)
        return int((a[:, :, None] == b[:, None, :]).any(axis=(1, 2)).sum())

    def targets(table: np.ndarray) -> np.ndarray:
        return table[rng.choice(len(table), n_attacks, replace=False)]

    n_main, n_control = links(targets(tables.train)), links(targets(tables.control))
    guesses = [np.argpartition(rng.random((n_attacks, len(tables.synthetic))), n_neighbors - 1, axis=1)[:, :n_neighbors]
               for _ in parts]
    n_baseline = int((guesses[0][:, :, None] == guesses[1][:, None, :]).any(axis=(1, 2)).sum())
    return attack_result(n_attacks, n_main, n_control, n_baseline, confidence_level)


# --- inference ----------------------------------------------------------------------------------


def inference_risk(synthetic, train, control, *, secret, aux_columns=None, n_attacks=None, regression=None,
                   tolerance: float = 0.05, confidence_level: float = 0.95, random_state=None) -> AttackResult:
    r"""Attribute-inference risk: can the synthetic data reveal a person's secret attribute?

    The attacker knows a target's ``aux_columns`` and guesses its ``secret`` as the secret of
    the nearest synthetic row on those columns (Gower-style distance, see
    :mod:`roisynth.metrics.attacks`). A guess g of a categorical secret s is right when g = s; of
    a numeric secret, when \|g − s\| ≤ ``tolerance`` · \|g\| (anonymeter's relative tolerance;
    it divides by g, not \|g\|, which accepts every guess below 0). The main attack targets
    ``n_attacks`` training rows, the control attack ``n_attacks`` control rows; the baseline
    guesses the secret of a random synthetic row for each training target.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        The synthetic rows (the attacker's knowledge).
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the generator was trained on (the targets).
    control : DataFrame or ndarray of shape (n_control, n_columns)
        Real rows of the same population the generator never saw.
    secret : str
        The column the attacker guesses.
    aux_columns : list of str or None, default=None
        The columns the attacker knows; None: every other column.
    n_attacks : int or None, default=None
        Target rows of each attack; None: as many as the smaller of ``train`` and ``control`` has.
    regression : bool or None, default=None
        Whether the secret is numeric (guessed within ``tolerance``) or categorical (guessed
        exactly); None: numeric columns are.
    tolerance : float, default=0.05
        Relative tolerance of a numeric guess.
    confidence_level : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seed of the target and baseline draws.

    Returns
    -------
    AttackResult
        Risk, rates and intervals (see :mod:`roisynth.metrics.attacks`).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.metrics import inference_risk
    >>> rng = np.random.default_rng(0)
    >>> draw = lambda: pd.DataFrame(rng.normal(10, 1, size=(200, 4)), columns=["a", "b", "c", "d"])
    >>> train, control = draw(), draw()
    >>> inference_risk(train, train, control, secret="d", random_state=0).risk_low > 0.9
    True
    >>> inference_risk(draw(), train, control, secret="d", random_state=0).risk_low
    0.0
    """
    tables = _Tables(synthetic, train, control)
    if not isinstance(secret, str) and not np.isscalar(secret):
        raise ValueError(f"secret must be one column name, got {secret!r}")
    (target,) = tables.indices([secret], "secret")
    if aux_columns is None:
        aux = np.array([j for j in range(len(tables.columns)) if j != target])
        if not len(aux):
            raise ValueError(f"the tables have no column besides the secret {secret!r} to attack with")
    else:
        aux = tables.indices(aux_columns, "aux_columns")
        if target in aux:
            raise ValueError(f"aux_columns contains the secret {secret!r}; the attacker cannot know it")
    regression = bool(tables.numeric[target]) if regression is None else bool(regression)
    if regression and not tables.numeric[target]:
        raise ValueError(f"regression=True needs a numeric secret; column {secret!r} is categorical")
    tolerance = check_nonnegative(tolerance, "tolerance")
    n_attacks = _n_attacks(n_attacks, tables.train, tables.control)
    rng = np.random.default_rng(seed_from(random_state))
    synthetic_secret = tables.synthetic[:, target]

    def correct(guesses: np.ndarray, secrets: np.ndarray) -> int:
        right = np.abs(guesses - secrets) <= tolerance * np.abs(guesses) if regression else guesses == secrets
        return int(right.sum())

    def attack(table: np.ndarray) -> tuple[int, np.ndarray]:
        rows = table[rng.choice(len(table), n_attacks, replace=False)]
        nearest = _neighbours(tables.synthetic[:, aux], rows[:, aux], tables.numeric[aux], 1)[:, 0]
        return correct(synthetic_secret[nearest], rows[:, target]), rows[:, target]

    (n_main, secrets), (n_control, _) = attack(tables.train), attack(tables.control)
    random_guesses = synthetic_secret[rng.choice(len(synthetic_secret), n_attacks,
                                                 replace=n_attacks > len(synthetic_secret))]
    return attack_result(n_attacks, n_main, n_control, correct(random_guesses, secrets), confidence_level)


# --- audit --------------------------------------------------------------------------------------


def _default_secrets(columns: list, quasi_identifiers: list, n: int = 3) -> list:
    """Up to ``n`` columns outside the quasi-identifiers, evenly spaced in column order."""
    pool = [c for c in columns if c not in quasi_identifiers] or list(columns)
    return [pool[i] for i in np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))]


def privacy_audit(synthetic, train, control, *, quasi_identifiers=None, secrets=None, n_attacks: int = 500,
                  size_correction: str = "match", confidence_level: float = 0.95, random_state=None) -> pd.DataFrame:
    r"""The privacy audit of a synthetic table: the three anonymeter attacks and the exact copies.

    Rows (the index, named ``measure``):

    - ``singling_out_univariate``, ``singling_out_multivariate``: :func:`singling_out_risk`
      (``n_attacks`` queries; 3 attributes per multivariate query);
    - ``linkability``: :func:`linkability_risk` between the quasi-identifiers and the other
      columns (the attacker links a register to an imaging table), or, when either side is
      empty, between the columns at even and at odd positions;
    - ``inference_<secret>``: :func:`inference_risk` of each secret column, the attacker
      knowing every other column;
    - ``exact_rows``, ``exact_quasi_identifiers``, ``exact_cells``: :func:`exact_copies`, with
      ``copies`` the count and ``n_checked`` the synthetic rows (cells) checked; ``risk`` is
      copies / n_checked, for cells the largest share of one column's checked cells that are
      copies (NaN rows where there is no quasi-identifier).

    Linkability and inference attack min(``n_attacks``, rows of ``train``, rows of
    ``control``) targets. Columns: ``risk``, ``risk_low``, ``risk_high`` (the attacks' residual
    risk and its interval), ``main_rate``, ``control_rate``, ``baseline_rate``, ``n_attacks``,
    ``copies``, ``n_checked``; NaN where a column does not apply. Identifier columns
    (participant IDs) should be dropped first: they are no attribute of a person.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        The synthetic rows.
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the generator was trained on.
    control : DataFrame or ndarray of shape (n_control, n_columns)
        Real rows of the same population the generator never saw.
    quasi_identifiers : list of str or None, default=None
        Columns a register would hold; None: those named site, age, sex or icv
        (case-insensitive) when present.
    secrets : list of str or None, default=None
        Columns of the inference attacks; None: three columns outside the quasi-identifiers,
        the first, the middle and the last in column order (for an ROI table, three ROIs).
    n_attacks : int, default=500
        Attacks of each kind (see above).
    size_correction : {"match", "anonymeter"}, default="match"
        How the singling-out attacks compare training and control tables of different sizes
        (:func:`singling_out_risk`).
    confidence_level : float, default=0.95
        Coverage of the intervals.
    random_state : int, RandomState or None, default=None
        Seed of every attack.

    Returns
    -------
    DataFrame
        One row per measure, columns as above; :func:`privacy_flags` reads it.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.metrics import privacy_audit, privacy_flags
    >>> rng = np.random.default_rng(0)
    >>> draw = lambda: pd.DataFrame(rng.normal(10, 1, size=(150, 4)), columns=["a", "b", "c", "d"])
    >>> train, control = draw(), draw()
    >>> audit = privacy_audit(draw(), train, control, n_attacks=100, random_state=0)
    >>> audit.index[:4].tolist()
    ['singling_out_univariate', 'singling_out_multivariate', 'linkability', 'inference_a']
    >>> audit.index[-3:].tolist()
    ['exact_rows', 'exact_quasi_identifiers', 'exact_cells']
    >>> privacy_flags(audit)
    []
    >>> privacy_flags(privacy_audit(train, train, control, n_attacks=100, random_state=0))[0]
    'singling_out_univariate: risk 0.98 [0.96, 1.00], lower bound above 0.1'
    """
    from .privacy import default_quasi_identifiers, exact_copies

    tables = _Tables(synthetic, train, control)
    columns = tables.columns
    if len(columns) < 2:
        raise ValueError(f"the audit needs at least 2 columns, the tables have {len(columns)}")
    if quasi_identifiers is None:
        quasi_identifiers = default_quasi_identifiers(columns)
    else:
        quasi_identifiers = list(columns[j] for j in tables.indices(quasi_identifiers, "quasi_identifiers"))
    secrets = _default_secrets(columns, quasi_identifiers) if secrets is None else \
        list(columns[j] for j in tables.indices(secrets, "secrets"))
    others = [c for c in columns if c not in quasi_identifiers]
    split = (quasi_identifiers, others) if quasi_identifiers and others else (columns[::2], columns[1::2])
    n_targets = min(check_count(n_attacks, "n_attacks"), len(tables.train), len(tables.control))
    frames = [pd.DataFrame(t, columns=columns) if not isinstance(t, pd.DataFrame) else t[columns]
              for t in (synthetic, train, control)]
    rng = np.random.default_rng(seed_from(random_state))
    seed = lambda: int(rng.integers(2**31))  # noqa: E731
    common = {"confidence_level": confidence_level}
    attacks = {
        f"singling_out_{mode}": singling_out_risk(*frames, n_attacks=n_attacks, mode=mode, random_state=seed(),
                                                  size_correction=size_correction, **common) for mode in MODES}
    attacks["linkability"] = linkability_risk(*frames, aux_columns=split, n_attacks=n_targets, random_state=seed(),
                                              **common)
    for secret in secrets:
        attacks[f"inference_{secret}"] = inference_risk(*frames, secret=secret, n_attacks=n_targets,
                                                        random_state=seed(), **common)
    rows = {name: {c: result[c] for c in AUDIT_COLUMNS[:7]} for name, result in attacks.items()}
    copies = exact_copies(frames[0], frames[1], quasi_identifiers=quasi_identifiers)
    n = copies["n_synthetic"]
    shares = copies["cells_by_column"].values()
    rows["exact_rows"] = {"risk": copies["rows"] / n, "copies": copies["rows"], "n_checked": n}
    rows["exact_quasi_identifiers"] = {} if copies["quasi_identifiers"] is None else \
        {"risk": copies["quasi_identifiers"] / n, "copies": copies["quasi_identifiers"], "n_checked": n}
    rows["exact_cells"] = {"risk": max(shares, default=0.0), "copies": copies["cells"],
                           "n_checked": copies["cells_checked"]}
    audit = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(AUDIT_COLUMNS)).astype(float)
    audit.index.name = "measure"
    return audit


def privacy_flags(audit: pd.DataFrame, thresholds: dict | None = None) -> list[str]:
    """Why a synthetic table fails its privacy audit, in words; an empty list when it passes.

    A row is flagged when an attack's lower confidence bound ``risk_low`` exceeds
    ``thresholds["risk"]``, when ``exact_rows`` or ``exact_quasi_identifiers`` count more copies
    than their threshold, or when the share of copied cells in one column (``exact_cells``
    risk) exceeds ``thresholds["exact_cell_share"]``. See ``PRIVACY_THRESHOLDS`` for the
    defaults and the reasons behind them.

    Parameters
    ----------
    audit : DataFrame
        A table of :func:`privacy_audit` (rows it does not know are ignored).
    thresholds : dict or None, default=None
        Overrides of some or all of ``PRIVACY_THRESHOLDS``.

    Returns
    -------
    list of str
        One reason per flagged row, naming the row, its figure and the threshold.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.metrics import privacy_flags
    >>> audit = pd.DataFrame({"risk": [0.4, 1.0], "risk_low": [0.3, float("nan")], "risk_high": [0.5, float("nan")],
    ...                       "copies": [float("nan"), 200], "n_checked": [float("nan"), 200]},
    ...                      index=["linkability", "exact_quasi_identifiers"])
    >>> for reason in privacy_flags(audit):
    ...     print(reason)
    linkability: risk 0.40 [0.30, 0.50], lower bound above 0.1
    exact_quasi_identifiers: 200 of 200 synthetic rows carry a training subject's quasi-identifiers (allowed: 0)
    >>> privacy_flags(audit, {"risk": 0.5, "exact_quasi_identifiers": 200})
    []
    """
    if not isinstance(audit, pd.DataFrame):
        raise TypeError(f"audit must be the DataFrame of privacy_audit, got {type(audit).__name__}")
    unknown = set(thresholds or {}) - set(PRIVACY_THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {list(PRIVACY_THRESHOLDS)}")
    limits = PRIVACY_THRESHOLDS | dict(thresholds or {})
    missing = {"risk", "risk_low", "risk_high", "copies", "n_checked"} - set(audit.columns)
    if missing:
        raise ValueError(f"audit lacks the columns {sorted(missing)} of a privacy_audit table")
    copied = {"exact_rows": "copy a training row", "exact_quasi_identifiers": "carry a training subject's "
              "quasi-identifiers"}
    reasons = []
    for name, row in audit.iterrows():
        if name in copied:
            if row["copies"] > limits[name]:
                reasons.append(f"{name}: {row['copies']:.0f} of {row['n_checked']:.0f} synthetic rows {copied[name]} "
                               f"(allowed: {limits[name]})")
        elif name == "exact_cells":
            if row["risk"] > limits["exact_cell_share"]:
                reasons.append(f"exact_cells: {row['risk']:.1%} of one column's cells are training values "
                               f"({row['copies']:.0f} copied cells in all; allowed: {limits['exact_cell_share']:.1%})")
        elif row["risk_low"] > limits["risk"]:
            reasons.append(f"{name}: risk {row['risk']:.2f} [{row['risk_low']:.2f}, {row['risk_high']:.2f}], "
                           f"lower bound above {limits['risk']}")
    return reasons
