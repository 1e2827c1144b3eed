"""Tables on disk and the table layouts of roisynth's commands.

- :func:`read_table`, :func:`write_table`: CSV (optionally gzipped) or Parquet, chosen by the
  file's extension;
- :func:`read_cohorts`, :func:`select_rows`, :func:`select_rois`: the (background, target)
  cohorts and ROI columns of a user's tables, as ``roisynth fit``, ``benchmark`` and ``report``
  read them;
- :func:`sample_table`, :func:`read_synthetic`: synthetic subjects in the long layout
  ``roisynth sample`` writes, and back; :func:`counterfactual_table`: twins of a whole table,
  other columns kept (``roisynth counterfactual``).

Only pandas is imported here: the model code is imported by the functions that need it.
"""

from __future__ import annotations

import os

import pandas as pd

_CSV = (".csv", ".csv.gz")
_PARQUET = (".parquet", ".pq")


def _kind(path) -> str:
    name = os.fspath(path).lower()
    if name.endswith(_CSV):
        return "csv"
    if name.endswith(_PARQUET):
        return "parquet"
    extension = os.path.splitext(name)[1] or "(none)"
    raise ValueError(f"{os.fspath(path)!r}: extension {extension} is not one of {', '.join(_CSV + _PARQUET)}")


def _where(source) -> str:
    """How an error names a table: its path, or "the table" for a DataFrame."""
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the table"


def read_table(source) -> pd.DataFrame:
    """A table from a CSV or Parquet file, or a copy of a DataFrame.

    Parameters
    ----------
    source : str, path or DataFrame
        A file ending in ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``, or a DataFrame.

    Returns
    -------
    DataFrame
        The table (a copy when ``source`` is a DataFrame).

    Raises
    ------
    ValueError
        If the extension is not one of those above, or the file is empty, not a CSV (an Excel
        workbook renamed ``.csv``, binary content, a CSV separated by semicolons or tabs) or not
        a readable Parquet file, naming the file and the problem.
    FileNotFoundError
        If there is no file at ``source``.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.io import read_table
    >>> read_table(pd.DataFrame({"Hippocampus_L": [3.1]})).shape
    (1, 1)
    """
    if isinstance(source, pd.DataFrame):
        return source.copy()
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a DataFrame or a path to a CSV/Parquet file, got {type(source).__name__}")
    kind = _kind(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no table at {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a folder, not a table file")
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise ValueError(f"{path!r} is empty: no header, no rows")
    if kind == "parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow's errors of every flavour: the file is not a Parquet table
            raise ValueError(f"{path!r} is not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValueError(f"{path!r} is an Excel workbook (or another zip/OLE file), not a CSV file: save it as CSV "
                         "(comma-separated) or Parquet")
    try:
        table = pd.read_csv(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path!r} is not a UTF-8 text CSV file ({exc.reason} at byte {exc.start})") from exc
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path!r} is not a well-formed CSV file ({' '.join(str(exc).split())})") from exc
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path!r} holds no columns (an empty or blank CSV file)") from None
    if len(table.columns) == 1:
        header = str(table.columns[0])
        separator = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes"))
                          if sep in header), None)
        if separator:
            raise ValueError(f"{path!r} looks separated by {separator}, not commas (its header is {header[:60]!r}): "
                             "roisynth reads comma-separated CSV; convert it, e.g. "
                             "pd.read_csv(path, sep=';', decimal=',').to_csv(new_path, index=False)")
    return table


def write_table(df: pd.DataFrame, path) -> None:
    """Write ``df`` without its index to a CSV or Parquet file, chosen by the extension.

    Parameters
    ----------
    df : DataFrame
        The table to write.
    path : str or path
        File ending in ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``; missing folders are created.
        The file is written whole or not at all (:func:`roisynth.utils.atomic.atomic_output`): a
        failed write leaves a file already at ``path`` as it was.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from roisynth.io import read_table, write_table
    >>> path = os.path.join(tempfile.mkdtemp(), "rois.csv")
    >>> write_table(pd.DataFrame({"Hippocampus_L": [3.1, 2.9]}), path)
    >>> read_table(path)["Hippocampus_L"].tolist()
    [3.1, 2.9]
    """
    from .utils.atomic import atomic_output

    kind = _kind(path)
    with atomic_output(path) as tmp:
        if kind == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)


