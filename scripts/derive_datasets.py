#!/usr/bin/env python
"""Derive roisynth's data files (``datasets/``) from the reference data in ``../shared/data``.

Usage: ``python scripts/derive_datasets.py [--shared DIR] [--out DIR]``. Deterministic: a
re-run writes byte-identical files. Nothing is copied from the shared folder; only the
summaries below are written (``atrophy_patterns.json`` is written by hand from the literature,
not by this script).

``muse_rois.csv``: the MUSE ROI dictionary (index, name, hemisphere, tissue, lobe).

* index, name: ``muse/MUSE_single.csv`` (145 single ROIs) and the derived ROIs (index >= 300)
  of ``muse/muse_dict.csv``. muse_dict calls ROI 95 ``CorpCall``; MUSE_single's
  ``CorpusCallosum`` is used, so muse_dict's derived 501 (the same volume in IXI) becomes
  ``CorpusCallosum_DUPLICATE``, like muse_dict's other derived copies of single ROIs.
  ``CortCSF`` (1) is not in the 145-ROI set and is left out.
* hemisphere: the ``_L``/``_R`` name suffix.
* tissue: single ROI g is GM (WM) when w_g = 1 in the non-negative least-squares fit
  X w = y, X = IXI single-ROI volumes (291 x 145), y = IXI derived GM (601) or WM (604). The
  fits are exact (relative residual < 1e-9) with weights 0 or 1 (asserted). The 6 ventricles
  (4, 11, 49-52) are CSF and ROI 35 is BrainStem; derived ROIs are "derived".
* lobe: MUSE's own hierarchy, found with the same NNLS for the derived ROIs 501-509 (Corpus
  callosum, cerebellum, Deep_WM_GM, frontal, limbic, occipital, parietal, temporal,
  ventricles) and 302 (Frontal_Insular_GM -> "insula"). Deep_WM_GM is "subcortical" except
  hippocampus and amygdala ("limbic"); the ROIs in none of them are VentralDC ("subcortical")
  and BrainStem ("brainstem").

``simulator_params.npz``: parameters of ``roisynth.datasets.simulate_cohort``.

* ``rois`` (the 145 single ROIs, dictionary order), ``sexes`` (F, M), ``ages`` (40, 45, ...,
  90), ``centiles`` (5, 25, 50, 75, 95).
* ``log_centiles`` [sex, age, roi, centile]: log of the DLMUSE CN centile curves
  (``dlmuse_centiles/*-Females.csv``, ``*-Males.csv``; exact duplicate rows dropped; the
  ``PosteriorLimbInternalCapsuleIncCerebralPeduncle_*`` and ``Superior_parietalLobule_*`` rows
  renamed to the MUSE_single names) at the ages above. Ages > 90 are left out: the curves'
  tails diverge at 91-93 (e.g. OccipitalPole_R). Where a 5th centile is <= 0 (normal fits of
  3rdVentricle and InfLatVentricle_*), the lower centiles of that ROI (both sexes) are replaced
  by their reflection on the log scale, log c_p = 2 log c_50 - log c_(100-p).
* ``icv_log_mean``, ``icv_log_sd`` [sex]: mean and SD of log ICV (IXI column 702) per sex.
* ``corr`` (146 x 146, order ICV then ``rois``): correlation of the IXI residuals of log volume
  after OLS on age terms a, a^2 (a = (age - 65) / 25), sex and site intercepts, each residual
  scaled to unit SD (``residual_sd``), shrunk with Ledoit-Wolf and rescaled to unit diagonal.
* ComBat-like site effects in residual-SD units (IXI sites Guys, HH, IOP, read from the ID).
  With gamma_ig the site-i intercept of ROI g's scaled residual and l_ig the log SD of that
  residual within site i, the model is gamma_ig = mu_i + e_ig and l_ig = nu_i + u_ig with
  mu ~ N(0, ``site_shift_sd``^2), e ~ N(0, ``roi_shift_sd``^2), nu ~ N(0, ``site_logscale_sd``^2),
  u ~ N(0, ``roi_logscale_sd``^2). Method of moments, averaged over the site pairs (i, j): with
  d_g = gamma_ig - gamma_jg and s = 1/n_i + 1/n_j (sampling variance of d_g),
  Var_g(d) = 2 roi_shift_sd^2 + s (1 - rbar) and mean_g(d)^2 = 2 site_shift_sd^2 + s rbar,
  rbar = mean entry of the residual correlation (sampling errors are correlated across ROIs);
  likewise for l with s = 1/(2(n_i - 1)) + 1/(2(n_j - 1)) and the mean squared correlation.
  Pairs are weighted by 1/s^2 (the 24-subject IOP site is noisy); negative estimates become 0.
* ``site_age_shift_sd``: SD of the three IXI site mean ages (years).
"""

