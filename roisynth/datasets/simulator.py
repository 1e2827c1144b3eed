"""Simulated multi-site cohorts of MUSE ROI volumes (mm³): CN norms, ICV, site effects, AD subtypes.

Generative model for subject i (parameters in ``simulator_params.npz``, derived from public data
by ``scripts/derive_datasets.py``; disease patterns in ``atrophy_patterns.json``):

1. site s ~ Categorical(w), w ~ Dirichlet(3); diagnosis ~ Categorical(``diagnosis``);
   sex M with probability 0.45; age = lo + (hi - lo) Beta(4 m_s, 4 (1 - m_s)) with the site's
   mean m_s = 1/2 + N(0, site_age_shift_sd^2) / (hi - lo), clipped to [1/4, 3/4] (the 3, 0.45
   and 4 are design choices; site_age_shift_sd is the spread of the IXI site mean ages).
2. Gaussian copula over (ICV, ROIs): z ~ N(0, R), R the shrunk IXI residual correlation.
3. ComBat-like site effect: z <- gamma_s + delta_s z with gamma_sg = mu_s + e_sg and
   log delta_sg = nu_s + u_sg (normal, SDs from IXI), centred so that sum_s w_s gamma_s = 0 and
   sum_s w_s log delta_s = 0: pooled over sites (and for a single site) the CN norms hold.
4. Marginals: log ICV = m_sex + s_sex z_0 (IXI); log ROI volume = the piecewise-linear
   function of z through the DLMUSE log centiles (5, 25, 50, 75, 95 at z = ±1.645, ±0.674, 0)
   at the subject's sex and age (linear in age between 5-year knots; tails extrapolate the
   outer segments), so the CN 5/50/95 centiles are those of the reference curves.
5. Disease (MCI, AD): subtype k ~ Categorical(prevalence), severity ~ Gamma, and
   log v_g += severity * jitter_g * log(1 + change_kg).
"""

from __future__ import annotations

import functools
import json
import numbers
from collections.abc import Mapping, Sequence
from importlib.resources import files
from statistics import NormalDist

import numpy as np
import pandas as pd

from ..utils.validation import check_count
from .muse import base_name, muse_rois

DIAGNOSES = ("CN", "MCI", "AD")
DEFAULT_DIAGNOSIS = {"CN": 0.5, "MCI": 0.25, "AD": 0.25}
P_MALE = 0.45
SITE_SIZE_CONCENTRATION = 3.0
AGE_CONCENTRATION = 4.0
EXAMPLE_SEED = 20240607


def _data_file(name: str):
    return files("roisynth.data").joinpath(name)


@functools.cache
def _params() -> dict[str, np.ndarray]:
    with _data_file("simulator_params.npz").open("rb") as f, np.load(f) as npz:
        params = {key: npz[key] for key in npz.files}
    params["corr_cholesky"] = np.linalg.cholesky(params["corr"])
    params["z_knots"] = np.array([NormalDist().inv_cdf(c / 100) for c in params["centiles"]])
    return params


@functools.cache
def _atrophy() -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """Subtype names, prevalences, log(1 + change) [subtype, roi] and the severity settings."""
    spec = json.loads(_data_file("atrophy_patterns.json").read_text())
    rois = muse_rois(include_ventricles=True).set_index("name")
    names = list(spec["subtypes"])
    log_change = np.empty((len(names), len(rois)))
    for k, name in enumerate(names):
        pattern = spec["subtypes"][name]
        change = rois["tissue"].map(pattern["default"])
        for key, value in pattern["change"].items():
            targets = [roi for roi in rois.index if key in (roi, base_name(roi))]
            if not targets:
                raise ValueError(f"atrophy_patterns.json: subtype {name!r} names unknown ROI {key!r}")
            change[targets] = value
        if change.isna().any():
            tissues = sorted(set(rois["tissue"][change.isna()]))
            raise ValueError(f"atrophy_patterns.json: subtype {name!r} has no default for {tissues}")
        log_change[k] = np.log1p(change.to_numpy(float))
    prevalence = np.array([spec["subtypes"][name]["prevalence"] for name in names])
    return names, prevalence / prevalence.sum(), log_change, spec["severity"]


def _check_diagnosis(diagnosis) -> tuple[list[str], np.ndarray]:
    diagnosis = DEFAULT_DIAGNOSIS if diagnosis is None else diagnosis
    if not isinstance(diagnosis, Mapping) or not diagnosis:
        raise ValueError(
            f"diagnosis must be a non-empty dict of proportions such as {DEFAULT_DIAGNOSIS}, got {diagnosis!r}"
        )
    unknown = [label for label in diagnosis if label not in DIAGNOSES]
    if unknown:
        raise ValueError(f"diagnosis: unknown label(s) {unknown}; use {list(DIAGNOSES)}")
    p = np.array(list(diagnosis.values()), dtype=float)
    if not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"diagnosis proportions must be non-negative with a positive sum, got {dict(diagnosis)}")
    return list(diagnosis), p / p.sum()


