"""Metrics: plain functions of tables (rows = subjects, same columns), in the style of POT and
scikit-learn's ``metrics``. DataFrames are matched by column name, arrays by position.

- fidelity: :func:`gaussian_w2`, :func:`wasserstein`, :func:`sliced_wasserstein`, :func:`mmd`,
  :func:`marginal_distances`, :func:`correlation_similarity`, :func:`detection_auc`;
- uncertainty and reference levels: :func:`bootstrap`, :func:`noise_floor`;
- representations: :func:`decoupling_auc`, :func:`subtype_recovery`;
- effects and counterfactuals: :func:`cohens_d`, :func:`effect_maps`, :func:`effect_map_correlation`,
  :func:`effect_scale`, :func:`effect_error`, :func:`spurious_effects`, :func:`roi_tests`,
  :func:`twin_error`;
- utility: :func:`tstr`;
- privacy: :func:`distance_to_closest_record`, :func:`nndr`, :func:`membership_inference_auc`,
  :func:`exact_copies`; the anonymeter attacks :func:`singling_out_risk`, :func:`linkability_risk`,
  :func:`inference_risk` (:class:`AttackResult`), gathered by :func:`privacy_audit` and judged by
  :func:`privacy_flags` against ``PRIVACY_THRESHOLDS``.
"""

from .attacks import (
    PRIVACY_THRESHOLDS,
    AttackResult,
    inference_risk,
    linkability_risk,
    privacy_audit,
    privacy_flags,
    singling_out_risk,
)
from .bootstrap import BootstrapResult, bootstrap, noise_floor
from .counterfactual import twin_error
from .detection import detection_auc
from .effects import (
    cohens_d,
    effect_error,
    effect_map_correlation,
    effect_maps,
    effect_scale,
    roi_tests,
    spurious_effects,
)
from .marginals import correlation_similarity, marginal_distances
from .mmd import mmd
from .privacy import distance_to_closest_record, exact_copies, membership_inference_auc, nndr
from .representation import decoupling_auc, subtype_recovery
from .utility import tstr
from .wasserstein import GaussianReference, gaussian_w2, sliced_wasserstein, wasserstein

__all__ = [
    "PRIVACY_THRESHOLDS",
    "AttackResult",
    "BootstrapResult",
    "GaussianReference",
    "bootstrap",
    "cohens_d",
    "correlation_similarity",
    "decoupling_auc",
    "detection_auc",
    "distance_to_closest_record",
    "effect_error",
    "effect_map_correlation",
    "effect_maps",
    "effect_scale",
    "exact_copies",
    "gaussian_w2",
    "inference_risk",
    "linkability_risk",
    "marginal_distances",
    "membership_inference_auc",
    "mmd",
    "nndr",
    "noise_floor",
    "privacy_audit",
    "privacy_flags",
    "roi_tests",
    "singling_out_risk",
    "sliced_wasserstein",
    "spurious_effects",
    "subtype_recovery",
    "tstr",
    "twin_error",
    "wasserstein",
]
