"""DifferentialPrivacy: the (ε, δ) budget of a private fit and the public facts it rests on."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..datasets.muse import canonical_roi_name
from ..datasets.simulator import _params

_Z95 = 1.6448536269514722  # the 95th centile of N(0, 1)


def public_bounds(columns: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Public (low, high) range in mm³ of each MUSE ROI column, from the norms roisynth ships.

    low is the smallest 5th and high the largest 95th centile of the DLMUSE normative curves
    over both sexes and ages 40-90 (``simulator_params.npz``, derived from published centile
    tables, no subject of any user's data): facts known before the data are seen, so using them
    spends no privacy budget.

    Parameters
    ----------
    columns : sequence of str
        ROI column names (any spelling :func:`~roisynth.datasets.canonical_roi_name` knows).

    Returns
    -------
    dict of str to (float, float)
        ``column -> (low, high)``.

    Raises
    ------
    ValueError
        Naming the columns that are not single MUSE ROIs with shipped norms.

    Examples
    --------
    >>> from roisynth.privacy import public_bounds
    >>> low, high = public_bounds(["Hippocampus_L"])["Hippocampus_L"]
    >>> 2000 < low < high < 6000
    True
    """
    params = _params()
    index = {name: j for j, name in enumerate(params["rois"].tolist())}
    names = [canonical_roi_name(c) for c in columns]
    unknown = [c for c, name in zip(columns, names) if name not in index]
    if unknown:
        raise ValueError(f"no public norms ship for column(s) {list(unknown)[:5]}: a private fit needs public bounds "
                         "for every column; pass DifferentialPrivacy(bounds={column: (low, high), ...}) with ranges "
                         "known without looking at the data (published norms, physical limits)")
    curves = params["log_centiles"]  # [sex, age, roi, centile 5..95], log mm³
    return {c: (float(np.exp(curves[:, :, index[n], 0].min())), float(np.exp(curves[:, :, index[n], -1].max())))
            for c, n in zip(columns, names)}


def dp_sgd_schedule(batch_size: int, epochs: int, n: int) -> tuple[float, int]:
    """(q, T) of a private fit of ``epochs`` on ``n`` subjects: Poisson rate q = min(1, 2·``batch_size`` / n)
    (a batch of each cohort on average) and T = ⌈epochs / q⌉ DP-SGD steps.

    Examples
    --------
    >>> from roisynth.privacy._differential_privacy import dp_sgd_schedule
    >>> dp_sgd_schedule(64, 100, 2100)
    (0.06095238095238095, 1641)
    """
    sampling_rate = min(1.0, 2 * batch_size / n)
    return sampling_rate, math.ceil(epochs / sampling_rate)