from __future__ import annotations

import argparse
import io
import itertools
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.covariance import LedoitWolf

REPO = Path(__file__).resolve().parents[1]
VENTRICLES = (4, 11, 49, 50, 51, 52)
BRAINSTEM = 35
CENTILES = (5, 25, 50, 75, 95)
AGES = np.arange(40, 91, 5)
SEXES = ("F", "M")
CENTILE_RENAMES = {
    f"{old}_{h}": f"{new}_{h}"
    for old, new in [
        ("PosteriorLimbInternalCapsuleIncCerebralPeduncle", "PosteriorLimbInternalCapsule"),
        ("Superior_parietalLobule", "SuperiorParietalLobule"),
    ]
    for h in "LR"
}
LOBES = {  # derived MUSE ROI -> lobe of its single ROIs
    501: "callosal",
    502: "cerebellum",
    503: "subcortical",
    504: "frontal",
    505: "limbic",
    506: "occipital",
    507: "parietal",
    508: "temporal",
    509: "ventricle",
    302: "insula",  # applied after 504, so the insula leaves "frontal"
}
LOBE_OVERRIDES = {"Hippocampus": "limbic", "Amygdala": "limbic", "VentralDC": "subcortical", "BrainStem": "brainstem"}


def base_name(name: str) -> str:
    """ROI name without its ``_L``/``_R`` suffix."""
    return name[:-2] if name.endswith(("_L", "_R")) else name


def membership(volumes: pd.DataFrame, single: pd.Series, derived: int) -> pd.Series:
    """0/1 weights w (index = single ROI index) with volumes[single] @ w = volumes[derived], by NNLS."""
    X = volumes[[str(i) for i in single]].to_numpy()
    y = volumes[str(derived)].to_numpy()
    w, residual = nnls(X, y)
    assert residual / np.linalg.norm(y) < 1e-9, f"ROI {derived} is not a sum of single ROIs"
    assert np.allclose(w, np.round(w), atol=1e-6) and set(np.round(w)) <= {0.0, 1.0}, f"ROI {derived}: non-0/1 weights"
    return pd.Series(np.round(w).astype(bool), index=single.to_numpy())


def muse_dictionary(shared: Path, ixi: pd.DataFrame) -> pd.DataFrame:
    single = pd.read_csv(shared / "muse" / "MUSE_single.csv")
    full = pd.read_csv(shared / "muse" / "muse_dict.csv")
    derived = full[full["Index"] >= 300].copy()
    derived.loc[derived["Index"] == 501, "Name"] = "CorpusCallosum_DUPLICATE"
    assert (ixi["501"] == ixi["95"]).all()
    index = single["Index"]

    gm, wm = membership(ixi, index, 601), membership(ixi, index, 604)
    assert not (gm & wm).any() and not (gm | wm)[[*VENTRICLES, BRAINSTEM]].any()
    tissue = pd.Series(np.where(gm, "GM", np.where(wm, "WM", "")), index=index.to_numpy())
    tissue[list(VENTRICLES)] = "CSF"
    tissue[BRAINSTEM] = "BrainStem"
    assert (tissue != "").all(), "single ROIs without a tissue"

    lobe = pd.Series("", index=index.to_numpy())
    for code, name in LOBES.items():
        lobe[membership(ixi, index, code)] = name
    names = single.set_index("Index")["Name"]
    for roi, name in names.items():
        lobe[roi] = LOBE_OVERRIDES.get(base_name(name), lobe[roi])
    assert (lobe != "").all(), "single ROIs without a lobe"

    rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "index": index,
                    "name": single["Name"],
                    "tissue": tissue[index].to_numpy(),
                    "lobe": lobe[index].to_numpy(),
                }
            ),
            pd.DataFrame({"index": derived["Index"], "name": derived["Name"], "tissue": "derived", "lobe": ""}),
        ]
    )
    suffix = rows["name"].str[-2:]
    rows.insert(2, "hemisphere", np.where(suffix.isin(["_L", "_R"]), suffix.str[-1], ""))
    rows = rows.sort_values("index").reset_index(drop=True)
    assert rows["name"].is_unique and rows["index"].is_unique
    return rows


