"""roisynth.datasets: MUSE dictionary, read_rois, cohort simulator, semi-synthetic benchmark."""

import functools
import importlib.util
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roisynth import datasets

ROOT = Path(__file__).parents[2]
SHARED = ROOT.parent / "shared" / "data"
DATA_FILES = ("muse_rois.csv", "simulator_params.npz")
VENTRICLES = {4, 11, 49, 50, 51, 52}


@pytest.fixture(scope="module")
def params():
    with files("roisynth.data").joinpath("simulator_params.npz").open("rb") as f, np.load(f) as npz:
        return {key: npz[key] for key in npz.files}


def cohens_d(a, b):
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


@functools.cache
def cn_at_age(age, n=20000, sites=1, seed=0):
    """CN subjects aged (almost exactly) ``age`` (cached: do not modify)."""
    return datasets.simulate_cohort(
        n, diagnosis={"CN": 1.0}, sites=sites, age_range=(age, age + 0.01), random_state=seed
    )


# --- MUSE dictionary -------------------------------------------------------------------


def test_dictionary_counts_and_columns():
    rois = datasets.muse_rois()
    assert list(rois.columns) == ["index", "name", "hemisphere", "tissue", "lobe"]
    assert len(rois) == 139 and rois["tissue"].value_counts().to_dict() == {"GM": 119, "WM": 19, "BrainStem": 1}
    full = datasets.muse_rois(include_ventricles=True)
    assert len(full) == 145 and set(full.loc[full["tissue"] == "CSF", "index"]) == VENTRICLES
    assert full["index"].is_monotonic_increasing and full["name"].is_unique
    assert datasets.roi_names() == rois["name"].tolist() and len(datasets.roi_names(include_ventricles=True)) == 145
    assert full["hemisphere"].value_counts().to_dict() == {"R": 69, "L": 69}
    assert rois["hemisphere"].value_counts().to_dict() == {"R": 67, "L": 67}
    # every left ROI has its right partner; hemisphere comes from the name, not index parity
    left = set(full.loc[full["hemisphere"] == "L", "name"].str[:-2])
    assert left == set(full.loc[full["hemisphere"] == "R", "name"].str[:-2])
    named = full.set_index("name")
    assert named.loc["Hippocampus_R", "index"] == 47 and named.loc["BasalForebrain_L", "index"] == 75
    assert named.loc["CorpusCallosum", "index"] == 95 and named.loc["CorpusCallosum", "tissue"] == "WM"
    assert named.loc["BrainStem", "lobe"] == "brainstem" and named.loc["Hippocampus_L", "lobe"] == "limbic"
    assert named.loc["Frontal_WM_L", "lobe"] == "frontal" and (full["lobe"] == "insula").sum() == 4
    derived = datasets.muse_rois(include_derived=True)
    assert (
        derived.set_index("index").loc[702, "name"] == "ICV" and (derived["index"] >= 300).sum() == len(derived) - 139
    )


# --- read_rois -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    [
        "MUSE_47",
        "H_MUSE_Volume_47",
        "DL_MUSE_Volume_47",
        "MUSE_Volume_47",
        "47",
        47,
        np.int64(47),
        "Hippocampus_R",
        "hippocampus_r",
        "dl_muse_volume_47",
    ],
)
def test_read_rois_normalises_every_naming(label):
    table = pd.DataFrame({"participant_id": ["a", "b"], label: [3000.0, 3100.0], "age": [70, 71]})
    out = datasets.read_rois(table)
    assert list(out.columns) == ["participant_id", "Hippocampus_R", "age"]
    assert out["Hippocampus_R"].tolist() == [3000.0, 3100.0]


def test_read_rois_keeps_covariates_and_maps_aliases_and_derived():
    table = pd.DataFrame(
        {
            "participant_id": ["a"],
            "age": [70.0],
            "sex": ["F"],
            "site": ["x"],
            "icv": [1.4e6],
            "diagnosis": ["CN"],
            "CorpCall": [1.0],
            "Superior_parietalLobule_L": [2.0],
            "PosteriorLimbInternalCapsuleIncCerebralPeduncle_R": [3.0],
            "DL_MUSE_Volume_702": [4.0],
            "MUSE_601": [5.0],
            "MUSE_999": [6.0],
        }
    )
    before = table.copy()
    out = datasets.read_rois(table)
    assert list(out.columns) == [
        "participant_id",
        "age",
        "sex",
        "site",
        "icv",
        "diagnosis",
        "CorpusCallosum",
        "SuperiorParietalLobule_L",
        "PosteriorLimbInternalCapsule_R",
        "ICV",
        "GM",
        "MUSE_999",
    ]
    assert out.iloc[0, 6:].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    pd.testing.assert_frame_equal(table, before)


