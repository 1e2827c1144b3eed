"""What the density baselines share: one density per cohort on background-standardized values."""

from __future__ import annotations

import numpy as np

from ..base import BaseSynthesizer


class CohortDensitySynthesizer(BaseSynthesizer):
    """Base of synthesizers that model each cohort with its own density (``can_pair = False``).

    Subclasses fit their densities on the standardized tables of :meth:`_standardized_cohorts`
    (they have a ``nonnegative`` parameter) and sample with the generator of :meth:`_rng`.
    """

    def _standardized_cohorts(self, background, target) -> dict[str, np.ndarray]:
        """Validate both tables (``nonnegative`` param) and standardize them on the background."""
        Xb, Xt = self._validate_fit_tables(background, target, nonnegative=self.nonnegative)
        return {cohort: self._standardize(X) for cohort, X in zip(self.cohorts_, (Xb, Xt))}

    def _rng(self, random_state) -> np.random.Generator:
        """Sampling generator: ``random_state``, or the model's own when it is ``None``."""
        return np.random.default_rng(self._sampling_seed(random_state))
