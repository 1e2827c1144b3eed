"""roisynth: synthetic brain ROI-volume cohorts, paired healthy/disease, from unpaired tables."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, metrics
from .base import load
from .contrastive_vae import ContrastiveVAE

try:
    __version__ = version("roisynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["ContrastiveVAE", "datasets", "load", "metrics", "__version__"]