def test_read_rois_duplicate_roi_is_an_error():
    with pytest.raises(ValueError, match=r"'MUSE_47'.*'Hippocampus_R'"):
        datasets.read_rois(pd.DataFrame({"MUSE_47": [1.0], "Hippocampus_R": [2.0]}))


def test_read_rois_files_and_bad_extension(tmp_path):
    table = pd.DataFrame(
        {"participant_id": ["a", "b"], "age": [70.0, 71.0], "MUSE_48": [1.0, 2.0], "H_MUSE_Volume_31": [3.0, 4.0]}
    )
    expected = datasets.read_rois(table)
    for name, write in [("t.csv", table.to_csv), ("t.csv.gz", table.to_csv), ("t.parquet", table.to_parquet)]:
        write(tmp_path / name, index=False)
        pd.testing.assert_frame_equal(datasets.read_rois(tmp_path / name), expected)
        pd.testing.assert_frame_equal(datasets.read_rois(str(tmp_path / name)), expected)
    with pytest.raises(ValueError, match=r"t\.xlsx.*\.xlsx"):
        datasets.read_rois(tmp_path / "t.xlsx")


def test_read_rois_selects_and_validates_rois():
    table = pd.DataFrame({"MUSE_47": [1.0], "id": ["a"], "MUSE_48": [2.0], "MUSE_31": [3.0], "MUSE_702": [9.0]})
    out = datasets.read_rois(table, rois=["Amygdala_R", "MUSE_47"])
    assert list(out.columns) == ["id", "ICV", "Amygdala_R", "Hippocampus_R"]
    with pytest.raises(ValueError, match="Amygdala_L"):
        datasets.read_rois(table, rois=["Hippocampus_R", "Amygdala_L"])
    with pytest.raises(ValueError, match="NotARoi"):
        datasets.read_rois(table, rois=["NotARoi"])


# --- simulate_cohort: CN norms, copula, ICV --------------------------------------------


@pytest.mark.parametrize("age", [60, 80])
@pytest.mark.parametrize("roi", ["Hippocampus_R", "Frontal_WM_L", "LateralVentricle_L"])
def test_cn_centiles_match_stored_curves(params, age, roi):
    cohort = cn_at_age(age)
    knot = list(params["ages"]).index(age)
    r = list(params["rois"]).index(roi)
    for s, sex in enumerate(params["sexes"]):
        reference = np.exp(params["log_centiles"][s, knot, r])  # centiles 5, 25, 50, 75, 95
        sd = (reference[3] - reference[1]) / 1.349
        simulated = np.percentile(cohort.loc[cohort["sex"] == sex, roi], [5, 50, 95])
        np.testing.assert_allclose(simulated, reference[[0, 2, 4]], atol=0.1 * sd)


def test_copula_correlation_matches_stored_correlation(params):
    cohort = cn_at_age(70)
    women = cohort[cohort["sex"] == "F"][["icv", *params["rois"]]]
    spearman = women.rank().corr().to_numpy()
    expected = 6 / np.pi * np.arcsin(params["corr"] / 2)  # Spearman of a Gaussian copula
    upper = np.triu_indices_from(expected, 1)
    deviation = np.abs(spearman - expected)[upper]
    assert deviation.mean() < 0.01 and deviation.max() < 0.06


def test_icv_scales_roi_volumes(params):
    assert np.median(params["corr"][0, 1:]) > 0.3
    cohort = datasets.load_example()
    cn = cohort[cohort["diagnosis"] == "CN"]
    brain = cn[datasets.roi_names()].sum(axis=1)
    for sex in ("F", "M"):
        rows = cn["sex"] == sex
        assert np.corrcoef(cn.loc[rows, "icv"], brain[rows])[0, 1] > 0.4
        assert np.corrcoef(cn.loc[rows, "icv"], cn.loc[rows, "Hippocampus_L"])[0, 1] > 0.2
    assert cn.loc[cn["sex"] == "M", "icv"].median() > 1.1 * cn.loc[cn["sex"] == "F", "icv"].median()


# --- site effects ----------------------------------------------------------------------


