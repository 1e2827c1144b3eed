"""Errors and warnings that roisynth raises beyond Python's and scikit-learn's own."""

from sklearn.exceptions import NotFittedError


class PairingNotSupportedError(TypeError):
    """Asked a synthesizer that models each cohort on its own (``can_pair = False``) for
    paired samples or counterfactual twins.

    Examples
    --------
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.exceptions import PairingNotSupportedError
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:4]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> model = GaussianMixtureSynthesizer(n_components=1, random_state=0).fit(cn, ad)
    >>> try:
    ...     model.sample_paired(3)
    ... except PairingNotSupportedError:
    ...     print("no pairs")
    no pairs
    """


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter breaks its declared constraints (checked at ``fit``); both a
    ``ValueError`` and a ``TypeError``, so callers may catch either.

    Examples
    --------
    >>> from roisynth import KDESynthesizer, datasets
    >>> from roisynth.exceptions import InvalidParameterError
    >>> cohort = datasets.load_example()
    >>> cn = cohort.loc[cohort.diagnosis == "CN", datasets.roi_names()[:4]]
    >>> try:
    ...     KDESynthesizer(cv=1).fit(cn)
    ... except InvalidParameterError:
    ...     print("cv must be at least 2")
    cv must be at least 2
    """


__all__ = ["InvalidParameterError", "NotFittedError", "PairingNotSupportedError"]
