"""Differential privacy: the budget of a private fit (:class:`DifferentialPrivacy`) and the
Rényi-DP accountant of DP-SGD (:mod:`roisynth.privacy.accountant`)."""

from ._differential_privacy import DifferentialPrivacy, public_bounds
from .accountant import epsilon, noise_multiplier, rdp_to_epsilon, subsampled_gaussian_rdp

__all__ = [
    "DifferentialPrivacy",
    "epsilon",
    "noise_multiplier",
    "public_bounds",
    "rdp_to_epsilon",
    "subsampled_gaussian_rdp",
]