@dataclass(frozen=True)
class DifferentialPrivacy:
    r"""An (ε, δ)-differential-privacy budget for the fit of a neural synthesizer.

    Given to :class:`~roisynth.ContrastiveVAE` or :class:`~roisynth.ConditionalVAE` as
    ``privacy=``, it makes ``fit`` train by DP-SGD (Abadi et al. 2016): every step takes each
    training subject independently with probability q = 2·``batch_size`` / n (Poisson
    sampling, n subjects of both cohorts), clips each subject's gradient to L2 norm C =
    ``max_grad_norm``, adds N(0, σ²C² I) to their sum and divides by the expected batch qn.
    The noise multiplier σ is the smallest that keeps the ``epochs`` / q steps within
    (ε, δ) by the Rényi-DP accountant of :mod:`roisynth.privacy.accountant`; it is set before
    training, and a budget that no σ ≤ 100 meets raises a ``ValueError`` before training.
    The guarantee is for neighbouring data sets that differ by one subject (added or removed,
    in either cohort); the cohort sizes (hence q) are treated as public.

    Everything else a private fit learns from the data is either inside the budget or not
    learned from the data at all: the internal standardization uses public bounds
    (``bounds``); the calibration offsets (the synthesizer's ``calibration="moments"``) use
    cohort means released by the Gaussian mechanism (:func:`~roisynth.privacy._mechanisms.private_mean`,
    noise set so that alone it would spend ``means_share``·ε at δ, composed with DP-SGD by the
    same Rényi accountant); synthetic codes come from the prior N(0, I) (no mixtures fitted to
    private codes); there is no validation split or early stopping (all ``epochs`` are
    trained), no record of the training loss, and the regularizer is per subject (see
    :class:`~roisynth.nn.contrastive.ContrastiveVAEModule`). The synthesizer's
    ``latent_sampling``, ``validation_fraction``, ``eval_every`` and ``patience`` are therefore
    not used.

    Parameters
    ----------
    epsilon : float
        ε > 0, the privacy budget.
    delta : float or None, default=None
        δ in (0, 1/n); None uses 1/n², n the number of training subjects (both cohorts): δ must
        stay below 1/n, or a mechanism that publishes one random subject's row outright would
        qualify.
    max_grad_norm : float, default=1.0
        C, the L2 norm each subject's gradient is clipped to.
    means_share : float, default=0.5
        The noise of the released cohort means is the Gaussian mechanism's for
        (``means_share``·ε, δ) alone; in [0, 1), 0 (or the synthesizer's ``calibration="none"``)
        releases no means and fits no calibration offsets. Rényi composition makes the two
        mechanisms cost less together than apart: for 2100 subjects, ε = 10 and 821 steps at
        q = 0.12 the gradient noise multiplier is 2.26 without the means and 2.62 with
        ``means_share=0.5``, whose means carry about 0.03 background SDs of noise per ROI (139 ROIs).
    bounds : mapping of str to (float, float) or None, default=None
        Public (low, high) range of every ROI, known without the data; the model standardizes
        x ↦ (x − (low + high)/2) / ((high − low) / (2·1.645)) (the SD of a normal whose 5th and
        95th centiles are low and high). None uses :func:`public_bounds`, the norms roisynth
        ships for MUSE ROIs.
    composed_with : tuple of float, default=()
        Noise multipliers of Gaussian mechanisms of L2 sensitivity 1 (noise σ_k times the
        sensitivity) already run on the same subjects, e.g. the private preprocessing of a
        :class:`~roisynth.SynthesisPipeline`, which fills this in. The accountant composes them
        with DP-SGD and the fit's own releases (Rényi DP α / (2σ_k²) each), so ``epsilon`` bounds
        the whole chain; they are not run again.
    preprocessing_share : float, default=0.2
        In a :class:`~roisynth.SynthesisPipeline`, the noise of the private preprocessing (linear
        covariate correction, linear ComBat, the per-cohort covariate effects and covariate
        models) is set so that its Gaussian releases together alone would spend
        ``preprocessing_share``·ε at δ; they are then composed with the synthesizer's fit
        (``composed_with``), so the whole chain spends at most ε. In [0, 1); 0 is refused by a
        pipeline that has anything to release. Unused by a synthesizer fitted on its own.
    covariate_bounds : mapping of str to (float, float) or None, default=None
        Public (low, high) range of continuous covariates (age, ICV, ...), known without the
        data (a study's inclusion criteria, published norms); a private pipeline clips the
        covariates to them before any release. Columns left out use the defaults of
        :func:`~roisynth.privacy._sufficient_stats.covariate_ranges` (age 0-120 years, ICV from the
        norms roisynth ships, sex 0/1); another continuous covariate without a range is refused.

    Examples
    --------
    >>> from roisynth.privacy import DifferentialPrivacy
    >>> budget = DifferentialPrivacy(epsilon=3.0)
    >>> budget.delta_for(1000)
    1e-06
    >>> DifferentialPrivacy(epsilon=0)
    Traceback (most recent call last):
    ...
    ValueError: epsilon must be a positive finite number, got 0
    """

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0
    means_share: float = 0.5
    bounds: Mapping[str, tuple[float, float]] | None = field(default=None, hash=False)
    composed_with: tuple[float, ...] = ()
    preprocessing_share: float = 0.2
    covariate_bounds: Mapping[str, tuple[float, float]] | None = field(default=None, hash=False)

    def __post_init__(self):
        for name in ("epsilon", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("means_share", "preprocessing_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.delta is not None and (isinstance(self.delta, bool) or not isinstance(self.delta, (int, float))
                                       or not 0 < self.delta < 1):
            raise ValueError(f"delta must be None or in (0, 1), got {self.delta!r}")
        if isinstance(self.composed_with, (list, np.ndarray)):  # e.g. read back from JSON
            object.__setattr__(self, "composed_with", tuple(float(v) for v in self.composed_with))
        if not isinstance(self.composed_with, tuple) or not all(
                not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v < math.inf
                for v in self.composed_with):
            raise ValueError(f"composed_with must be a tuple of positive finite noise multipliers, "
                             f"got {self.composed_with!r}")
        if isinstance(self.covariate_bounds, Mapping):  # pairs as tuples of floats, also when read back from JSON
            object.__setattr__(self, "covariate_bounds", {str(c): tuple(float(v) for v in pair)
                                                          for c, pair in self.covariate_bounds.items()})
        for name in ("bounds", "covariate_bounds"):
            ranges = getattr(self, name)
            if ranges is None:
                continue
            if not isinstance(ranges, Mapping):
                raise TypeError(f"{name} must be a mapping column -> (low, high), got {type(ranges).__name__}")
            for column, pair in ranges.items():
                low, high = (float(v) for v in pair)
                if not (math.isfinite(low) and math.isfinite(high) and low < high):
                    raise ValueError(f"{name}[{column!r}] = {pair!r} is not a finite range with low < high")

    def delta_for(self, n: int) -> float:
        """δ of a fit on ``n`` subjects: ``delta``, or 1/n² when it is None.

        Raises
        ------
        ValueError
            When ``delta`` is not below 1/n.
        """
        delta = 1.0 / n**2 if self.delta is None else float(self.delta)
        if delta >= 1.0 / n:
            raise ValueError(f"delta={delta:g} is not below 1/n = {1 / n:.3g} for n = {n} subjects: with such a "
                             "delta a mechanism may publish a subject's data outright; leave delta=None (1/n^2)")
        return delta

    def standardization(self, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(center, scale) of each column from its public (low, high) range (see ``bounds``).

        Raises
        ------
        ValueError
            Naming the columns without a public range.
        """
        if self.bounds is None:
            bounds = public_bounds(columns)
        else:
            missing = [c for c in columns if c not in self.bounds]
            if missing:
                raise ValueError(f"DifferentialPrivacy.bounds has no range for column(s) {missing[:5]}")
            bounds = {c: tuple(float(v) for v in self.bounds[c]) for c in columns}
        low, high = (np.array([bounds[c][k] for c in columns]) for k in (0, 1))
        return (low + high) / 2, (high - low) / (2 * _Z95)

    def to_dict(self) -> dict:
        """The parameters as JSON values (``DifferentialPrivacy(**d)`` rebuilds it)."""
        bounds, covariate_bounds = (None if b is None else {str(k): [float(v) for v in pair] for k, pair in b.items()}
                                    for b in (self.bounds, self.covariate_bounds))
        return {"epsilon": self.epsilon, "delta": self.delta, "max_grad_norm": self.max_grad_norm,
                "means_share": self.means_share, "bounds": bounds,
                "composed_with": [float(v) for v in self.composed_with],
                "preprocessing_share": self.preprocessing_share, "covariate_bounds": covariate_bounds}
