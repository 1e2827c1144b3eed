"""One self-contained HTML file on a synthetic cohort: the metric table of
:func:`~roisynth.evaluation.evaluate` explained in plain words, and the figures of
:mod:`roisynth.evaluation` (embedded as PNG and also written to a folder)."""

from __future__ import annotations

import base64
import html
import io
import os
import reprlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..base import load
from ..io import read_table
from ..metrics import cohens_d, effect_error, effect_maps, privacy_audit, privacy_flags
from ..metrics.privacy import default_quasi_identifiers
from ..pipeline import SynthesisPipeline
from ..utils.atomic import write_bytes
from ..utils.validation import as_frame, check_numeric_table, seed_from
from . import _figures as figures
from ._evaluate import MIN_EFFECT, _effect_scale, evaluate, latent_codes
from ._report_dp import differential_privacy_html

HIPPOCAMPI = ("Hippocampus_L", "Hippocampus_R")
N_ROIS = 6
N_PAIRS = 1000
DPI = 100
PRIVACY_ROWS = ("dcr_ratio", "membership_auc")

#: Plain-language meaning of each row of :func:`~roisynth.evaluation.evaluate`: (aspect, text).
METRICS = {
    "w2_background": ("fidelity", "How far synthetic healthy subjects are from held-out real ones, over all ROIs "
                      "and their correlations at once (Wasserstein distance, in SD of healthy volumes). Two real "
                      "samples of the same sizes differ by the reference by chance alone."),
    "w2_target": ("fidelity", "The same for patients: synthetic patients vs held-out real patients."),
    "w2_unpaired": ("fidelity", "Distance between the synthetic healthy and synthetic patient cohorts, next to the "
                    "same between the real cohorts: ratio < 1, the synthetic disease effect is too weak; > 1, "
                    "too strong."),
    "mmd_background": ("fidelity", "A second distance between synthetic and held-out healthy subjects (maximum mean "
                       "discrepancy), sensitive to shapes a Gaussian summary misses; close to the reference is good."),
    "mmd_target": ("fidelity", "The same for patients."),
    "detection_auc_background": ("fidelity", "Can a classifier tell synthetic from real healthy subjects? 0.5 = no "
                                 "better than a coin toss (ideal), 1 = every time."),
    "detection_auc_target": ("fidelity", "The same for patients."),
    "correlation_r_background": ("fidelity", "Do ROIs vary together as in real healthy subjects? Correlation between "
                                 "the real and synthetic ROI-by-ROI correlation matrices (1 = same structure)."),
    "correlation_r_target": ("fidelity", "The same for patients."),
    "effect_map_r": ("fidelity", "Is the disease in the same regions? Correlation over ROIs of the patient-vs-healthy "
                     "effect sizes (Cohen's d), synthetic vs real (1 = same pattern)."),
    "effect_map_scale": ("utility", "Are the group differences as large as in the data the model learned from? Slope "
                         "of the synthetic effect sizes (Cohen's d) on the training data's, over the ROIs where the "
                         "training data show an effect (|d| \u2265 0.2): 1 = the same size; 0.8 = every effect 20 % "
                         "too small, so a study of the synthetic data would understate the disease and a power "
                         "calculation from it would ask for too many subjects."),
    "effect_map_rmse": ("utility", "How far the synthetic effect sizes are from those of held-out real data (RMSE of "
                        "Cohen's d over ROIs), next to how far the training data's own are: ratio 1 = the synthetic "
                        "cohort tells as much about group differences as the real data it came from; above 1 it "
                        "shrinks, inflates or invents effects."),
    "tstr_auc": ("utility", "Can synthetic data replace real data for research? A classifier of patients vs healthy "
                 "trained on synthetic subjects and tested on real held-out ones (AUC), next to one trained on real "
                 "data."),
    "dcr_ratio": ("privacy", "How close synthetic subjects sit to their nearest training subject, relative to new real "
                  "subjects. About 1 is good; far below 1 means copies of training subjects."),
    "membership_auc": ("privacy", "Can an attacker holding the synthetic data tell who was in the training set? "
                       "0.5 = no (ideal), 1 = always."),
}