def split_list(labels) -> tuple[str, ...]:
    """Labels or column names from a comma-separated string (``"MCI, AD"``) or a sequence, stripped,
    empty ones dropped: how the CLI's list options and the ``labels``/``rois`` arguments here are read.

    Parameters
    ----------
    labels : str or sequence
        ``"a, b,c"`` or ``["a", "b"]``.

    Returns
    -------
    tuple of str
        The labels, in order.

    Examples
    --------
    >>> from roisynth.io import split_list
    >>> split_list("MCI, AD,"), split_list(["CN", " MCI"])
    (('MCI', 'AD'), ('CN', 'MCI'))
    """
    parts = labels.split(",") if isinstance(labels, str) else labels
    return tuple(str(label).strip() for label in parts if str(label).strip())


def parse_conditions(items) -> dict:
    """Covariate conditions from ``COLUMN=VALUE`` texts (``roisynth sample --condition``).

    ``age=70:80`` is the range 70 ≤ age < 80 (``age=70:`` and ``age=:80`` leave an end open),
    ``site=site1,site2`` any of these values, and one value (a number where it reads as one)
    fixes the column; see :meth:`roisynth.SynthesisPipeline.sample`.

    Parameters
    ----------
    items : sequence of str
        The conditions, one ``COLUMN=VALUE`` each.

    Returns
    -------
    dict
        Column → value, list of values, or ``(low, high)`` range.

    Raises
    ------
    ValueError
        For a text without ``=``, an empty column, a column given twice or a range whose ends
        are not numbers.

    Examples
    --------
    >>> from roisynth.io import parse_conditions
    >>> parse_conditions(["sex=F", "age=70:80", "site=site1,site2", "icv=:1.5e6", "apoe4=1"])
    {'sex': 'F', 'age': (70.0, 80.0), 'site': ['site1', 'site2'], 'icv': (None, 1500000.0), 'apoe4': 1.0}
    """
    def number(text):
        try:
            return float(text)
        except ValueError:
            return text

    conditions = {}
    for item in items:
        column, equals, value = str(item).partition("=")
        column = column.strip()
        if not equals or not column or not value.strip():
            raise ValueError(f"condition {item!r} is not COLUMN=VALUE (e.g. sex=F, age=70:80, site=site1,site2)")
        if column in conditions:
            raise ValueError(f"condition: column {column!r} is given twice")
        value = value.strip()
        if ":" in value:
            ends = [number(end) if end.strip() else None for end in value.split(":", 1)]
            if any(isinstance(end, str) for end in ends):
                raise ValueError(f"condition {item!r}: the ends of a range LOW:HIGH must be numbers")
            conditions[column] = tuple(ends)
        elif "," in value:
            conditions[column] = [number(v.strip()) for v in value.split(",")]
        else:
            conditions[column] = number(value)
    return conditions


def select_rows(table: pd.DataFrame, column: str, labels) -> pd.DataFrame:
    """The rows of ``table`` whose ``column`` holds one of ``labels``.

    Parameters
    ----------
    table : DataFrame
        A table with a group column (e.g. diagnosis).
    column : str
        Name of the group column; its values are compared as strings.
    labels : str or sequence of str
        The labels to keep, as a sequence or one comma-separated string (``"MCI,AD"``).

    Returns
    -------
    DataFrame
        The matching rows, in table order, with their index.

    Raises
    ------
    ValueError
        If ``table`` has no column ``column`` or no row matches.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.io import select_rows
    >>> table = pd.DataFrame({"diagnosis": ["CN", "AD", "MCI", "CN"], "Hippocampus_L": [3.1, 2.5, 2.8, 3.0]})
    >>> select_rows(table, "diagnosis", "MCI,AD").index.tolist()
    [1, 2]
    """
    if column not in table.columns:
        raise ValueError(f"the table has no group column {column!r} (group_column, --group-column)")
    wanted = split_list(labels)
    rows = table[table[column].astype(str).isin(wanted)]
    if rows.empty:
        raise ValueError(f"no rows with {column} in {','.join(wanted)!r}")
    return rows