def _check_sites(sites) -> list[str]:
    if isinstance(sites, numbers.Integral) and not isinstance(sites, bool):
        if sites < 1:
            raise ValueError(f"sites must be a positive integer or a list of names, got {sites}")
        return [f"site{k + 1}" for k in range(sites)]
    if isinstance(sites, str) or not isinstance(sites, Sequence) or not sites:
        raise ValueError(f"sites must be a positive integer or a non-empty list of names, got {sites!r}")
    names = [str(site) for site in sites]
    if len(set(names)) < len(names):
        raise ValueError(f"sites: duplicated names in {names}")
    return names


def _check_age_range(age_range) -> tuple[float, float]:
    ages = _params()["ages"]
    try:
        lo, hi = (float(a) for a in age_range)
    except (TypeError, ValueError):
        raise ValueError(f"age_range must be a pair (low, high), got {age_range!r}") from None
    if not ages[0] <= lo < hi <= ages[-1]:
        raise ValueError(
            f"age_range must satisfy {ages[0]:g} <= low < high <= {ages[-1]:g} (the CN norms' range), got {age_range!r}"
        )
    return lo, hi


def _site_effects(rng: np.random.Generator, weights: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifts gamma and scales delta [site, feature], centred by the site weights."""
    p = _params()
    shape = (len(weights), n_features)

    def two_level(site_sd: float, roi_sd: float) -> np.ndarray:  # per-site common part + per-ROI part
        return site_sd * rng.standard_normal((shape[0], 1)) + roi_sd * rng.standard_normal(shape)

    gamma = two_level(p["site_shift_sd"], p["roi_shift_sd"])
    log_delta = two_level(p["site_logscale_sd"], p["roi_logscale_sd"])
    return gamma - weights @ gamma, np.exp(log_delta - weights @ log_delta)


def _log_volumes(z: np.ndarray, male: np.ndarray, age: np.ndarray) -> np.ndarray:
    """log ROI volumes [subject, roi] from copula scores z via the CN centile curves."""
    p = _params()
    ages, knots, curves = p["ages"], p["z_knots"], p["log_centiles"]  # curves: [sex, age, roi, centile]
    j = np.clip(np.searchsorted(ages, age, side="right") - 1, 0, len(ages) - 2)[:, None]
    w = (age[:, None] - ages[j]) / (ages[j + 1] - ages[j])
    k = np.clip(np.searchsorted(knots, z), 1, len(knots) - 1)  # upper knot of z's segment
    sex, roi = male.astype(int)[:, None], np.arange(z.shape[1])[None, :]

    def at(knot: np.ndarray) -> np.ndarray:
        return (1 - w) * curves[sex, j, roi, knot] + w * curves[sex, j + 1, roi, knot]

    lower, upper = at(k - 1), at(k)
    return lower + (z - knots[k - 1]) * (upper - lower) / (knots[k] - knots[k - 1])


def _disease(rng: np.random.Generator, diagnosis: np.ndarray, n_rois: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subtype index (-1 for CN), severity, and the log-volume change [subject, roi]."""
    names, prevalence, log_change, severity_spec = _atrophy()
    n = len(diagnosis)
    mean = np.array([severity_spec["mean"].get(d, 0.0) for d in DIAGNOSES])[diagnosis]
    shape, jitter_sd = severity_spec["gamma_shape"], severity_spec["roi_jitter_sd"]
    severity = rng.gamma(shape, mean / shape)
    subtype = np.where(mean > 0, rng.choice(len(names), size=n, p=prevalence), -1)
    jitter = np.exp(jitter_sd * rng.standard_normal((n, n_rois)) - jitter_sd**2 / 2)
    delta = severity[:, None] * jitter * log_change[np.maximum(subtype, 0)]
    return subtype, severity, np.where(subtype[:, None] >= 0, delta, 0.0)


def simulate_cohort(
    n: int = 1000,
    diagnosis: Mapping[str, float] | None = None,
    sites: int | Sequence[str] = 4,
    age_range: tuple[float, float] = (55, 90),
    include_ventricles: bool = True,
    random_state=None,
    return_truth: bool = False,
):
    """Simulate a multi-site cohort of MUSE ROI volumes (model in the module docstring).

    Parameters
    ----------
    n : int, default=1000
        Number of subjects.
    diagnosis : mapping of str to float, default=None
        Proportions over ``"CN"``, ``"MCI"``, ``"AD"`` (normalised); None means
        ``{"CN": .5, "MCI": .25, "AD": .25}``.
    sites : int or sequence of str, default=4
        Number of sites (named ``site1``...) or their names; site sizes vary at random.
    age_range : tuple of (float, float), default=(55, 90)
        (low, high) ages in years, within the CN norms' 40-90.
    include_ventricles : bool, default=True
        Add the 6 ventricular ROIs (145 ROIs instead of 139).
    random_state : int, Generator or None, default=None
        Seed or ``numpy.random.Generator``; equal seeds give equal cohorts.
    return_truth : bool, default=False
        Also return a DataFrame (same index) with ``participant_id``, ``subtype``
        (``"none"`` for CN) and ``severity`` (0 for CN).

    Returns
    -------
    cohort : DataFrame
        ``participant_id, site, age, sex ("F"/"M"), icv, diagnosis`` and one column per ROI (mm³).
    truth : DataFrame
        Only with ``return_truth=True``: ``participant_id, subtype, severity``.

    Examples
    --------
    >>> from roisynth.datasets import simulate_cohort
    >>> cohort = simulate_cohort(n=20, sites=["A", "B"], random_state=0)
    >>> cohort.shape
    (20, 151)
    >>> list(cohort.columns[:6])
    ['participant_id', 'site', 'age', 'sex', 'icv', 'diagnosis']
    >>> cohort, truth = simulate_cohort(n=20, random_state=0, return_truth=True)
    >>> bool(truth.loc[cohort.diagnosis == "CN", "severity"].eq(0).all())
    True
    """
    n = check_count(n)
    labels, proportions = _check_diagnosis(diagnosis)
    site_names = _check_sites(sites)
    lo, hi = _check_age_range(age_range)
    p = _params()
    rng = np.random.default_rng(random_state)

    weights = rng.dirichlet(np.full(len(site_names), SITE_SIZE_CONCENTRATION))
    site = rng.choice(len(site_names), size=n, p=weights)
    codes = np.array([DIAGNOSES.index(label) for label in labels])
    diagnosis_index = codes[rng.choice(len(labels), size=n, p=proportions)]
    male = rng.random(n) < P_MALE
    centre = np.clip(0.5 + p["site_age_shift_sd"] * rng.standard_normal(len(site_names)) / (hi - lo), 0.25, 0.75)[site]
    age = lo + (hi - lo) * rng.beta(AGE_CONCENTRATION * centre, AGE_CONCENTRATION * (1 - centre))

    z = rng.standard_normal((n, len(p["corr"]))) @ p["corr_cholesky"].T
    gamma, delta = _site_effects(rng, weights, z.shape[1])
    z = gamma[site] + delta[site] * z
    icv = np.exp(p["icv_log_mean"][male.astype(int)] + p["icv_log_sd"][male.astype(int)] * z[:, 0])
    subtype, severity, change = _disease(rng, diagnosis_index, z.shape[1] - 1)
    volumes = np.exp(_log_volumes(z[:, 1:], male, age) + change)

    ids = [f"sub-{i:0{len(str(n))}d}" for i in range(1, n + 1)]
    covariates = pd.DataFrame(
        {
            "participant_id": ids,
            "site": np.array(site_names)[site],
            "age": age,
            "sex": np.where(male, "M", "F"),
            "icv": icv,
            "diagnosis": np.array(DIAGNOSES)[diagnosis_index],
        }
    )
    rois = pd.DataFrame(volumes, columns=p["rois"].tolist())
    if not include_ventricles:
        rois = rois[muse_rois()["name"].tolist()]
    cohort = pd.concat([covariates, rois], axis=1)
    if not return_truth:
        return cohort
    subtype_names = np.array(_atrophy()[0] + ["none"])  # index -1 -> "none"
    truth = pd.DataFrame({"participant_id": ids, "subtype": subtype_names[subtype], "severity": severity})
    return cohort, truth


@functools.cache
def _example() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_cohort(n=3000, sites=4, random_state=EXAMPLE_SEED, return_truth=True)


def load_example(return_truth: bool = False):
    """The bundled example cohort: 3000 simulated subjects of 4 sites, CN, MCI and AD.

    Sites have different sizes, CN/MCI/AD are about 50/25/25 %, and there are 145 ROIs
    (ventricles included); the cohort is generated deterministically by
    :func:`simulate_cohort` (computed once per session, a copy is returned).

    Parameters
    ----------
    return_truth : bool, default=False
        Also return the true subtype and severity of each subject.

    Returns
    -------
    cohort : DataFrame
        ``participant_id, site, age, sex, icv, diagnosis`` and 145 ROI columns (mm³).
    truth : DataFrame
        Only with ``return_truth=True``: ``participant_id, subtype, severity``.

    Examples
    --------
    >>> from roisynth.datasets import load_example
    >>> cohort = load_example()
    >>> cohort.shape
    (3000, 151)
    >>> cohort.diagnosis.value_counts().sort_index().to_dict()
    {'AD': 762, 'CN': 1501, 'MCI': 737}
    """
    cohort, truth = _example()
    return (cohort.copy(), truth.copy()) if return_truth else cohort.copy()
