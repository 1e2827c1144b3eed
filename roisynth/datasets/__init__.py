"""Data sets: the MUSE ROI dictionary, reading ROI tables, a realistic cohort simulator and the
seed paper's semi-synthetic benchmark. Data files are read lazily, on first use."""

from .interaction import make_age_interaction
from .muse import canonical_roi_name, muse_rois, read_rois, roi_columns, roi_names
from .semisynthetic import SemiSynthetic, make_semisynthetic
from .simulator import load_example, simulate_cohort

__all__ = [
    "SemiSynthetic",
    "canonical_roi_name",
    "load_example",
    "make_age_interaction",
    "make_semisynthetic",
    "muse_rois",
    "read_rois",
    "roi_columns",
    "roi_names",
    "simulate_cohort",
]
