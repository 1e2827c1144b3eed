"""A planted age × disease interaction: patients whose atrophy grows with age, with its true slope."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The ROIs of :func:`make_age_interaction`; the interaction is planted in the first.
ROIS = ("Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R")


def make_age_interaction(n: int = 1500, extra_slope: float = -12.0, random_state=None
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""Healthy and patient tables where the patients' atrophy of one ROI grows with age.

    Every subject has age ~ U(55, 90), sex F/M with equal odds and ICV ~ N(1.4e6, 1.2e5) mm³
    (+1e5 for men). A reference volume :math:`b = 3000 - 10\,(a - 70) + 4\cdot10^{-4}(\mathrm{ICV} -
    1.4\cdot10^6)` mm³ is scaled by (1, 0.9, 0.5, 1.2) for the four :data:`ROIS`, plus
    N(0, 150²) noise. Patients lose from the first ROI
    :math:`(0.04 - \beta (a - 70) / 3000) \times 3000` mm³ with :math:`\beta` = ``extra_slope``:
    4 % at 70 years, and :math:`\beta` mm³ per year more (or less) beyond the healthy age slope of
    −10 mm³ per year. A synthesizer that keeps the interaction shows the same extra slope.

    Parameters
    ----------
    n : int, default=1500
        Subjects per cohort.
    extra_slope : float, default=-12.0
        The patients' age slope of the first ROI minus the healthy one (mm³ per year).
    random_state : int or None, default=None
        Seed (numpy ``default_rng``).

    Returns
    -------
    healthy, patients : DataFrame
        ``age, sex, icv`` and the four ROIs (mm³).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.datasets import make_age_interaction
    >>> healthy, patients = make_age_interaction(4000, random_state=0)
    >>> slope = lambda t: np.polyfit(t.age, t.Hippocampus_L - 4e-4 * (t.icv - 1.4e6), 1)[0]
    >>> round(slope(patients) - slope(healthy))
    -12
    """
    rng = np.random.default_rng(random_state)

    def cohort(disease: bool) -> pd.DataFrame:
        age = rng.uniform(55, 90, n)
        sex = rng.choice(["F", "M"], n)
        icv = rng.normal(1.4e6, 1.2e5, n) + 1e5 * (sex == "M")
        base = 3000 - 10 * (age - 70) + 4e-4 * (icv - 1.4e6)
        values = base[:, None] * np.array([1.0, 0.9, 0.5, 1.2]) + rng.normal(0, 150, (n, len(ROIS)))
        if disease:
            values[:, 0] -= 0.04 * 3000 - extra_slope * (age - 70)
        return pd.DataFrame({"age": age, "sex": sex, "icv": icv, **dict(zip(ROIS, values.T))})

    return cohort(False), cohort(True)
