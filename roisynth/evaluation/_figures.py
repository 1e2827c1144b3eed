"""Figures of a synthetic cohort next to the real one, as matplotlib ``Figure`` objects.

Every function builds its figure with the object API (``matplotlib.figure.Figure``, no pyplot
state), so it works with any backend, ``Agg`` included, and leaves nothing open: save it with
``fig.savefig(...)`` or show it in a notebook by leaving it as a cell's last value. Volumes are
in the tables' own units (mm³ for ROI volumes). ``labels`` arguments are ``pd.Categorical``
arrays, one label per row, drawn in the order of their categories.
"""

from __future__ import annotations

from itertools import cycle

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

COHORT_COLOURS = {"background": "tab:blue", "target": "tab:red"}
COHORT_NAMES = {"background": "healthy (background)", "target": "patients (target)"}
PALETTE = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
           "tab:cyan", "tab:gray")


def _grid(n_panels: int, width: float = 4.0, height: float = 3.2, ncols: int = 3):
    ncols = min(ncols, n_panels)
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def distributions(real: tuple, synthetic: tuple, rois, bins: int = 30) -> Figure:
    """Histograms of real (filled) and synthetic (line) volumes, both cohorts, one panel per ROI.

    ``real`` and ``synthetic`` are ``(background, target)`` tables with the ``rois`` columns.
    The bins span the 0.5–99.5 % quantiles of all four tables pooled.
    """
    fig, axes = _grid(len(rois))
    for ax, roi in zip(axes, rois):
        pooled = np.concatenate([t[roi].to_numpy(float) for t in (*real, *synthetic)])
        edges = np.linspace(*np.quantile(pooled, [0.005, 0.995]), bins + 1)
        for cohort, real_table, synthetic_table in zip(COHORT_COLOURS, real, synthetic):
            colour, name = COHORT_COLOURS[cohort], COHORT_NAMES[cohort]
            ax.hist(real_table[roi], bins=edges, density=True, alpha=0.3, color=colour, label=f"real {name}")
            ax.hist(synthetic_table[roi], bins=edges, density=True, histtype="step", linewidth=1.8, color=colour,
                    label=f"synthetic {name}")
        ax.set(title=roi, xlabel="volume (mm³)", ylabel="density (per mm³)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
    fig.suptitle("Real (filled) vs synthetic (line) volumes: each line should follow the filled shape of its colour")
    return fig


def paired_scatter(healthy: pd.DataFrame, disease: pd.DataFrame, rois) -> Figure:
    """Scatter of each synthetic person's healthy (x) vs diseased (y) volume, one panel per ROI,
    with the identity line; the title gives the mean paired change 100 · (y − x) / x in %."""
    fig, axes = _grid(len(rois), width=3.8, height=3.6)
    for ax, roi in zip(axes, rois):
        x, y = healthy[roi].to_numpy(float), disease[roi].to_numpy(float)
        ax.scatter(x, y, s=6, alpha=0.4, color="tab:purple", linewidths=0)
        limits = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(limits, limits, color="black", linewidth=1, label="no change (y = x)")
        change = np.mean((y - x) / x) * 100
        ax.set(title=f"{roi}\nmean change {change:+.1f} %", xlabel="healthy version (mm³)",
               ylabel="diseased version (mm³)", aspect="equal")
    axes[0].legend(loc="upper left")
    fig.suptitle(f"The same {len(healthy)} synthetic people without and with the disease: "
                 "points below the line shrink when ill")
    return fig


def _two_columns(block: pd.DataFrame, pca: bool) -> tuple[np.ndarray, list[str]]:
    """Two columns to plot: the first two principal components (``pca``) or the two columns
    of largest variance; a single column is returned alone."""
    if block.shape[1] == 1:
        return block.to_numpy(float), [block.columns[0]]
    if pca and block.shape[1] > 2:
        centred = block.to_numpy(float) - block.to_numpy(float).mean(0)
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        share = singular**2 / (singular**2).sum() * 100
        return centred @ vt[:2].T, [f"{block.columns[0][0]}: principal component {i + 1} ({share[i]:.0f} % of variance)"
                                    for i in range(2)]
    top = block.var().sort_values(ascending=False).index[:2]
    return block[top].to_numpy(float), list(top)


def _by_group(ax, values: np.ndarray, names: list[str], labels: pd.Categorical) -> None:
    for colour, group in zip(cycle(PALETTE), labels.categories):
        rows = np.asarray(labels == group)
        if values.shape[1] == 2:
            ax.scatter(values[rows, 0], values[rows, 1], s=10, alpha=0.6, color=colour,
                       label=f"{group} (n={rows.sum()})")
        else:
            ax.hist(values[rows, 0], bins=25, density=True, histtype="step", linewidth=1.8, color=colour,
                    label=f"{group} (n={rows.sum()})")
    ax.set(xlabel=names[0], ylabel=names[1] if len(names) == 2 else "density")
    ax.legend(title="group", fontsize="small")


def latent_scatter(latents: pd.DataFrame, labels: pd.Categorical) -> Figure:
    """Real subjects in the model's latent space, coloured by group: common factors (columns
    ``z*``: the first two principal components when there are more than two) and, where the
    model has them, salient factors (``s*``: the two of largest variance). A single factor
    is drawn as one histogram per group."""
    blocks = [(prefix, latents.filter(regex=rf"^{prefix}\d+$")) for prefix in ("z", "s")]
    blocks = [(prefix, block) for prefix, block in blocks if block.shape[1]]
    titles = {"z": "Common factors z: shared by all, groups should overlap",
              "s": "Salient factors s: healthy near 0, patients spread out"}
    fig = Figure(figsize=(6 * len(blocks), 5), layout="constrained")
    for ax, (prefix, block) in zip(np.atleast_1d(fig.subplots(1, len(blocks))), blocks):
        values, names = _two_columns(block, pca=prefix == "z")
        _by_group(ax, values, names, labels)
        ax.set_title(titles[prefix])
    fig.suptitle(f"Where {len(latents)} real held-out subjects sit in the model's latent space (posterior means)")
    return fig


def severity_by_group(severity: pd.Series, labels: pd.Categorical) -> Figure:
    """Box plot of the model's severity score per group (box: quartiles; whiskers: 1.5 IQR)."""
    groups = list(labels.categories)
    values = [severity.to_numpy(float)[np.asarray(labels == g)] for g in groups]
    fig = Figure(figsize=(max(6, 1.6 * len(groups) + 3), 4.8), layout="constrained")
    ax = fig.subplots()
    box = ax.boxplot(values, patch_artist=True, widths=0.6)
    for patch, colour in zip(box["boxes"], cycle(PALETTE)):
        patch.set(facecolor=colour, alpha=0.4)
    ax.set_xticks(range(1, len(groups) + 1), [f"{g}\n(n={len(v)})" for g, v in zip(groups, values)])
    ax.set(xlabel="group", ylabel="severity (model units, 0 = healthy)",
           title="Model severity of real held-out subjects\n(about 0 when healthy, rising with disease stage)")
    return fig


def effect_sizes(maps: pd.DataFrame, scale: float = np.nan, error_ratio: float = np.nan, top: int = 15) -> Figure:
    """Synthetic vs reference Cohen's d of target vs background for every ROI: a scatter with the
    identity line, and bars for the ``top`` ROIs of largest reference |d|.

    ``maps`` is an :func:`~roisynth.metrics.effect_maps` table: the reference (x) is its
    ``reference`` column (held-out real data) when present, else ``train``. The scatter shows the
    synthetic d (y) and, when there is a held-out reference, the training data's own d against it
    (grey): the spread real data of the training size have around the identity line, for scale.
    ``scale`` (:func:`~roisynth.metrics.effect_scale`) and ``error_ratio``
    (:func:`~roisynth.metrics.effect_error`) go in the title when given.
    """
    held_out = "reference" in maps
    reference = maps["reference" if held_out else "train"]
    real = "held-out" if held_out else "training"
    fig = Figure(figsize=(13, 6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    if held_out:
        left.scatter(reference, maps["train"], s=14, alpha=0.5, color="tab:gray",
                     label="real training data (for scale)")
    left.scatter(reference, maps["synthetic"], s=14, alpha=0.7, color="tab:purple", label="synthetic data")
    limits = [maps.min().min(), maps.max().max()]
    left.plot(limits, limits, color="black", linewidth=1, label="same d as the reference")
    left.axhline(0, color="grey", linewidth=0.5)
    left.axvline(0, color="grey", linewidth=0.5)
    numbers = [f"effect scale {scale:.2f}" if np.isfinite(scale) else "",
               f"effect error ratio {error_ratio:.2f}" if np.isfinite(error_ratio) else ""]
    left.set(xlabel=f"real Cohen's d, {real} data (patients − healthy, in pooled SD)",
             ylabel="Cohen's d of the compared data",
             title=f"All {len(maps)} ROIs\n{', '.join(n for n in numbers if n) or 'synthetic vs reference d'}",
             aspect="equal")
    left.legend(loc="upper left")
    chosen = reference.abs().sort_values(ascending=False).index[:top][::-1]
    y = np.arange(len(chosen))
    right.barh(y + 0.2, reference[chosen], height=0.4, color="tab:gray", label=f"real ({real})")
    right.barh(y - 0.2, maps["synthetic"][chosen], height=0.4, color="tab:purple", label="synthetic")
    right.set_yticks(y, chosen)
    right.axvline(0, color="black", linewidth=0.5)
    right.set(xlabel="Cohen's d (patients − healthy, in pooled SD)",
              title=f"The {len(chosen)} ROIs most affected in real {real} data")
    right.legend(loc="best")
    fig.suptitle("Synthetic vs reference d: do synthetic patients differ from synthetic controls where, and as "
                 "much as, real ones do?")
    return fig