def test_site_effects_have_stored_magnitude(params):
    cohort = cn_at_age(70, n=30000, sites=20, seed=2)
    women = cohort[cohort["sex"] == "F"]
    logs = np.log(women[datasets.roi_names()])
    by_site = logs.groupby(women["site"])
    n = by_site.size().to_numpy()
    within_sd = np.sqrt(by_site.var().mul(n - 1, axis=0).sum() / (n.sum() - len(n)))
    gamma = (by_site.mean() - logs.mean()) / within_sd  # site shifts in residual-SD units
    common = gamma.mean(axis=1)
    specific = gamma.sub(common, axis=0)
    rbar = np.corrcoef(logs.to_numpy(), rowvar=False).mean()
    roi_shift = np.sqrt(np.mean(specific.var(axis=1).to_numpy() - (1 - rbar) / n))
    assert roi_shift == pytest.approx(float(params["roi_shift_sd"]), rel=0.15)
    assert 0.5 * params["site_shift_sd"] < common.std() < 1.8 * params["site_shift_sd"]
    log_scale = np.log(by_site.std() / within_sd).mean(axis=1)
    assert 0.3 * params["site_logscale_sd"] < log_scale.std() < 2.5 * params["site_logscale_sd"]


# --- disease ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    return datasets.simulate_cohort(20000, random_state=3, return_truth=True)


def test_atrophy_grows_with_diagnosis(mixed):
    cohort, _ = mixed
    hippocampus = cohort["Hippocampus_L"] + cohort["Hippocampus_R"]
    groups = {dx: hippocampus[cohort["diagnosis"] == dx] for dx in ("CN", "MCI", "AD")}
    assert groups["AD"].mean() < groups["MCI"].mean() < groups["CN"].mean()
    assert 1.0 < cohens_d(groups["CN"], groups["AD"]) < 1.6
    assert 0.4 < cohens_d(groups["CN"], groups["MCI"]) < 1.0
    ventricles = cohort["LateralVentricle_L"] + cohort["LateralVentricle_R"]
    assert ventricles[cohort["diagnosis"] == "AD"].median() > 1.2 * ventricles[cohort["diagnosis"] == "CN"].median()
    icv = cohort.groupby("diagnosis")["icv"].mean()
    assert icv.max() / icv.min() < 1.01  # head size does not atrophy


def test_truth_subtypes_and_severity(mixed):
    cohort, truth = mixed
    assert truth.index.equals(cohort.index) and (truth["participant_id"] == cohort["participant_id"]).all()
    cn = cohort["diagnosis"] == "CN"
    assert (truth.loc[cn, "subtype"] == "none").all() and (truth.loc[cn, "severity"] == 0).all()
    assert (truth.loc[~cn, "severity"] > 0).all()
    severity = truth.groupby(cohort["diagnosis"])["severity"].mean()
    assert severity["AD"] == pytest.approx(2 * severity["MCI"], rel=0.1)
    shares = truth.loc[~cn, "subtype"].value_counts(normalize=True)
    assert set(shares.index) == {"typical", "limbic_predominant", "hippocampal_sparing", "minimal"}
    assert shares["typical"] == pytest.approx(0.5, abs=0.03)
    # the subtypes differ where they should: medial temporal vs parietal cortex
    ad = cohort["diagnosis"] == "AD"
    ratio = (cohort["Hippocampus_L"] / cohort["AngularGyrus_L"]).groupby(truth.loc[ad, "subtype"]).median()
    assert ratio["limbic_predominant"] < ratio["hippocampal_sparing"]


# --- determinism, example, validation --------------------------------------------------


def test_simulation_is_deterministic():
    a = datasets.simulate_cohort(300, random_state=7)
    pd.testing.assert_frame_equal(a, datasets.simulate_cohort(300, random_state=7))
    pd.testing.assert_frame_equal(a, datasets.simulate_cohort(300, random_state=np.random.default_rng(7)))
    assert not a.equals(datasets.simulate_cohort(300, random_state=8))
    no_ventricles = datasets.simulate_cohort(300, random_state=7, include_ventricles=False)
    assert list(no_ventricles.columns[6:]) == datasets.roi_names()
    pd.testing.assert_frame_equal(no_ventricles, a[no_ventricles.columns])
    assert list(a.columns[:6]) == ["participant_id", "site", "age", "sex", "icv", "diagnosis"]
    assert list(a.columns[6:]) == datasets.roi_names(include_ventricles=True)


def test_load_example():
    example = datasets.load_example()
    assert example.shape == (3000, 151) and not {"subtype", "severity"} & set(example.columns)
    sizes = example["site"].value_counts()
    assert len(sizes) == 4 and sizes.is_unique
    shares = example["diagnosis"].value_counts(normalize=True)
    assert shares["CN"] == pytest.approx(0.5, abs=0.03) and shares["AD"] == pytest.approx(0.25, abs=0.03)
    assert example["age"].between(55, 90).all() and (example[datasets.roi_names(True)] > 0).all().all()
    example["icv"] = 0.0  # callers get a copy
    cohort, truth = datasets.load_example(return_truth=True)
    assert (cohort["icv"] > 0).all() and set(truth.columns) == {"participant_id", "subtype", "severity"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n must"),
        ({"diagnosis": {"XX": 1.0}}, "diagnosis.*XX"),
        ({"diagnosis": {"CN": -1.0, "AD": 2.0}}, "diagnosis"),
        ({"sites": 0}, "sites"),
        ({"sites": ["a", "a"]}, "sites"),
        ({"age_range": (30, 90)}, "age_range"),
        ({"age_range": (80, 70)}, "age_range"),
    ],
)
def test_simulate_cohort_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.simulate_cohort(**kwargs)


