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