COLUMN_HELP = (
    ("value", "the metric for the synthetic data (scored against the real held-out subjects); for distances, "
              "lower is better. In brackets, a 95 % bootstrap interval (distance rows only): how much the value "
              "would move with other subjects drawn at the same sample sizes."),
    ("reference", "what real data score on the same metric with the same numbers of subjects (real training vs real "
                  "held-out subjects): the best a synthesizer can hope for."),
    ("ratio", "value / reference where that reads as \u201c1 = as good as real data\u201d (1.3 = 30 % farther "
              "than a fresh real sample)."),
    ("ideal", "the value to aim for."),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1250px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.banner{padding:.7em 1em;border-radius:4px;margin:1em 0}
.warning{background:#fff4e5;border:1px solid #f0a030} .alert{background:#fdecea;border:1px solid #d9534f}
tr.flagged td{background:#fdecea} .note{color:#555;font-style:italic} .muted{color:#666;font-size:.9em}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{color:#333;margin-top:.4em}
"""


class _SyntheticTables:
    """Stand-in synthesizer over fixed synthetic tables, so that :func:`evaluate` scores them
    unchanged: ``sample(n, cohort, random_state)`` returns ``n`` of that cohort's rows drawn
    without replacement (all of them when the table has fewer)."""

    can_pair = False

    def __init__(self, background: pd.DataFrame, target: pd.DataFrame):
        self.tables = {"background": background, "target": target}

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        table = self.tables[cohort]
        return table.iloc[np.sort(np.random.default_rng(random_state).permutation(len(table))[:n])]


def _pair(tables, name: str, features=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(background, target)`` as DataFrames (arrays get ``features`` as columns, paths are read)."""
    if not isinstance(tables, (tuple, list)) or len(tables) != 2:
        raise TypeError(f"{name} must be a (background, target) pair of tables, got {type(tables).__name__}")
    return tuple(read_table(t) if isinstance(t, (str, os.PathLike)) else as_frame(t, f"{name} {c}", features)
                 for t, c in zip(tables, ("background", "target")))


def _shared_features(tables: dict) -> list:
    """Columns in every table: the MUSE ROIs among them, or all numeric ones if none is a ROI."""
    from ..datasets import roi_names

    first, *others = tables.values()
    shared = [c for c in first.columns if all(c in t.columns for t in others)]
    known = set(roi_names(include_ventricles=True))
    features = [c for c in shared if c in known] or [c for c in shared if pd.api.types.is_numeric_dtype(first[c])]
    if not features:
        raise ValueError("the synthetic and real tables share no numeric column")
    return features


def _check_features(tables: dict, features: list) -> None:
    for name, table in tables.items():
        missing = [c for c in features if c not in table.columns]
        if missing:
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            raise ValueError(f"{name} lacks column(s) {missing[:5]}{more}")
        check_numeric_table(table[features], name, nonnegative=False)


def _choose_rois(rois, features: list, train: tuple) -> list:
    """``rois`` checked, or the ``N_ROIS`` of largest real |Cohen's d| (hippocampi always in), by |d|."""
    if rois is not None:
        rois = [rois] if isinstance(rois, str) else list(rois)
        unknown = [r for r in rois if r not in features]
        if not rois or unknown:
            raise ValueError(f"rois must be among the compared columns; unknown: {unknown[:5]}" if unknown
                             else "rois is empty")
        return rois
    d = cohens_d(train[1][features], train[0][features]).abs().sort_values(ascending=False)
    hippocampi = [r for r in HIPPOCAMPI if r in features]
    chosen = set(hippocampi + [r for r in d.index if r not in hippocampi][: N_ROIS - len(hippocampi)])
    return [r for r in d.index if r in chosen]


def _labels(groups, held_out: tuple) -> pd.Categorical:
    """Group of each held-out row (background rows, then target rows): ``groups`` looked up by
    row label, or the cohort. Categories keep a categorical ``groups``' order; otherwise the
    background's groups come first, then the target's, each sorted by label."""
    if groups is None:
        names = [figures.COHORT_NAMES[c] for c in ("background", "target")]
        return pd.Categorical.from_codes(np.repeat([0, 1], [len(t) for t in held_out]), categories=names)
    if not isinstance(groups, pd.Series):
        raise TypeError("groups must be a pandas Series of labels indexed like the real tables' rows, "
                        f"got {type(groups).__name__}")
    index = held_out[0].index.append(held_out[1].index)
    if index.has_duplicates or groups.index.has_duplicates:
        where = "the real tables share row labels" if index.has_duplicates else "groups has duplicated row labels"
        raise ValueError(f"groups are matched to rows by label, but {where}; give every subject its own label")
    values = groups.reindex(index)
    if values.isna().any():
        raise ValueError(f"groups has no label for {int(values.isna().sum())} held-out row(s), "
                         f"e.g. {list(index[values.isna().to_numpy()][:5])}")
    if isinstance(groups.dtype, pd.CategoricalDtype):
        categories = [c for c in groups.cat.categories if (values == c).any()]
    else:
        healthy = sorted(values.iloc[: len(held_out[0])].unique(), key=str)
        categories = healthy + sorted(set(values.iloc[len(held_out[0]):]) - set(healthy), key=str)
    return pd.Categorical(values, categories=categories)


def _metric_table(synthetic: tuple, train: tuple, test, n_bootstrap: int, seeds: dict) -> pd.DataFrame:
    """:func:`evaluate` of the synthetic tables. Without ``test``, it compares two random halves
    of the training tables (both seen by the model: optimistic) and blanks the privacy rows,
    which need subjects the model never saw."""
    source = _SyntheticTables(*synthetic)
    if test is not None:  # the privacy audit has its own section (_privacy_html), with the covariates
        return evaluate(source, train, test, n_bootstrap=n_bootstrap, random_state=seeds["evaluate"], n_attacks=0)
    rng = np.random.default_rng(seeds["split"])
    halves = [rng.permutation(len(t)) for t in train]
    first = tuple(t.iloc[np.sort(h[: len(h) // 2])] for t, h in zip(train, halves))
    second = tuple(t.iloc[np.sort(h[len(h) // 2:])] for t, h in zip(train, halves))
    table = evaluate(source, first, second, n_bootstrap=n_bootstrap, random_state=seeds["evaluate"], n_attacks=0)
    table.loc[list(PRIVACY_ROWS), ["value", "low", "high", "reference", "ratio"]] = np.nan
    return table


def _number(x: float) -> str:
    return "\u2014" if pd.isna(x) else f"{x:.3g}"


def _metrics_html(table: pd.DataFrame) -> str:
    rows = []
    for name, row in table.iterrows():
        aspect, text = explain_metric(name)
        interval = "" if pd.isna(row["low"]) else f" [{_number(row['low'])}, {_number(row['high'])}]"
        value = _number(row["value"]) + interval
        cells = [f"<td>{aspect}</td><td><code>{html.escape(str(name))}</code></td>", f'<td class="num">{value}</td>',
                 *(f'<td class="num">{_number(row[c])}</td>' for c in ("reference", "ratio")),
                 f"<td>{html.escape(str(row['ideal']))}</td><td>{html.escape(text)}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("aspect", "metric", "value [95 % interval]", "reference", "ratio", "ideal",
                                            "what it tells you"))
    return f'<table id="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _privacy_alert(table: pd.DataFrame) -> str:
    """A banner when synthetic rows look like copies of training rows (DCR ratio < 0.5 or
    membership AUC > 0.6)."""
    dcr, auc = (table["value"].get(name, np.nan) for name in PRIVACY_ROWS)
    if not (dcr < 0.5 or auc > 0.6):
        return ""
    return ('<div class="banner alert"><b>Privacy warning:</b> synthetic subjects sit unusually close to training '
            f"subjects (DCR ratio {_number(dcr)}, membership AUC {_number(auc)}): some may be near-copies of real "
            "people. Do not share this synthetic cohort as it is.</div>")


#: Plain-language meaning of each row of :func:`~roisynth.metrics.privacy_audit` (inference rows
#: share one text).
AUDIT_TEXT = {
    "singling_out_univariate": "Can one rare value of a synthetic subject (a smallest volume, a value held by "
                               "nobody else) point at exactly one real training subject?",
    "singling_out_multivariate": "The same with combinations of three attributes (\u201cthe only subject older "
                                 "than 84 with a hippocampus under 2900 mm\u00b3\u201d).",
    "linkability": "Can the synthetic data join two partial records of the same real person (e.g. a register with "
                   "site, age, sex and ICV, and an imaging table) by their nearest synthetic subject?",
    "inference": "Knowing every other column of a real person, can the nearest synthetic subject reveal this one "
                 "(within 5 %)?",
    "exact_rows": "Synthetic subjects identical to a training subject.",
    "exact_quasi_identifiers": "Synthetic subjects carrying a training subject's exact site, age, sex and ICV.",
    "exact_cells": "Single synthetic values equal to a training value of the same column (small integers left "
                   "out); the risk column gives the largest share in one column.",
}


def explain_metric(name: str) -> tuple[str, str]:
    """(aspect, plain-language meaning) of a row of :func:`~roisynth.evaluation.evaluate`.

    The fidelity, utility and privacy rows are explained by :data:`METRICS`, the privacy-audit
    rows (``singling_out_*``, ``linkability``, ``inference_<column>``, ``exact_*``) by the
    report's audit texts; an unknown name gets empty texts.

    Parameters
    ----------
    name : str
        The row's name.

    Returns
    -------
    aspect, text : str

    Examples
    --------
    >>> from roisynth.evaluation import explain_metric
    >>> explain_metric("inference_Hippocampus_L")[0], explain_metric("w2_target")[0]
    ('privacy', 'fidelity')
    """
    if name in METRICS:
        return METRICS[name]
    key = "inference" if str(name).startswith("inference_") else name
    return ("privacy", AUDIT_TEXT[key]) if key in AUDIT_TEXT else ("", "")


def _audit(synthetic: tuple, train: tuple, test: tuple, features: list, random_state: int) -> pd.DataFrame:
    """:func:`~roisynth.metrics.privacy_audit` of the pooled cohorts on ``features`` plus the
    covariates (site, age, sex, ICV) that the synthetic, training and held-out tables all carry."""
    tables = [pd.concat(list(pair)) for pair in (synthetic, train, test)]
    shared = set.intersection(*(set(t.columns) for t in tables))
    covariates = [c for c in default_quasi_identifiers(tables[1].columns) if c in shared and c not in features]
    return privacy_audit(*(t[covariates + list(features)] for t in tables), random_state=random_state)


def _privacy_html(audit: pd.DataFrame | None) -> str:
    """The privacy section: every risk with its interval, the exact copies, flagged rows marked."""
    intro = ("<p>Attacks after anonymeter (Giomi et al., PETS 2023), the framework reviewed by the French data "
             "protection authority (CNIL): each uses the synthetic data against the real training subjects "
             "(<i>main</i>) and against held-out subjects the model never saw (<i>control</i>). The risk is the "
             "main attack's success beyond the control's, (main \u2212 control) / (1 \u2212 control), with a 95 % "
             "interval; 0 = the synthetic data tell nothing more about the training subjects than about "
             "strangers. <i>baseline</i> = random guessing. A row is flagged when the interval's lower bound "
             "exceeds 0.1, or when any record or quasi-identifier tuple is copied.</p>")
    if audit is None:
        return ("<h2>Privacy audit</h2>" + intro + '<p class="note">Not run: the attacks need held-out subjects '
                "(test) as their control.</p>")
    flags = privacy_flags(audit)
    banner = ('<div class="banner alert"><b>Privacy audit failed:</b><ul>'
              + "".join(f"<li>{html.escape(reason)}</li>" for reason in flags) + "</ul></div>") if flags else \
        '<p class="note">Privacy audit passed: no risk above its threshold, no copied record.</p>'
    rows = []
    for name, row in audit.iterrows():
        flagged = bool(privacy_flags(audit.loc[[name]]))
        if name.startswith("exact_"):
            figure = f"{_number(row['copies'])} of {_number(row['n_checked'])}"
            rates = "<td></td><td></td><td></td>"
        else:
            figure = f"{row['risk']:.3f} [{row['risk_low']:.3f}, {row['risk_high']:.3f}]"
            rates = "".join(f'<td class="num">{row[c]:.3f}</td>' for c in ("main_rate", "control_rate",
                                                                            "baseline_rate"))
        text = AUDIT_TEXT["inference" if name.startswith("inference_") else name]
        status = '<tr class="flagged"><td>\u26a0 flagged</td>' if flagged else "<tr><td>ok</td>"
        rows.append(f"{status}<td><code>{html.escape(str(name))}</code></td><td class=\"num\">{figure}</td>{rates}"
                    f"<td>{html.escape(text)}</td></tr>")
    head = "".join(f"<th>{c}</th>" for c in ("", "measure", "risk [95 % interval] or copies", "main", "control",
                                            "baseline", "what it asks"))
    return (f"<h2>Privacy audit</h2>{intro}{banner}<table id=\"privacy\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _header(title: str, model, sizes: dict, n_features: int, notes: list[str]) -> str:
    from .. import __version__

    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    if model is None:
        described = "none: synthetic tables were given"
        params = ""
    else:
        described = type(model).__name__
        params = "".join(f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(short.repr(v))}</code></td></tr>"
                         for k, v in model.get_params(deep=False).items())
        params = f"<details><summary>model parameters</summary><table>{params}</table></details>"
    size_rows = "".join(f'<tr><td>{html.escape(k)}</td><td class="num">{v}</td></tr>' for k, v in sizes.items())
    banners = "".join(f'<div class="banner warning">{note}</div>' for note in notes)
    return (f"<h1>{html.escape(title)}</h1>"
            f'<p class="muted">Generated {datetime.now():%Y-%m-%d %H:%M} by roisynth {html.escape(__version__)}. '
            f"Model: <b>{html.escape(described)}</b>. {n_features} ROIs.</p>{params}{banners}"
            f"<table><thead><tr><th>table</th><th>subjects</th></tr></thead><tbody>{size_rows}</tbody></table>")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})  # no version stamp: same bytes each run
    return buffer.getvalue()


def build_report(output="report.html", *, model=None, synthetic=None, train=None, test=None, groups=None, rois=None,
                 n_bootstrap: int = 1000, random_state=0, png_dir=None, title=None, shareable: bool = False) -> Path:
    """Write a self-contained HTML report on a synthetic cohort and return its path.

    Give ``model``, a fitted roisynth synthesizer or pipeline (or the path of a saved one),
    ``synthetic = (background, target)`` synthetic tables (e.g. read from CSV; without a model
    the compared columns are the MUSE ROIs all tables share, or all shared numeric columns if
    none is a ROI), or both: the tables a model drew (e.g. a released file), which the metrics,
    audit and effect maps then describe, while the model supplies the figures that need it and
    the differential-privacy section. ``train = (background, target)``: the real tables the model
    was fitted on; ``test``: held-out real tables (if None, the training tables stand in and
    the report says that every number is optimistic). Tables are DataFrames, arrays (model
    columns) or CSV/Parquet paths.

    Without ``synthetic`` the tables are drawn once (a model draws as many subjects per cohort as it had
    training subjects, like :func:`~roisynth.evaluation.evaluate`) and both the metric table
    and the figures use them. The report holds the metric table with plain-language
    explanations (and a banner if the privacy rows flag copies of training subjects), a
    "Differential privacy" section (a private fit's spent (ε, δ), mechanism and what the
    guarantee covers, or a sentence saying the model is not differentially private), the
    privacy audit (with held-out data), then:

    1. real vs synthetic histograms of ``rois`` (default: the 6 with the largest real
       |Cohen's d| between the cohorts, hippocampi always included), both cohorts;
    2. paired view: 1000 synthetic people healthy (x) vs ill (y), pairing models only;
    3. latent scatter of the held-out real subjects, models with ``transform`` only;
    4. severity by group of the held-out real subjects, models with ``severity`` only;
    5. real vs synthetic effect-size (Cohen's d) maps over all ROIs.

    ``groups``: a Series of labels (e.g. diagnosis) indexed like the real tables' rows, used
    to colour figures 3 and 4 (default: the cohort). Figures a model cannot produce are
    replaced by a note. Every figure is embedded as a base64 PNG (the file needs nothing else
    to open offline) and written to ``png_dir`` (default ``<output stem>_figures`` beside the
    HTML). ``n_bootstrap`` replicates for the confidence intervals (0: none); the same
    ``random_state`` gives the same tables, numbers and PNG files.

    Parameters
    ----------
    output : str or path, default="report.html"
        HTML file to write.
    model : synthesizer, SynthesisPipeline, str or path, default=None
        A fitted model or the path of a saved one.
    synthetic : tuple, default=None
        ``(background, target)`` synthetic tables, instead of ``model`` or drawn from it.
    train : tuple
        ``(background, target)`` real tables the model was fitted on (required).
    test : tuple, default=None
        ``(background, target)`` held-out real tables.
    groups : Series, default=None
        Labels of the real rows, indexed like them.
    rois : str or list of str, default=None
        ROIs of figures 1 and 2; None: the 6 most affected.
    n_bootstrap : int, default=1000
        Bootstrap replicates of the intervals.
    random_state : int, default=0
        Seed of every draw.
    png_dir : str or path, default=None
        Folder of the PNG files; None: ``<output stem>_figures``.
    title : str, default=None
        Title of the report.
    shareable : bool, default=False
        Leave out the figures that plot individual real subjects (3 and 4: each held-out
        subject's latent code and severity), for a report that leaves the data holder, as
        :func:`~roisynth.release.release`'s does; the histograms and effect maps summarize.

    Returns
    -------
    Path
        The HTML file written.

    Raises
    ------
    ValueError
        If neither ``model`` nor ``synthetic`` is given, ``train`` is missing, or
        tables lack the compared columns.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.evaluation import build_report
    >>> cohort = datasets.load_example()
    >>> rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L"]
    >>> cohorts = lambda t: (t.loc[t.diagnosis == "CN", rois], t.loc[t.diagnosis != "CN", rois])
    >>> train, test = cohorts(cohort.iloc[:400]), cohorts(cohort.iloc[400:700])
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(*train)
    >>> path = build_report(Path(tempfile.mkdtemp()) / "report.html", model=model, train=train, test=test,
    ...                     n_bootstrap=0)
    >>> sorted(p.name for p in path.with_name("report_figures").iterdir())[0]
    '1_distributions.png'
    """
    if model is None and synthetic is None:
        raise ValueError("pass model= (a fitted synthesizer or a model file), synthetic=(background, target) "
                         "tables, or both")
    if train is None:
        raise ValueError("train=(background, target) is required: the real tables the synthetic data are compared with")
    if model is not None:
        model = load(model) if isinstance(model, (str, os.PathLike)) else model
        if not hasattr(model, "sample"):
            raise TypeError(f"model must be a roisynth synthesizer or pipeline, got {type(model).__name__}")
        check_is_fitted(model, "feature_names_in_")
        features = list(model.feature_names_in_)
        train = _pair(train, "train", features)
        synthetic = None if synthetic is None else _pair(synthetic, "synthetic", features)
    else:
        synthetic, train = _pair(synthetic, "synthetic"), _pair(train, "train")
        features = _shared_features({"synthetic background": synthetic[0], "synthetic target": synthetic[1],
                                     "train background": train[0], "train target": train[1]})
    test = None if test is None else _pair(test, "test", features if model is not None else None)
    named = {f"{kind} {cohort}": t for kind, pair in (("train", train), ("test", test or ()))
             for cohort, t in zip(("background", "target"), pair)}
    _check_features(named, features)
    held_out = test or train
    chosen = _choose_rois(rois, features, train)
    labels = _labels(groups, held_out)
    rng = np.random.default_rng(seed_from(random_state))
    seeds = dict(zip(("background", "target", "evaluate", "split", "paired", "audit"),
                     map(int, rng.integers(2**31, size=6))))
    if synthetic is None:
        synthetic = tuple(model.sample(len(t), cohort=c, random_state=seeds[c])
                          for c, t in zip(("background", "target"), train))
    _check_features({"synthetic background": synthetic[0], "synthetic target": synthetic[1]}, features)
    table = _metric_table(tuple(s[features] for s in synthetic), tuple(t[features] for t in train),
                          None if test is None else tuple(t[features] for t in test), n_bootstrap, seeds)
    audit = None if test is None else _audit(synthetic, train, test, features, seeds["audit"])

    notes = []
    if test is None:
        notes.append("<b>Compared with training data: optimistic.</b> No held-out data were given (test=None), so the "
                     "synthetic data are compared with the subjects the model learned from, and every fidelity number "
                     "looks better than it would on new people. The metric table compares two random halves of the "
                     "training data; its privacy rows need held-out subjects and are left blank.")
    short = [c for s, t, c in zip(synthetic, train, ("background", "target")) if len(s) < len(t)]
    if short:
        notes.append(f"The synthetic {' and '.join(short)} table(s) have fewer rows than the training ones: the metric "
                     "table uses all synthetic rows, and distances read a little pessimistic at smaller sizes.")
    sizes = {f"real {kind} {figures.COHORT_NAMES[c]}": len(t)
             for kind, pair in (("training", train), ("held-out", test or ()))
             for c, t in zip(("background", "target"), pair)}
    sizes |= {f"synthetic {figures.COHORT_NAMES[c]}": len(s) for c, s in zip(("background", "target"), synthetic)}

    effects = _effects(tuple(s[features] for s in synthetic), tuple(t[features] for t in train),
                       None if test is None else tuple(t[features] for t in test))
    sections = _figures(model, synthetic, held_out, features, chosen, labels, seeds["paired"], effects, shareable)
    output = Path(output)
    png_dir = output.with_name(output.stem + "_figures") if png_dir is None else Path(png_dir)
    png_dir.mkdir(parents=True, exist_ok=True)
    body = []
    for number, (name, heading, caption, figure, skipped) in enumerate(sections, 1):
        path = png_dir / f"{number}_{name}.png"
        body.append(f"<h2>{number}. {heading}</h2>")
        if figure is None:
            path.unlink(missing_ok=True)  # a stale figure of an earlier report must not pass for this one
            body.append(f'<p class="note">Not shown: {html.escape(skipped)}.</p>')
            continue
        png = _png(figure)
        write_bytes(path, png)
        body.append(f'<figure><img alt="{html.escape(heading)}" src="data:image/png;base64,'
                    f'{base64.b64encode(png).decode("ascii")}"><figcaption>{html.escape(caption)}</figcaption></figure>')

    title = title or f"roisynth report: {type(model).__name__ if model is not None else 'synthetic tables'}"
    column_help = "".join(f"<li><b>{c}</b>: {html.escape(text)}</li>" for c, text in COLUMN_HELP)
    document = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{_header(title, model, sizes, len(features), notes)}"
        "<h2>Metrics: fidelity, utility, privacy</h2>"
        "<p><b>Fidelity</b>: do synthetic subjects look like real ones? <b>Utility</b>: do analyses of synthetic "
        "data give the answers real data give? <b>Privacy</b>: are synthetic subjects new people rather than "
        "copies of the training subjects? Every number sits next to the score of real data.</p>"
        f"<ul>{column_help}</ul>{_privacy_alert(table)}{_metrics_html(table)}"
        f'<p class="muted">All tables z-scored on the real healthy training subjects; {n_bootstrap} bootstrap '
        f"replicates; random_state={html.escape(repr(random_state))}.</p>"
        f"{differential_privacy_html(model, sum(map(len, train)))}{_privacy_html(audit)}{''.join(body)}"
        "</body></html>"
    )
    write_bytes(output, document.encode("utf-8"))
    return output


def build_report_from_tables(output="report.html", *, source, train, test=None, group_column: str = "diagnosis",
                             background="CN", target="MCI,AD", rois=None, n_bootstrap: int = 1000, random_state=0,
                             title=None, shareable: bool = False) -> Path:
    """:func:`build_report` on tables with a group column, as ``roisynth report`` reads them.

    ``train`` and ``test`` are split into cohorts by :func:`roisynth.io.read_cohorts`, and the
    held-out groups (``group_column`` of ``test``, or of ``train`` without it) colour the latent
    and severity figures.

    Parameters
    ----------
    output : str or path, default="report.html"
        HTML file to write; figures go to ``<output stem>_figures`` beside it.
    source : model, str, path or DataFrame
        A fitted roisynth model or the path of a saved one (``.roisynth``), or a synthetic
        table with a ``cohort`` column (background/target), as ``roisynth sample`` writes
        (:func:`roisynth.io.read_synthetic`).
    train : str, path, DataFrame or a (background, target) pair
        The real tables the model was fitted on.
    test : str, path, DataFrame or a (background, target) pair, default=None
        Held-out real tables (None: the report compares with the training data and says so).
    group_column : str, default="diagnosis"
        Column splitting one table into cohorts, and the groups of the figures.
    background : str or sequence of str, default="CN"
        Labels of the background cohort.
    target : str or sequence of str, default="MCI,AD"
        Labels of the target cohort.
    rois : str or sequence of str, default=None
        ROIs to plot (a sequence or one comma-separated string); None: the 6 most affected.
    n_bootstrap : int, default=1000
        Bootstrap replicates of the confidence intervals.
    random_state : int, default=0
        Seed of the synthetic draws and the intervals.
    title : str, default=None
        Title of the report.
    shareable : bool, default=False
        No figure of individual real subjects (see :func:`build_report`).

    Returns
    -------
    Path
        The HTML file written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.evaluation import build_report_from_tables
    >>> cohort = datasets.load_example()
    >>> rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L"]
    >>> train, test = cohort.iloc[:400], cohort.iloc[400:700]
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(train.loc[train.diagnosis == "CN", rois],
    ...                                                        train.loc[train.diagnosis != "CN", rois])
    >>> path = build_report_from_tables(Path(tempfile.mkdtemp()) / "report.html", source=model, train=train,
    ...                                 test=test, n_bootstrap=0)
    >>> path.name, "w2_background" in path.read_text()
    ('report.html', True)
    """
    from ..io import read_cohorts, read_synthetic, split_list

    split = {"group_column": group_column, "background": background, "target": target}
    train = read_cohorts(train, **split)
    test = None if test is None else read_cohorts(test, **split)
    held_out = pd.concat(test or train)
    groups = held_out[group_column].astype(str) if group_column in held_out.columns else None
    is_table = isinstance(source, pd.DataFrame)          # a DataFrame has a .sample method too
    if not is_table and (hasattr(source, "sample") or str(source).endswith(".roisynth")):
        given = {"model": source}
    else:
        given = {"synthetic": read_synthetic(source)}
    return build_report(output, train=train, test=test, groups=groups,
                        rois=None if rois is None else list(split_list(rois)), n_bootstrap=n_bootstrap,
                        random_state=random_state, title=title, shareable=shareable, **given)


def _effects(synthetic: tuple, train: tuple, test) -> tuple[pd.DataFrame, float, float]:
    """The effect maps (:func:`~roisynth.metrics.effect_maps`, held-out d as the reference when
    ``test`` is given), the effect scale against the training d and the effect error ratio
    against the held-out d (NaN without ``test``) of the figure "synthetic vs reference d"."""
    maps = effect_maps(*train, *synthetic, reference=test)
    error_ratio = np.nan if test is None else effect_error(*train, *synthetic, reference=test)["ratio"]
    return maps, _effect_scale(train, synthetic, MIN_EFFECT), error_ratio


def _figures(model, synthetic: tuple, held_out: tuple, features: list, rois: list,
             labels: pd.Categorical, paired_seed: int, effects: tuple, shareable: bool) -> list[tuple]:
    """(file name, heading, caption, Figure or None, why it is skipped) of each figure (``shareable``:
    none of individual real subjects)."""
    core = model.synthesizer if isinstance(model, SynthesisPipeline) else model
    name = type(core).__name__
    # pipelines take whole tables (covariates for their preprocessing), synthesizers the features
    inputs = [t if isinstance(model, SynthesisPipeline) else t[features] for t in held_out]
    no_model = "it needs a model, and synthetic tables were given"
    individual = "it plots individual real subjects, and this report is meant to be shared (shareable=True)"
    sections = [(
        "distributions", "Real vs synthetic volumes",
        f"Volumes (mm\u00b3) of {len(rois)} ROIs for real held-out subjects (filled) and synthetic subjects (lines), "
        "healthy in blue and patients in red. Look for each line following the filled histogram of its colour, and "
        "for the gap between blue and red being as wide in synthetic as in real data.",
        figures.distributions(held_out, synthetic, rois), "")]
    if model is None or not model.can_pair:
        sections.append(("paired", "Paired view: the same synthetic person healthy and ill", "", None,
                         no_model if model is None else f"{name} models each cohort separately (can_pair = False), "
                         "so it has no paired samples"))
    else:
        healthy, disease = model.sample_paired(N_PAIRS, random_state=paired_seed)
        sections.append(("paired", "Paired view: the same synthetic person healthy and ill",
                         f"{N_PAIRS} synthetic people, each generated once healthy (x) and once ill (y) (seed paper, "
                         "Fig. 2a). A cloud below the diagonal and parallel to it: the disease shrinks this ROI by a "
                         "similar amount in everybody; a cloud that keeps its spread along the diagonal: each person's "
                         "healthy volume carries over to the ill version.",
                         figures.paired_scatter(healthy, disease, rois), ""))
    latents = None if model is None or shareable or not hasattr(core, "transform") else latent_codes(model, *inputs)
    sections.append(("latents", "Latent space of real held-out subjects",
                     "Each real held-out subject at the posterior mean of the model's hidden factors (seed paper, "
                     "Fig. 2b). Common factors (z) describe what all people share and should not separate the groups; "
                     "salient factors (s) describe the disease: healthy subjects near 0, patients spread out.",
                     None if latents is None else figures.latent_scatter(latents, labels),
                     no_model if model is None else individual if shareable
                     else f"{name} has no latent representation (no transform)"))
    severity = (None if model is None or shareable or not hasattr(core, "severity")
                else model.severity(pd.concat(inputs)))
    sections.append(("severity", "Severity by group",
                     "The model's severity score of each real held-out subject, by group (seed paper, Fig. 4b): "
                     "for the contrastive VAE how far a person lies from their own healthy twin along the disease "
                     "effect the model learned, in SDs of healthy variation (see the model's severity docstring). "
                     "It should be about 0 for healthy subjects and rise with disease stage.",
                     None if severity is None else figures.severity_by_group(severity, labels),
                     no_model if model is None else individual if shareable else f"{name} has no severity score"))
    reference = "held-out real data" if "reference" in effects[0] else "the real training data (no held-out data given)"
    sections.append(("effect_sizes", "Disease effect per ROI: synthetic vs reference d",
                     "Cohen's d of patients vs healthy subjects for every ROI (difference of means in pooled SD): "
                     f"synthetic data (purple) against {reference} (x). Left: purple points on the diagonal = the "
                     "synthetic cohort reproduces each ROI's effect; a purple cloud flatter than the diagonal = "
                     "effects shrunk (effect scale < 1: the slope of synthetic on training d), steeper = inflated; "
                     "purple points off zero where the real d is about 0 = invented effects. Grey points, when "
                     "held-out data are given, are the training data's own d against the held-out d: the scatter "
                     "real data of this size show by chance alone, so a purple cloud no wider than the grey one "
                     "is as good as real data (effect error ratio \u2248 1). Right: the 15 ROIs most affected in "
                     "real data; purple bars shorter than grey ones mean a weaker synthetic disease effect.",
                     figures.effect_sizes(*effects), ""))
    return sections