# --- make_semisynthetic ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cn_table():
    return datasets.simulate_cohort(n=3000, diagnosis={"CN": 1.0}, random_state=0)


def test_semisynthetic_reduces_adjusted_volume(cn_table):
    result = datasets.make_semisynthetic(cn_table, random_state=0)
    rois = result.rois
    assert len(result.background) == len(result.target) == 1500 and rois == datasets.roi_names(include_ventricles=True)
    assert result.background.index.intersection(result.target.index).empty
    assert result.target.index.union(result.background.index).equals(cn_table.index)
    assert (result.target["participant_id"] == cn_table.loc[result.target.index, "participant_id"]).all()
    pd.testing.assert_frame_equal(result.target_healthy[rois], cn_table.loc[result.target.index, rois])
    # covariate-adjusted volume, recomputed independently: v - b'(x - mean x)
    x = np.column_stack([cn_table["age"], cn_table["sex"].eq("M"), cn_table["icv"]]).astype(float)
    x -= x.mean(axis=0)
    slopes = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), cn_table[rois].to_numpy(), rcond=None)[0][1:]
    adjusted = pd.DataFrame(cn_table[rois].to_numpy() - x @ slopes, index=cn_table.index, columns=rois).loc[
        result.target.index
    ]
    reduction = (result.target_healthy[rois] - result.target[rois]) / adjusted
    touched = result.factors > 0
    realised = reduction.to_numpy()[touched.to_numpy()]
    assert ((realised >= 0.1) & (realised <= 0.3)).all()
    np.testing.assert_allclose(reduction.to_numpy(), result.factors.to_numpy(), atol=1e-9)
    untouched = ~touched.to_numpy()
    assert (result.target[rois].to_numpy()[untouched] == result.target_healthy[rois].to_numpy()[untouched]).all()
    for k, pattern in result.patterns.items():
        rows = result.subtype == k
        assert touched.loc[rows, pattern].all().all() and not touched.loc[rows].drop(columns=pattern).any().any()
    assert np.bincount(result.subtype).tolist() == [0, 500, 500, 500]


def test_semisynthetic_is_deterministic_and_validates(cn_table):
    a = datasets.make_semisynthetic(cn_table, random_state=1)
    b = datasets.make_semisynthetic(cn_table, random_state=1)
    pd.testing.assert_frame_equal(a.target, b.target)
    assert (a.subtype == b.subtype).all()
    two = datasets.make_semisynthetic(cn_table, n_subtypes=2, random_state=1)
    assert set(two.subtype) == {1, 2} and not (two.factors["AngularGyrus_L"] > 0).any()
    small = datasets.make_semisynthetic(cn_table, rois=["TemporalPole_L", "MUSE_48", "Amygdala_R"], random_state=1)
    assert small.rois == ["TemporalPole_L", "Hippocampus_L", "Amygdala_R"]
    assert small.patterns[3] == ["TemporalPole_L"]
    with pytest.raises(ValueError, match="n_subtypes"):
        datasets.make_semisynthetic(cn_table, n_subtypes=4)
    with pytest.raises(ValueError, match="subtype"):
        datasets.make_semisynthetic(cn_table, rois=["Amygdala_L"])
    with pytest.raises(ValueError, match="'height'"):
        datasets.make_semisynthetic(cn_table, covariates=("age", "height"))


# --- derivation from the shared reference data -----------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"reference data folder {SHARED} is absent")
def test_derivation_reproduces_shipped_files(tmp_path):
    spec = importlib.util.spec_from_file_location("derive_datasets", ROOT / "scripts" / "derive_datasets.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.derive(SHARED, tmp_path)
    shipped = files("roisynth.data")
    assert (tmp_path / "muse_rois.csv").read_bytes() == shipped.joinpath("muse_rois.csv").read_bytes()
    with (
        np.load(tmp_path / "simulator_params.npz") as new,
        shipped.joinpath("simulator_params.npz").open("rb") as f,
        np.load(f) as old,
    ):
        assert new.files == old.files
        for key in new.files:
            if new[key].dtype.kind in "fc":
                np.testing.assert_allclose(new[key], old[key], rtol=1e-9, atol=1e-12, err_msg=key)
            else:
                np.testing.assert_array_equal(new[key], old[key], err_msg=key)
