"""roisynth: synthetic brain ROI-volume cohorts, paired healthy/disease, from unpaired tables."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, metrics, preprocessing
from .base import PairingNotSupportedError, load
from .causal import CausalROIModel
from .conditional_vae import ConditionalVAE
from .contrastive_vae import ContrastiveVAE
from .gaussian_mixture import GaussianMixtureSynthesizer
from .kde import KDESynthesizer
from .linear_contrastive import LinearContrastive
from .pipeline import SynthesisPipeline, make_pipeline
from .preprocessing import CovariateResidualizer, Harmonizer
from .smilegan import SmileGAN
from .subtypes import SalientSubtypes


def __getattr__(name: str):
    if name == "build_report":  # imports matplotlib, so only when asked for
        from .report import build_report

        return build_report
    raise AttributeError(f"module 'roisynth' has no attribute {name!r}")


try:
    __version__ = version("roisynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CausalROIModel",
    "ConditionalVAE",
    "ContrastiveVAE",
    "CovariateResidualizer",
    "GaussianMixtureSynthesizer",
    "Harmonizer",
    "KDESynthesizer",
    "LinearContrastive",
    "PairingNotSupportedError",
    "SalientSubtypes",
    "SmileGAN",
    "SynthesisPipeline",
    "__version__",
    "build_report",
    "datasets",
    "load",
    "make_pipeline",
    "metrics",
    "preprocessing",
]
