"""DataFrame helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd


def replace_columns(table: pd.DataFrame, columns, values: np.ndarray) -> pd.DataFrame:
    """A copy of ``table`` with ``columns`` set to ``values``, same column order and index.

    Built in one concatenation: assigning many columns in place fragments the frame.
    """
    columns = list(columns)
    new = pd.DataFrame(values, index=table.index, columns=columns)
    return pd.concat([table.drop(columns=columns), new], axis=1)[list(table.columns)]


def long_pairs(first: pd.DataFrame, second: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """Paired tables (row i of both = one synthetic person) as one long table:
    ``synthetic_id, cohort`` and their columns, each person's two rows together, ``names[0]`` first."""
    table = pd.concat([first.assign(cohort=names[0]), second.assign(cohort=names[1])])
    table = table.rename_axis("synthetic_id").reset_index().sort_values("synthetic_id", kind="stable")
    return table[["synthetic_id", "cohort", *first.columns]]
