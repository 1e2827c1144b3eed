"""roisynth: synthetic brain ROI-volume cohorts, paired healthy/disease, from unpaired tables.

The public names below are imported on first use (PEP 562), so ``import roisynth`` does not
load torch or statsmodels until a model that needs them is asked for.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

# public name -> module that defines it (relative to this package)
_PUBLIC = {
    "CausalROIModel": ".synthesizers",
    "ConditionalVAE": ".synthesizers",
    "ContrastiveVAE": ".synthesizers",
    "GaussianMixtureSynthesizer": ".synthesizers",
    "KDESynthesizer": ".synthesizers",
    "LinearContrastive": ".synthesizers",
    "SalientSubtypes": ".subtyping",
    "SmileGAN": ".subtyping",
    "SurrealGAN": ".subtyping",
    "CovariateModel": ".covariate_model",
    "CovariateResidualizer": ".preprocessing",
    "Harmonizer": ".preprocessing",
    "SynthesisPipeline": ".pipeline",
    "make_pipeline": ".pipeline",
    "DifferentialPrivacy": ".privacy",
    "PairingNotSupportedError": ".exceptions",
    "load": ".base",
    "build_report": ".evaluation",
}
_SUBPACKAGES = ("datasets", "evaluation", "exceptions", "imaging", "metrics", "nn", "preprocessing", "privacy",
                "subtyping", "synthesizers", "utils")


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'roisynth' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC, *_SUBPACKAGES})


try:
    __version__ = version("roisynth")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CausalROIModel",
    "ConditionalVAE",
    "ContrastiveVAE",
    "CovariateModel",
    "CovariateResidualizer",
    "DifferentialPrivacy",
    "GaussianMixtureSynthesizer",
    "Harmonizer",
    "KDESynthesizer",
    "LinearContrastive",
    "PairingNotSupportedError",
    "SalientSubtypes",
    "SmileGAN",
    "SurrealGAN",
    "SynthesisPipeline",
    "__version__",
    "build_report",
    "datasets",
    "load",
    "make_pipeline",
    "metrics",
    "preprocessing",
    "privacy",
]
