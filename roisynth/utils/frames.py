"""DataFrame helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd


def replace_columns(table: pd.DataFrame, columns, values: np.ndarray) -> pd.DataFrame:
    """A copy of ``table`` with ``columns`` set to ``values``, same column order and index.

    Built in one concatenation: assigning many columns in place fragments the frame.

    Parameters
    ----------
    table : DataFrame
        The table to copy.
    columns : sequence of str
        The columns to replace (all present in ``table``).
    values : ndarray of shape (n_rows, len(columns))
        Their new values.

    Returns
    -------
    DataFrame
        A new table with the columns and index of ``table``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.utils.frames import replace_columns
    >>> table = pd.DataFrame({"age": [70, 80], "roi": [1.0, 2.0]})
    >>> replace_columns(table, ["roi"], np.array([[10.0], [20.0]]))
       age   roi
    0   70  10.0
    1   80  20.0
    """
    columns = list(columns)
    new = pd.DataFrame(values, index=table.index, columns=columns)
    return pd.concat([table.drop(columns=columns), new], axis=1)[list(table.columns)]


def long_pairs(first: pd.DataFrame, second: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """Paired tables (row i of both = one synthetic person) as one long table.

    The result has columns ``synthetic_id, cohort`` and the columns of ``first``, each
    person's two rows together, ``names[0]`` first; ``synthetic_id`` is the index of the
    input tables.

    Parameters
    ----------
    first, second : DataFrame
        The two members of each pair, with the same index and columns.
    names : tuple of (str, str)
        The ``cohort`` labels of ``first`` and ``second``.

    Returns
    -------
    DataFrame
        ``2 * len(first)`` rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.utils.frames import long_pairs
    >>> healthy, disease = pd.DataFrame({"roi": [1.0, 2.0]}), pd.DataFrame({"roi": [0.9, 1.7]})
    >>> long_pairs(healthy, disease, ("background", "target"))
       synthetic_id      cohort  roi
    0             0  background  1.0
    2             0      target  0.9
    1             1  background  2.0
    3             1      target  1.7
    """
    table = pd.concat([first.assign(cohort=names[0]), second.assign(cohort=names[1])])
    table = table.rename_axis("synthetic_id").reset_index().sort_values("synthetic_id", kind="stable")
    return table[["synthetic_id", "cohort", *first.columns]]