def read_cohorts(tables, group_column: str = "diagnosis", background="CN", target="MCI,AD"
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (background, target) cohorts from two tables, or from one table split by a group column.

    Every table is read with :func:`roisynth.datasets.read_rois`, so ROI columns get their MUSE
    names and the other columns (site, age, sex, ...) are kept.

    Parameters
    ----------
    tables : str, path, DataFrame, or a list or tuple of one or two of them
        Two tables: the background (healthy) and target (patient) cohorts, in that order. One
        table: split into the rows whose ``group_column`` is in ``background`` and those in
        ``target``.
    group_column : str, default="diagnosis"
        Column holding the group of each row (one table only).
    background : str or sequence of str, default="CN"
        Labels of the background cohort, a sequence or one comma-separated string.
    target : str or sequence of str, default="MCI,AD"
        Labels of the target cohort.

    Returns
    -------
    background : DataFrame
    target : DataFrame

    Raises
    ------
    ValueError
        If there are more than two tables, or one table lacks ``group_column`` or a cohort's labels.

    Examples
    --------
    >>> from roisynth import datasets
    >>> from roisynth.io import read_cohorts
    >>> cohort = datasets.load_example()
    >>> healthy, patients = read_cohorts(cohort, background="CN", target=["AD"])
    >>> sorted(set(healthy.diagnosis)), sorted(set(patients.diagnosis))
    (['CN'], ['AD'])
    """
    from .datasets import read_rois

    tables = list(tables) if isinstance(tables, (list, tuple)) else [tables]
    if len(tables) not in (1, 2):
        raise ValueError(f"tables must be one table or a (background, target) pair, got {len(tables)} tables")
    if len(tables) == 2:
        return read_rois(tables[0]), read_rois(tables[1])
    table = read_rois(tables[0])
    if group_column not in table.columns:
        raise ValueError(f"one table given: it needs the group column {group_column!r} (group_column, --group-column)")
    return select_rows(table, group_column, background), select_rows(table, group_column, target)


#: Columns that :func:`select_rois` never takes for ROIs with ``rois="numeric"`` (compared in lower case).
COVARIATES = frozenset({"participant_id", "id", "site", "age", "sex", "icv", "diagnosis", "dx", "group", "cohort"})


def select_rois(table: pd.DataFrame, rois="muse") -> list[str]:
    """The ROI columns of ``table`` to model.

    Parameters
    ----------
    table : DataFrame
        A table of subjects (e.g. read with :func:`read_cohorts`).
    rois : {"muse", "numeric"}, str or sequence of str, default="muse"
        ``"muse"``: the 139 usual MUSE ROIs found in the table, in MUSE order; ``"numeric"``:
        every numeric column but the usual covariates (:data:`COVARIATES`); otherwise the
        columns themselves, as a sequence or one comma-separated string (a ROI may be named
        in any MUSE convention, :func:`roisynth.datasets.canonical_roi_name`).

    Returns
    -------
    list of str
        Column names.

    Raises
    ------
    ValueError
        If no MUSE ROI is found, or named columns are missing.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.io import select_rois
    >>> table = pd.DataFrame({"age": [70.0], "Hippocampus_R": [3.2], "Hippocampus_L": [3.1], "score": [1.0]})
    >>> select_rois(table)  # MUSE order
    ['Hippocampus_R', 'Hippocampus_L']
    >>> select_rois(table, "numeric")
    ['Hippocampus_R', 'Hippocampus_L', 'score']
    >>> select_rois(table, "score,age")
    ['score', 'age']
    """
    if isinstance(rois, str) and rois == "muse":
        from .datasets import roi_names

        found = [c for c in roi_names() if c in table.columns]
        if not found:
            raise ValueError("rois='muse': no MUSE ROI columns found; name them (rois='col1,col2', --rois col1,col2) "
                             "or take every numeric column (rois='numeric', --rois numeric)")
        return found
    if isinstance(rois, str) and rois == "numeric":
        numeric = pd.api.types.is_numeric_dtype
        return [c for c in table.columns if str(c).lower() not in COVARIATES and numeric(table[c])]
    from .datasets import canonical_roi_name

    # a ROI named in another MUSE convention (47, DL_MUSE_Volume_47) than the table's names the same column
    wanted = [c if c in table.columns else canonical_roi_name(c) or c for c in split_list(rois)]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ValueError(f"rois: columns {missing} are not in the table")
    return wanted


def read_synthetic(source) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (background, target) tables of a synthetic table with a ``cohort`` column.

    This is the layout ``roisynth sample`` writes (and :func:`~roisynth.utils.frames.long_pairs`
    builds): one row per synthetic subject and cohort, ``cohort`` being ``background`` or
    ``target``. ROI columns get their MUSE names (:func:`roisynth.datasets.read_rois`).

    Parameters
    ----------
    source : str, path or DataFrame
        The synthetic table, or the CSV/Parquet file that holds it.

    Returns
    -------
    background : DataFrame
    target : DataFrame

    Raises
    ------
    ValueError
        If the table has no ``cohort`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.io import read_synthetic
    >>> table = pd.DataFrame({"synthetic_id": [0, 0], "cohort": ["background", "target"], "Hippocampus_L": [3.1, 2.6]})
    >>> background, target = read_synthetic(table)
    >>> float(background.Hippocampus_L.iloc[0]), float(target.Hippocampus_L.iloc[0])
    (3.1, 2.6)
    """
    from .datasets import read_rois

    table = read_table(source)
    if "cohort" not in table.columns:
        raise ValueError(f"{_where(source)} is not a synthetic table: it needs a 'cohort' column (background/target), "
                         "as `roisynth sample` writes")
    return tuple(read_rois(table[table["cohort"] == cohort]) for cohort in ("background", "target"))


def conform_rois(table: pd.DataFrame, names) -> pd.DataFrame:
    """``table`` with its ROI columns renamed to ``names`` where they name the same MUSE ROI.

    A model fitted on ``DL_MUSE_Volume_47``-style or numeric (``47``) columns keeps those names;
    a table read with :func:`roisynth.datasets.read_rois` has ``Hippocampus_R``-style names.
    Each of ``names`` missing from ``table`` is matched by :func:`roisynth.datasets.canonical_roi_name`
    to a column of ``table`` naming the same ROI; other columns are left as they are.

    Parameters
    ----------
    table : DataFrame
        A table of subjects.
    names : sequence
        The column names wanted (a model's ``feature_names_in_``, a synthetic table's columns).

    Returns
    -------
    DataFrame
        ``table`` with the matched columns renamed (a new frame; ``table`` is not modified).

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.io import conform_rois
    >>> table = pd.DataFrame({"age": [70.2], "Hippocampus_R": [3.1]})
    >>> conform_rois(table, ["age", "47"]).columns.tolist()
    ['age', '47']
    """
    from .datasets import canonical_roi_name

    present = set(table.columns)
    by_roi = {roi: c for c in table.columns if (roi := canonical_roi_name(c)) is not None}
    renames = {}
    for name in names:
        roi = None if name in present else canonical_roi_name(name)
        if roi is not None and roi in by_roi and by_roi[roi] not in renames:
            renames[by_roi[roi]] = name
    return table.rename(columns=renames)


def sample_table(model, n: int, cohort: str = "paired", site=None, random_state=None, conditions=None
                 ) -> pd.DataFrame:
    """Synthetic subjects of a fitted model as one long table, the layout ``roisynth sample`` writes.

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model (e.g. from :func:`roisynth.load`).
    n : int
        Number of synthetic subjects (of pairs for ``cohort="paired"``).
    cohort : {"paired", "both", "background", "target"}, default="paired"
        ``"paired"``: every synthetic person twice, background row first (pairing models only);
        ``"both"``: ``n`` subjects of each cohort, drawn independently; otherwise ``n``
        subjects of that cohort.
    site : str, default=None
        Pipeline models only: every subject at this site, or ``"harmonized"``; None: each at
        its drawn site.
    random_state : int, default=None
        Seed of the draw.
    conditions : dict or DataFrame, default=None
        Pipeline models only: conditions on the drawn covariates
        (:meth:`roisynth.SynthesisPipeline.sample`).

    Returns
    -------
    DataFrame
        ``synthetic_id, cohort`` then the model's columns (covariates and ROIs), read back
        by :func:`read_synthetic`.

    Raises
    ------
    ValueError
        If ``site`` is given for a model that is not a pipeline, or the table would not fit in
        the memory available (:func:`roisynth.utils.validation.check_sample_size`).

    Examples
    --------
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.io import sample_table
    >>> cohort = datasets.load_example()
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(cohort.loc[cohort.diagnosis == "CN", ["Hippocampus_L"]],
    ...                                                        cohort.loc[cohort.diagnosis == "AD", ["Hippocampus_L"]])
    >>> sample_table(model, 3, cohort="target", random_state=0).columns.tolist()
    ['synthetic_id', 'cohort', 'Hippocampus_L']
    """
    from .base import COHORTS
    from .pipeline import SynthesisPipeline
    from .utils.frames import long_pairs
    from .utils.validation import check_choice, check_random_state, check_sample_size

    check_choice(cohort, "cohort", ("paired", "both", *COHORTS))
    check_sample_size(n * (1 if cohort in COHORTS else 2), len(model.feature_names_in_) + 4)
    options = {"random_state": random_state}
    if isinstance(model, SynthesisPipeline):
        options |= {"site": site, "conditions": conditions}
    elif site is not None or conditions is not None:
        raise ValueError("site and conditions (--site, --condition) need a pipeline model, fitted with "
                         "--harmonize or --residualize")
    if cohort == "paired":
        return long_pairs(*model.sample_paired(n, **options), names=COHORTS)
    names = COHORTS if cohort == "both" else (cohort,)
    rng = check_random_state(random_state)
    seeds = [random_state] if len(names) == 1 else [rng.randint(2**31) for _ in names]
    tables = []
    for name, seed in zip(names, seeds):
        table = model.sample(n, cohort=name, **(options | {"random_state": seed}))
        table = table.rename_axis("synthetic_id").reset_index().assign(cohort=name)
        tables.append(table[["synthetic_id", "cohort", *table.columns[1:-1]]])
    return pd.concat(tables, ignore_index=True)


#: Synthetic subjects (pairs) drawn per block by :func:`iter_samples`: the unit of seeding, so a seed
#: gives the same rows whatever the size of the chunks they are written in.
BLOCK = 65_536


def iter_samples(model, n: int, cohort: str = "paired", *, site=None, conditions=None, random_state=None):
    """:func:`sample_table`'s rows in blocks of :data:`BLOCK` subjects (pairs), in bounded memory.

    Block ``i`` is drawn with its own seed, derived from ``random_state`` and ``i``
    (``numpy.random.SeedSequence``), and its ``synthetic_id`` continue those of the block
    before: the rows depend on ``random_state`` and ``n`` only, not on how they are consumed.
    Paired blocks are laid out as :func:`sample_table` lays them out (each person's background
    row, then its target row), built column by column; a neural synthesizer (ContrastiveVAE,
    ConditionalVAE) draws each cached chunk of pairs straight into the block's columns.

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model.
    n : int
        Synthetic subjects (pairs for ``cohort="paired"``, per cohort for ``"both"``); with a
        DataFrame of ``conditions``, ``n`` must equal its length.
    cohort, site : see :func:`sample_table`
    conditions : dict or DataFrame, default=None
        See :func:`sample_table`; a DataFrame is cut into the blocks' rows.
    random_state : int, default=None
        Seed of the whole draw (None: fresh entropy).

    Yields
    ------
    DataFrame
        The next block's rows, columns as :func:`sample_table`.

    Examples
    --------
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.io import iter_samples
    >>> cohort = datasets.load_example()
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(cohort.loc[cohort.diagnosis == "CN", ["Amygdala_L"]],
    ...                                                        cohort.loc[cohort.diagnosis == "AD", ["Amygdala_L"]])
    >>> [len(block) for block in iter_samples(model, 70_000, cohort="target", random_state=0)]
    [65536, 4464]
    """
    yield from _blocks(model, n, cohort, site, conditions, random_state)


def _blocks(model, n: int, cohort: str, site, conditions, random_state, reuse: bool = False):
    """:func:`iter_samples`' blocks; with ``reuse``, the float columns of paired blocks of a neural
    synthesizer are written into two buffers used in turn, so a block's values are overwritten
    two blocks later (for :func:`write_samples`, which has written a block by then): no fresh
    memory, and its page faults, for every block."""
    import numpy as np

    from .base import COHORTS
    from .pipeline import SynthesisPipeline
    from .utils.validation import seed_from

    if isinstance(conditions, pd.DataFrame) and n != len(conditions):
        raise ValueError(f"n={n} differs from the {len(conditions)} rows of conditions")
    pipeline = isinstance(model, SynthesisPipeline)
    # other requests, and a site or conditions given to a bare synthesizer (its error), go through sample_table
    interleave = cohort == "paired" and (pipeline or (site is None and conditions is None))
    # a neural synthesizer draws each cached chunk straight into the block's columns
    fill = getattr(model, "_sample_paired_into", None) if interleave and not pipeline else None
    buffers, labels = [], {}
    seed = seed_from(random_state)
    for index, start in enumerate(range(0, n, BLOCK)):
        size = min(BLOCK, n - start)
        block_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        given = conditions.iloc[start:start + size] if isinstance(conditions, pd.DataFrame) else conditions
        if not interleave:
            table = sample_table(model, size, cohort, site=site, random_state=block_seed, conditions=given)
            table["synthetic_id"] += start
            yield table
            continue
        ids = np.repeat(np.arange(start, start + size), 2)
        if size not in labels:  # the same cohort column for every block of this size, made once
            labels[size] = pd.Series(np.tile(np.array(COHORTS, dtype=object), size)).array
        if fill is not None:
            columns = list(model.feature_names_in_)
            if not reuse:
                values = np.empty((len(columns), 2 * size), dtype=np.float32)
            else:
                if len(buffers) < 2:
                    buffers.append(np.empty((len(columns), 2 * min(BLOCK, n)), dtype=np.float32))
                values = buffers[index % 2][:, :2 * size]
            fill(size, block_seed, values)
            table = pd.DataFrame(values.T, columns=columns, copy=False)
            table.insert(0, "cohort", labels[size])
            table.insert(0, "synthetic_id", ids)
            yield table
            continue
        options = {"site": site, "conditions": given} if pipeline else {}
        pair = model.sample_paired(size, random_state=block_seed, **options)
        ids = np.repeat(pair[0].index.to_numpy() + start, 2)
        dtypes = set(pair[0].dtypes) | set(pair[1].dtypes)
        if len(dtypes) == 1 and isinstance(dtype := dtypes.pop(), np.dtype) and dtype.kind in "biuf":
            # one numeric block (a bare synthesizer's ROIs): written transposed, in slabs that stay in
            # cache, so that every column is contiguous (pandas' and Parquet's layout)
            values = np.empty((pair[0].shape[1], 2 * size), dtype=dtype)
            rows = [frame.to_numpy() for frame in pair]
            for lo in range(0, size, 4096):
                hi = min(size, lo + 4096)
                values[:, 2 * lo:2 * hi:2], values[:, 2 * lo + 1:2 * hi:2] = rows[0][lo:hi].T, rows[1][lo:hi].T
            table = pd.DataFrame(values.T, columns=pair[0].columns, copy=False)
            table.insert(0, "cohort", labels[size])
            table.insert(0, "synthetic_id", ids)
            yield table
            continue
        columns = {"synthetic_id": ids, "cohort": labels[size]}
        order = np.arange(2 * size).reshape(2, size).T.ravel()  # row 2i = background i, 2i + 1 = target i
        for name in pair[0].columns:  # mixed columns (a pipeline's covariates): one at a time
            first, second = pair[0][name], pair[1][name]
            if isinstance(first.dtype, np.dtype) and first.dtype == second.dtype and first.dtype.kind in "biuf":
                column = np.empty(2 * size, dtype=first.dtype)
                column[0::2], column[1::2] = first.to_numpy(), second.to_numpy()
            else:  # strings, categories: pandas keeps their dtype
                column = pd.concat([first, second], ignore_index=True).take(order).reset_index(drop=True)
            columns[name] = column
        yield pd.DataFrame(columns, copy=False)


def write_samples(model, n: int, path, cohort: str = "paired", *, site=None, conditions=None, random_state=None,
                  progress: bool = False) -> int:
    """Draw and write a synthetic table of any size in bounded memory (``roisynth sample``).

    Rows are drawn by :func:`iter_samples` one block at a time and appended to the file — a
    Parquet row group or CSV lines per block — so memory holds two blocks, whatever ``n``: one
    block is written by a second thread while the next is drawn (a neural synthesizer's paired
    blocks are drawn into two buffers used in turn). Parquet tables are made from the blocks'
    arrays without copying them. Floating-point columns are written plain, declared without
    nulls, without compression or statistics (random floats do not compress; dictionary
    attempts made files 1.5 times larger and writes 6 times slower; definition levels and
    statistics doubled the cost of writing them); ``synthetic_id`` is delta-encoded, the other
    columns are dictionary-encoded and snappy-compressed. The file is written whole or not at
    all (:func:`roisynth.utils.atomic.atomic_output`).

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model.
    n : int
        Synthetic subjects (pairs for ``cohort="paired"``).
    path : str or path
        ``.parquet``/``.pq``, ``.csv`` or ``.csv.gz`` file.
    cohort, site, conditions, random_state : see :func:`iter_samples`
    progress : bool, default=False
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    int
        Rows written.

    Examples
    --------
    >>> import os, tempfile
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.io import read_table, write_samples
    >>> cohort = datasets.load_example()
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(cohort.loc[cohort.diagnosis == "CN", ["Amygdala_L"]],
    ...                                                        cohort.loc[cohort.diagnosis == "AD", ["Amygdala_L"]])
    >>> path = os.path.join(tempfile.mkdtemp(), "synthetic.parquet")
    >>> write_samples(model, 1000, path, cohort="both", random_state=0), len(read_table(path))
    (2000, 2000)
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from .utils.atomic import atomic_output
    from .utils.validation import check_disk_space, check_sample_size

    kind = _kind(path)
    rows_per_subject = 1 if cohort in ("background", "target") else 2
    check_sample_size(min(n, BLOCK) * rows_per_subject, len(model.feature_names_in_) + 4)
    check_disk_space(path, n * rows_per_subject, len(model.feature_names_in_) + 6, kind)
    written = 0
    with atomic_output(path) as tmp, tqdm(total=n, unit="subjects", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=1) as pool:
        writer, schema, pending = None, None, None

        def write(block: pd.DataFrame, first: bool) -> None:
            nonlocal writer, schema
            if kind == "csv":
                block.to_csv(tmp, index=False, mode="w" if first else "a", header=first)
                return
            if writer is None:
                schema = _parquet_schema(block)
                floats = [f.name for f in schema if pa.types.is_floating(f.type)]
                others = [name for name in schema.names if name not in floats]
                ids = ["synthetic_id"] if pa.types.is_integer(schema.field("synthetic_id").type) else []
                writer = pq.ParquetWriter(tmp, schema, compression={n: "none" if n in floats else "snappy"
                                                                    for n in schema.names},
                                          use_dictionary=[n for n in others if n not in ids], write_statistics=others,
                                          column_encoding={n: "DELTA_BINARY_PACKED" for n in ids} or None)
            writer.write_table(_arrow_table(block, schema), row_group_size=len(block))

        try:
            for block in _blocks(model, n, cohort, site, conditions, random_state, reuse=True):
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, block, not written)
                written += len(block)
                bar.update(len(block) // rows_per_subject)
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                pending.exception()  # the last write has finished (or failed) before the file closes
            if writer is not None:
                writer.close()
    return written


def _parquet_schema(block: pd.DataFrame):
    """The Arrow schema of ``block`` (with pandas' metadata, so that it reads back with the same
    dtypes) whose float columns are declared without nulls: Parquet then writes no definition
    levels for them, a third of the cost of writing floats (NaN is a value, not a null)."""
    import numpy as np
    import pyarrow as pa

    schema = pa.Schema.from_pandas(block.head(0), preserve_index=False)
    numpy_floats = {name for name, dtype in block.dtypes.items() if isinstance(dtype, np.dtype) and dtype.kind == "f"}
    fields = [f.with_nullable(False) if f.name in numpy_floats else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _arrow_table(block: pd.DataFrame, schema):
    """``block`` as an Arrow table of ``schema`` without copying its numeric columns (numpy arrays
    are wrapped; ``pa.Table.from_pandas`` copied every float column)."""
    import numpy as np
    import pyarrow as pa

    arrays = []
    for field in schema:
        column = block[field.name]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
            arrays.append(pa.array(column.to_numpy(), type=field.type))
        else:
            arrays.append(pa.array(column, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def counterfactual_table(model, table, to: str = "background", mode: str = "residual", severity: bool = False,
                         random_state=None) -> pd.DataFrame:
    """Twins of every subject of a table in the other cohort, other columns kept (``roisynth counterfactual``).

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model with ``counterfactual`` (and ``severity`` if asked for).
    table : str, path or DataFrame
        Subjects with the model's ROI columns (any MUSE naming, see
        :func:`roisynth.datasets.read_rois`); a pipeline also needs its covariates.
    to : {"background", "target"}, default="background"
        Cohort of the twins.
    mode : {"residual", "decode"}, default="residual"
        Counterfactual mode, see the model's ``counterfactual``.
    severity : bool, default=False
        Add a ``severity`` column (the model's ``severity`` of each subject).
    random_state : int, default=None
        Seed of the counterfactual draw.

    Returns
    -------
    DataFrame
        ``table`` (ROI columns renamed to MUSE names) with the twins' ROI values, plus
        ``severity`` if asked for.

    Raises
    ------
    ValueError
        If ``table`` lacks some of the model's ROI columns.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.io import counterfactual_table
    >>> cohort = datasets.load_example()
    >>> rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L"]
    >>> model = LinearContrastive(n_common=1, n_salient=1, random_state=0).fit(
    ...     cohort.loc[cohort.diagnosis == "CN", rois], cohort.loc[cohort.diagnosis == "AD", rois])
    >>> twins = counterfactual_table(model, cohort[cohort.diagnosis == "AD"].head(2), severity=True)
    >>> len(twins), twins.columns[-1]
    (2, 'severity')
    """
    from .datasets import read_rois
    from .pipeline import SynthesisPipeline
    from .utils.frames import replace_columns

    rois = list(model.feature_names_in_)
    subjects = conform_rois(read_rois(table), rois)
    missing = [c for c in rois if c not in subjects.columns]
    if missing:
        raise ValueError(f"{_where(table)} lacks the model's ROI columns {missing[:5]}")
    options = {"to": to, "mode": mode, "random_state": random_state}
    if isinstance(model, SynthesisPipeline):
        out = model.counterfactual(subjects, **options)
        return out.assign(severity=model.severity(subjects)) if severity else out
    out = replace_columns(subjects, rois, model.counterfactual(subjects[rois], **options).to_numpy())
    return out.assign(severity=model.severity(subjects[rois])) if severity else out
