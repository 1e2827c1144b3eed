"""Synthesizers: estimators that learn a healthy and a patient cohort and sample them.

Every synthesizer follows one contract (:class:`roisynth.base.BaseSynthesizer`):
``fit(background, target=None)``, ``sample(n, cohort=...)``, and where the model links the two
cohorts (``can_pair = True``) ``sample_paired(n)`` and ``counterfactual(X, to=...)``.

- Paired, neural: :class:`ContrastiveVAE` (the seed paper's model), :class:`ConditionalVAE`.
- Paired, closed form: :class:`LinearContrastive` (probabilistic contrastive PCA).
- Paired, causal: :class:`CausalROIModel` (a structural causal model with normalizing flows).
- One density per cohort: :class:`GaussianMixtureSynthesizer`, :class:`KDESynthesizer`.
"""

from ._causal import CausalROIModel
from ._conditional_vae import ConditionalVAE
from ._contrastive_vae import ContrastiveVAE
from ._gaussian_mixture import GaussianMixtureSynthesizer
from ._kde import KDESynthesizer, log_kde
from ._linear_contrastive import LinearContrastive

__all__ = [
    "CausalROIModel",
    "ConditionalVAE",
    "ContrastiveVAE",
    "GaussianMixtureSynthesizer",
    "KDESynthesizer",
    "LinearContrastive",
    "log_kde",
]
