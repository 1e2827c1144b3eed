"""Shared by the metric modules: table and label checks, seeds, the default classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils.validation import align_columns, check_choice, check_numeric_table, seed_from

CLASSIFIERS = ("logistic", "gradient_boosting")


def check_tables(min_rows: int = 2, **tables) -> tuple[list[np.ndarray], pd.Index]:
    """Validate tables that must share columns; return them as float64 arrays + the columns.

    Each table is a DataFrame or a 2-D array (rows = subjects). DataFrames are matched by
    column name (reordered to the first DataFrame's order; missing or extra columns are an
    error), arrays by position (then the columns are the first DataFrame's, or ``x0, x1, ...``).
    Non-numeric columns, NaN/inf and fewer than ``min_rows`` rows are errors naming the table.
    """
    reference = next(((name, t.columns) for name, t in tables.items() if isinstance(t, pd.DataFrame)), None)
    columns = None if reference is None else reference[1]
    arrays = []
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            frame = align_columns(table, columns, name, reference[0])
        elif isinstance(table, (np.ndarray, list, tuple)):
            arr = np.asarray(table)
            if arr.ndim != 2:
                raise ValueError(f"{name} must be 2-D (subjects x features), got shape {arr.shape}")
            if columns is None:
                columns = pd.Index([f"x{i}" for i in range(arr.shape[1])])
            if arr.shape[1] != len(columns):
                raise ValueError(f"{name} has {arr.shape[1]} columns but the other table(s) have {len(columns)}")
            frame = pd.DataFrame(arr, columns=columns)
        else:
            raise TypeError(f"{name} must be a pandas DataFrame or a 2-D NumPy array, got {type(table).__name__}")
        arrays.append(check_numeric_table(frame, name, min_rows=min_rows, nonnegative=False))
    return arrays, columns


def check_labels(labels, n_rows: int, name: str = "labels") -> np.ndarray:
    """One label per row, no missing values, at least two classes."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"{name} must be 1-D with one entry per row ({n_rows}), got shape {y.shape}")
    if pd.isna(y).any():
        raise ValueError(f"{name} has missing values")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{name} has a single class; at least two are needed")
    return y


def make_classifier(classifier: str, random_state=None):
    """``"logistic"``: standardized features + L2 logistic regression (C = 1);
    ``"gradient_boosting"``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier`."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_choice(classifier, "classifier", CLASSIFIERS)
    if classifier == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return HistGradientBoostingClassifier(random_state=random_state)


def cross_validated_auc(x: np.ndarray, y: np.ndarray, cv: int, classifier: str, random_state) -> float:
    """Mean ROC AUC over stratified, shuffled ``cv`` folds (one-vs-rest macro AUC for > 2 classes)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2, got {cv!r}")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < cv:
        raise ValueError(f"class {classes[counts.argmin()]!r} has {counts.min()} rows, fewer than cv={cv} folds")
    state = seed_from(random_state)
    folds = StratifiedKFold(cv, shuffle=True, random_state=state)
    scoring = "roc_auc" if len(classes) == 2 else "roc_auc_ovr"
    model = make_classifier(classifier, state)
    return float(cross_val_score(model, x, y, cv=folds, scoring=scoring).mean())