def log_centile_curves(shared: Path, rois: list[str]) -> tuple[np.ndarray, list[str]]:
    """log centiles [sex, age, roi, centile] at ``AGES``, and the ROIs whose lower tail was reflected."""
    curves = np.empty((len(SEXES), len(AGES), len(rois), len(CENTILES)))
    columns = [f"centile_{c}" for c in CENTILES]
    for s, sex in enumerate(("Females", "Males")):
        table = pd.read_csv(shared / "dlmuse_centiles" / f"dlmuse_centiles_CN-{sex}.csv").drop_duplicates()
        table["VarName"] = table["VarName"].replace(CENTILE_RENAMES)
        table = table[table["VarName"].isin(rois) & table["Age"].isin(AGES)]
        assert not table.duplicated(["VarName", "Age"]).any()
        wide = table.set_index(["Age", "VarName"])[columns]
        full_index = pd.MultiIndex.from_product([AGES, rois])
        assert wide.index.isin(full_index).all() and len(wide) == len(full_index), f"{sex}: missing curve rows"
        curves[s] = wide.reindex(full_index).to_numpy().reshape(len(AGES), len(rois), len(CENTILES))
    nonpositive = (curves[..., :2] <= 0).any(axis=(0, 1, 3))
    with np.errstate(invalid="ignore"):
        logs = np.log(curves)
    reflected = 2 * logs[..., 2:3] - logs[..., [4, 3]]  # log c5, log c25 from log c95, log c75
    logs[..., :2] = np.where(nonpositive[:, None], reflected, logs[..., :2])
    assert np.isfinite(logs).all() and (np.diff(logs, axis=-1) > 0).all()
    return logs, [r for r, bad in zip(rois, nonpositive) if bad]


def residual_model(ixi: pd.DataFrame, demog: pd.DataFrame, rois: list[str]):
    """Unit-SD residuals z of log [ICV, rois] after age, sex and site; each row's site; the site
    names; the site intercepts gamma [site, feature] in residual-SD units."""
    site = ixi["ID"].str.split("-").str[1].to_numpy()
    a = (demog["Age"].to_numpy() - 65) / 25
    sites = sorted(set(site))
    X = np.column_stack([a, a**2, demog["Sex"].eq("M").to_numpy(float)] + [site == s for s in sites]).astype(float)
    Y = np.log(ixi[["702"] + rois].to_numpy())
    beta, *_ = np.linalg.lstsq(X, Y, rcond=None)
    residual = Y - X @ beta
    sd = residual.std(axis=0, ddof=X.shape[1])
    gamma = beta[-len(sites) :] / sd
    return residual / sd, site, sites, gamma


def site_hyperparameters(
    z: np.ndarray, site: np.ndarray, sites: list[str], gamma: np.ndarray, corr: np.ndarray
) -> dict:
    """ComBat-like site-effect spreads by the method of moments in the module docstring."""
    n = np.array([(site == s).sum() for s in sites])
    logsd = np.log(np.array([z[site == s].std(axis=0, ddof=1) for s in sites]))
    pairs = list(itertools.combinations(range(len(sites)), 2))
    spreads = {}
    # effect [site, feature], sampling variance of a site's estimate, correlation of sampling errors
    for kind, effect, variance, r in [
        ("shift", gamma, 1 / n, corr.mean()),
        ("logscale", logsd, 1 / (2 * (n - 1)), (corr**2).mean()),
    ]:
        d = np.array([effect[i] - effect[j] for i, j in pairs])
        s = np.array([variance[i] + variance[j] for i, j in pairs])
        common = (d.mean(axis=1) ** 2 - s * r) / 2
        specific = (d.var(axis=1) - s * (1 - r)) / 2
        spreads[f"site_{kind}_sd"] = float(np.sqrt(max(np.average(common, weights=s**-2), 0.0)))
        spreads[f"roi_{kind}_sd"] = float(np.sqrt(max(np.average(specific, weights=s**-2), 0.0)))
    return spreads


