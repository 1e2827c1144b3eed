"""Preprocessing of ROI tables before synthesis, all invertible: site harmonization (ComBat-GAM)
and covariate correction (age, sex, ICV)."""

# public name -> module; imported on first use (PEP 562): the estimators load statsmodels,
# scipy and torch (model files), which `import roisynth.preprocessing` alone does not need
_LAZY = {"Harmonizer": ".harmonization", "CovariateResidualizer": ".residualization"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = ["CovariateResidualizer", "Harmonizer"]
