"""Errors and warnings that roisynth raises beyond Python's and scikit-learn's own."""

from sklearn.exceptions import NotFittedError


class PairingNotSupportedError(TypeError):
    """Asked a synthesizer that models each cohort on its own (``can_pair = False``) for
    paired samples or counterfactual twins."""


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter breaks its declared constraints (checked at ``fit``); both a
    ``ValueError`` and a ``TypeError``, so callers may catch either."""


__all__ = ["InvalidParameterError", "NotFittedError", "PairingNotSupportedError"]