def write_npz(path: Path, arrays: dict) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so re-runs are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=False)
            archive.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue(), zipfile.ZIP_DEFLATED
            )


def derive(shared: Path, out: Path) -> None:
    ixi = pd.read_csv(shared / "ixi_dlmuse" / "IXI_DLMUSE.csv")
    demog = pd.read_csv(shared / "ixi_dlmuse" / "IXI_demog.csv").set_index("ID").loc[ixi["ID"]].reset_index()

    dictionary = muse_dictionary(shared, ixi)
    out.mkdir(parents=True, exist_ok=True)
    dictionary.to_csv(out / "muse_rois.csv", index=False, lineterminator="\n")
    single = dictionary[dictionary["tissue"] != "derived"]
    print(f"muse_rois.csv: {len(single)} single ROIs, {len(dictionary) - len(single)} derived")
    print("  tissue:", single["tissue"].value_counts().to_dict())
    print("  hemisphere:", single["hemisphere"].replace("", "none").value_counts().to_dict())
    print("  lobe:", single["lobe"].value_counts().to_dict())

    rois = single["name"].tolist()
    logs, fixed = log_centile_curves(shared, rois)
    print(f"centile curves: {logs.shape} (sex, age, roi, centile); lower tails reflected for {fixed}")

    z, site, sites, gamma = residual_model(ixi, demog, [str(i) for i in single["index"]])
    lw = LedoitWolf().fit(z)
    cov = lw.covariance_
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    raw = np.corrcoef(z, rowvar=False)
    off_diagonal = raw[np.triu_indices_from(raw, 1)].mean()
    print(f"residual correlation: Ledoit-Wolf shrinkage {lw.shrinkage_:.3f}, mean off-diagonal {off_diagonal:.3f}")
    print(f"  ICV-ROI correlation: median {np.median(corr[0, 1:]):.2f}, min {corr[0, 1:].min():.2f}")

    hyper = site_hyperparameters(z, site, sites, gamma, raw)
    age_means = demog.groupby(site)["Age"].mean()
    hyper["site_age_shift_sd"] = float(age_means.std(ddof=1))
    print(f"sites { {s: int((site == s).sum()) for s in sites} }:", {k: round(v, 3) for k, v in hyper.items()})

    log_icv = np.log(ixi["702"].to_numpy())
    sex = demog["Sex"].to_numpy()
    icv_mean = np.array([log_icv[sex == s].mean() for s in SEXES])
    icv_sd = np.array([log_icv[sex == s].std(ddof=1) for s in SEXES])
    print(
        f"ICV: exp(mean log) F {np.exp(icv_mean[0]):.0f}, M {np.exp(icv_mean[1]):.0f} mm3; SD of log {icv_sd.round(3)}"
    )

    write_npz(
        out / "simulator_params.npz",
        {
            "rois": np.array(rois),
            "sexes": np.array(SEXES),
            "ages": AGES.astype(float),
            "centiles": np.array(CENTILES, dtype=float),
            "log_centiles": logs,
            "icv_log_mean": icv_mean,
            "icv_log_sd": icv_sd,
            "corr": corr,
            **{k: np.float64(v) for k, v in hyper.items()},
        },
    )
    for path in sorted(out.glob("*")):
        if path.suffix in {".csv", ".npz"}:
            print(f"wrote {path} ({path.stat().st_size / 1024:.1f} kB)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data", help="reference data folder")
    parser.add_argument("--out", type=Path, default=REPO / "datasets", help="output folder")
    args = parser.parse_args(argv)
    derive(args.shared, args.out)


if __name__ == "__main__":
    main()
