"""Preprocessing of ROI tables before synthesis, all invertible: site harmonization (ComBat-GAM)
and covariate correction (age, sex, ICV)."""

from .harmonization import Harmonizer
from .residualization import CovariateResidualizer

__all__ = ["CovariateResidualizer", "Harmonizer"]
