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


class SmallDataWarning(UserWarning):
    """A neural synthesizer was fitted on fewer training rows than its outputs.

    Raised by :class:`~roisynth.ContrastiveVAE` and :class:`~roisynth.ConditionalVAE` at ``fit``
    when a cohort has fewer training rows (after the validation hold-out) than ROIs. The cohort
    means and effect sizes stay calibrated (and ``severity`` separates patients nearly as well as with
    ~1000 subjects per cohort), but the synthetic distributions and the twins are measurably less
    faithful; the message says what was fitted from how many rows and what to do (check the
    fidelity against held-out data, add subjects).

    Examples
    --------
    >>> import warnings
    >>> from roisynth import ContrastiveVAE, datasets
    >>> from roisynth.exceptions import SmallDataWarning
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:30]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois].iloc[:20] for d in ("CN", "AD"))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model = ContrastiveVAE(epochs=1, verbose=False, random_state=0).fit(cn, ad)
    >>> [w.category.__name__ for w in caught if issubclass(w.category, SmallDataWarning)]
    ['SmallDataWarning']
    """


class TrainingDataWarning(UserWarning):
    """A model file about to be written holds the training data itself.

    Raised by ``save`` of the estimators that *are* their training data and declare it with the
    class attribute ``stores_training_data = True``: :class:`~roisynth.KDESynthesizer` keeps its
    kernels on the (standardized) training rows, so its file, and samples drawn close to a
    kernel, reveal real subjects. Such a file is not shareable: keep it where the training data
    may be kept, and share synthetic tables from a model that does not store its data instead
    (a release refuses these models unless asked explicitly).

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> from roisynth import KDESynthesizer, datasets
    >>> from roisynth.exceptions import TrainingDataWarning
    >>> cohort = datasets.load_example()
    >>> cn = cohort.loc[cohort.diagnosis == "CN", datasets.roi_names()[:4]]
    >>> model = KDESynthesizer(bandwidth=0.5, random_state=0).fit(cn)
    >>> with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     model.save(os.path.join(folder, "kde.roisynth"))
    >>> KDESynthesizer.stores_training_data, [w.category.__name__ for w in caught]
    (True, ['TrainingDataWarning'])
    """


class ReleaseRefusedError(ValueError):
    """A synthetic cohort failed the privacy checks of :func:`roisynth.release.release`.

    The message lists every reason (an exact copy of a training row or quasi-identifier
    tuple, a risk whose lower confidence bound exceeds its threshold, a model that stores
    its training data); nothing was written. ``release(..., override="reason")`` releases
    nonetheless and records the reason and the flags in ``release.json``.
    """


__all__ = ["InvalidParameterError", "NotFittedError", "PairingNotSupportedError", "ReleaseRefusedError",
           "SmallDataWarning", "TrainingDataWarning"]
