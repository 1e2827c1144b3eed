"""The MUSE ROI dictionary, and reading ROI tables written with any of the ecosystem's namings."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib.resources import files

import pandas as pd

from ..io import read_table

_INDEX_LABEL = re.compile(r"(?:(?:H_|DL_)?MUSE_(?:Volume_)?)?(\d+)", re.IGNORECASE)
_ALIASES = {  # other spellings of single ROIs (muse_dict.csv, DLMUSE centile tables)
    "CorpCall": "CorpusCallosum",
    **{
        f"{old}_{h}": f"{new}_{h}"
        for old, new in [
            ("PosteriorLimbInternalCapsuleIncCerebralPeduncle", "PosteriorLimbInternalCapsule"),
            ("Superior_parietalLobule", "SuperiorParietalLobule"),
        ]
        for h in "LR"
    },
}


@functools.cache
def _dictionary() -> pd.DataFrame:
    with files("roisynth.data").joinpath("muse_rois.csv").open() as f:
        return pd.read_csv(f)


@functools.cache
def _lookups() -> tuple[dict[int, str], dict[str, str], frozenset[str]]:
    """(index -> name for all ROIs, lower-case single name or alias -> name, derived names)."""
    table = _dictionary()
    single = table.loc[table["tissue"] != "derived", "name"]
    by_name = {name.lower(): name for name in single}
    by_name.update({alias.lower(): name for alias, name in _ALIASES.items()})
    derived = frozenset(table.loc[table["tissue"] == "derived", "name"])
    return dict(zip(table["index"].astype(int), table["name"])), by_name, derived


def base_name(name: str) -> str:
    """ROI name without its hemisphere suffix: ``Hippocampus_R`` -> ``Hippocampus``.

    Parameters
    ----------
    name : str
        A ROI name; names that do not end in ``_L`` or ``_R`` are returned unchanged.

    Returns
    -------
    str
        The name without ``_L`` / ``_R``.

    Examples
    --------
    >>> from roisynth.datasets.muse import base_name
    >>> base_name("Hippocampus_R"), base_name("BrainStem")
    ('Hippocampus', 'BrainStem')
    """
    return name[:-2] if name.endswith(("_L", "_R")) else name


def muse_rois(include_ventricles: bool = False, include_derived: bool = False) -> pd.DataFrame:
    """The MUSE ROI dictionary: ``index, name, hemisphere (L/R/NaN), tissue, lobe``.

    By default the 139 single ROIs of the usual analysis set (119 GM, 19 WM, brain stem);
    ``include_ventricles`` adds the 6 ventricular ROIs (CSF, 145 in all) and
    ``include_derived`` the derived ROIs (index >= 300, e.g. 601 GM, 702 ICV; tissue
    ``"derived"``). Rows are sorted by MUSE index.

    Parameters
    ----------
    include_ventricles : bool, default=False
        Add the 6 ventricular ROIs (tissue ``"CSF"``).
    include_derived : bool, default=False
        Add the derived ROIs (sums of single ROIs, index >= 300).

    Returns
    -------
    DataFrame
        One row per ROI with columns ``index, name, hemisphere, tissue, lobe``.

    Examples
    --------
    >>> from roisynth.datasets import muse_rois
    >>> table = muse_rois()
    >>> len(table), len(muse_rois(include_ventricles=True))
    (139, 145)
    >>> table.head(2)
       index             name hemisphere tissue         lobe
    0     23  AccumbensArea_R          R     GM  subcortical
    1     30  AccumbensArea_L          L     GM  subcortical
    """
    table = _dictionary()
    keep = pd.Series(True, index=table.index)
    if not include_derived:
        keep &= table["tissue"] != "derived"
    if not include_ventricles:
        keep &= table["tissue"] != "CSF"
    return table[keep].reset_index(drop=True)


def roi_names(include_ventricles: bool = False) -> list[str]:
    """Canonical ROI column names (MUSE names in index order): 139, or 145 with ventricles.

    Parameters
    ----------
    include_ventricles : bool, default=False
        Add the 6 ventricular ROIs.

    Returns
    -------
    list of str
        The ROI names, ordered by MUSE index.

    Examples
    --------
    >>> from roisynth.datasets import roi_names
    >>> names = roi_names()
    >>> len(names), names[:3]
    (139, ['AccumbensArea_R', 'AccumbensArea_L', 'Amygdala_R'])
    """
    return muse_rois(include_ventricles)["name"].tolist()


def roi_columns(table: pd.DataFrame, include_ventricles: bool = True) -> list[str]:
    """The columns of ``table`` that are MUSE single ROIs, in table order (error if none).

    Columns must carry canonical MUSE names (see :func:`read_rois` to rename other namings).

    Parameters
    ----------
    table : DataFrame
        A table whose columns include ROI volumes.
    include_ventricles : bool, default=True
        Count the ventricular ROIs as ROI columns.

    Returns
    -------
    list of str
        The ROI columns, in the order of ``table``.

    Raises
    ------
    ValueError
        If no column is a MUSE ROI.

    Examples
    --------
    >>> from roisynth.datasets import load_example, roi_columns
    >>> columns = roi_columns(load_example())
    >>> len(columns), columns[0]
    (145, '3rdVentricle')
    """
    known = set(roi_names(include_ventricles=include_ventricles))
    found = [c for c in table.columns if c in known]
    if not found:
        raise ValueError("no MUSE ROI columns found in the table; name them with rois=[...]")
    return found


def canonical_roi_name(label) -> str | None:
    """MUSE name for a column label, or ``None`` when the label is not a ROI.

    Index labels (``47``, ``"47"``, ``MUSE_47``, ``MUSE_Volume_47``, ``H_MUSE_Volume_47``,
    ``DL_MUSE_Volume_47``, any case) map single and derived ROIs to their dictionary name; names
    of single ROIs match case-insensitively (also muse_dict/centile-table spellings); derived
    names match exactly, so a covariate ``icv`` is not taken for the derived ROI ``ICV``.

    Parameters
    ----------
    label : int or str
        A column label.

    Returns
    -------
    str or None
        The MUSE name, or None when ``label`` names no ROI.

    Examples
    --------
    >>> from roisynth.datasets import canonical_roi_name
    >>> canonical_roi_name("DL_MUSE_Volume_47"), canonical_roi_name("hippocampus_r")
    ('Hippocampus_R', 'Hippocampus_R')
    >>> canonical_roi_name("age") is None
    True
    """
    by_index, by_name, derived = _lookups()
    if isinstance(label, int) and not isinstance(label, bool):
        return by_index.get(label)
    text = str(label).strip()
    match = _INDEX_LABEL.fullmatch(text)
    if match:
        return by_index.get(int(match.group(1)))
    return by_name.get(text.lower(), text if text in derived else None)


def read_rois(path_or_df, rois: Sequence | None = None) -> pd.DataFrame:
    """Read a ROI table (CSV, Parquet or DataFrame) and rename its ROI columns to MUSE names.

    ROI columns are recognised with :func:`canonical_roi_name`; other columns (participant_id,
    age, sex, site, icv, diagnosis, ...) are kept unchanged. Two columns naming the same ROI
    are a ``ValueError``. With ``rois`` (any naming), the result keeps the other columns
    (derived ROIs such as ICV included) followed by exactly these single or derived ROIs, in
    that order; unknown or missing ROIs are a ``ValueError``.
    The input DataFrame is not modified.

    Parameters
    ----------
    path_or_df : str, path-like or DataFrame
        A CSV or Parquet file, or a DataFrame.
    rois : sequence of str or int, default=None
        The ROIs to keep (names or MUSE indices, any naming); None keeps every column.

    Returns
    -------
    DataFrame
        The table with ROI columns renamed to MUSE names; ``attrs["roi_labels"]`` maps each
        renamed ROI to its label in the source (kept by row selections), so that outputs can
        be written back in the source's convention (``roisynth fit`` does).

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.datasets import read_rois
    >>> table = pd.DataFrame({"participant_id": ["a", "b"], "MUSE_47": [3.1, 3.3], "MUSE_48": [3.0, 3.2]})
    >>> read_rois(table)
      participant_id  Hippocampus_R  Hippocampus_L
    0              a            3.1            3.0
    1              b            3.3            3.2
    >>> list(read_rois(table, rois=["Hippocampus_L"]).columns)
    ['participant_id', 'Hippocampus_L']
    """
    table = read_table(path_or_df)
    renames: dict = {}
    source_of: dict[str, object] = {}
    for column in table.columns:
        name = canonical_roi_name(column)
        if name is None:
            continue
        if name in source_of:
            raise ValueError(f"columns {source_of[name]!r} and {column!r} both name ROI {name!r}")
        source_of[name] = column
        renames[column] = name
    table = table.rename(columns=renames)
    table.attrs["roi_labels"] = {name: column for column, name in renames.items() if column != name}
    if rois is None:
        return table
    wanted = [canonical_roi_name(roi) for roi in rois]
    unknown = [roi for roi, name in zip(rois, wanted) if name is None]
    if unknown:
        raise ValueError(f"rois: {unknown} are not MUSE ROI names or indices")
    if len(set(wanted)) < len(wanted):
        raise ValueError(f"rois: {list(rois)} names some ROIs twice")
    missing = [roi for roi, name in zip(rois, wanted) if name not in source_of]
    if missing:
        raise ValueError(f"rois: {missing} are missing from the table")
    drop = set(wanted) | set(roi_names(include_ventricles=True))
    return table[[column for column in table.columns if column not in drop] + wanted]
