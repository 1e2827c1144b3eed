"""Downstream utility: does a classifier trained on synthetic data work on real data?"""

from __future__ import annotations

import numpy as np

from ..utils.validation import seed_from
from ._common import check_tables, make_classifier


def tstr(synth_background, synth_target, real_background, real_target, test_size: float = 0.3,
         classifier: str = "logistic", random_state=None) -> dict:
    """Train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

    The real rows (background = 0, target = 1) are split once, stratified, into a training
    part and a test part of share ``test_size``. One classifier (see
    :func:`~roisynth.metrics.detection_auc` for ``classifier``) is trained on all synthetic
    rows, another on the real training part; both are scored by ROC AUC on the same real
    test part. Returns ``tstr_auc``, ``trtr_auc`` and ``ratio`` = tstr_auc / trtr_auc
    (≈ 1: the synthetic data are as useful as the real ones for this task).

    Parameters
    ----------
    synth_background, synth_target : DataFrame or ndarray of shape (n_rows, n_columns)
        Synthetic healthy (label 0) and patient (label 1) rows.
    real_background, real_target : DataFrame or ndarray of shape (n_rows, n_columns)
        Real healthy and patient rows, with the same columns.
    test_size : float, default=0.3
        Share of the real rows held out for testing, in (0, 1).
    classifier : {"logistic", "gradient_boosting"}, default="logistic"
        The classifier (see :func:`~roisynth.metrics.detection_auc`).
    random_state : int, RandomState or None, default=None
        Seed of the split (and of gradient boosting).

    Returns
    -------
    dict
        ``{"tstr_auc": float, "trtr_auc": float, "ratio": float}``.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import tstr
    >>> rng = np.random.default_rng(0)
    >>> def cohort(n, shift):
    ...     return rng.normal(shift, 1.0, size=(n, 3))
    >>> scores = tstr(cohort(100, 0.0), cohort(100, 1.0), cohort(100, 0.0), cohort(100, 1.0), random_state=0)
    >>> {k: round(v, 2) for k, v in scores.items()}
    {'tstr_auc': 0.81, 'trtr_auc': 0.81, 'ratio': 1.0}
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    (sb, st, rb, rt), _ = check_tables(
        synth_background=synth_background, synth_target=synth_target, real_background=real_background,
        real_target=real_target,
    )
    state = seed_from(random_state)
    x_real, y_real = np.vstack([rb, rt]), np.r_[np.zeros(len(rb), int), np.ones(len(rt), int)]
    x_train, x_test, y_train, y_test = train_test_split(
        x_real, y_real, test_size=test_size, stratify=y_real, random_state=state
    )
    x_synth, y_synth = np.vstack([sb, st]), np.r_[np.zeros(len(sb), int), np.ones(len(st), int)]
    scores = {}
    for name, (x, y) in {"tstr_auc": (x_synth, y_synth), "trtr_auc": (x_train, y_train)}.items():
        model = make_classifier(classifier, state).fit(x, y)
        scores[name] = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
    scores["ratio"] = scores["tstr_auc"] / scores["trtr_auc"]
    return scores
