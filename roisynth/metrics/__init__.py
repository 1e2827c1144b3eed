"""Fidelity metrics: plain functions of two tables (in the style of POT and sklearn.metrics)."""

from .wasserstein import GaussianReference, gaussian_w2

__all__ = ["GaussianReference", "gaussian_w2"]
