"""Harmonizer (ComBat-GAM, vectorized across ROIs): equality with statsmodels' GLMGam and
neuroHarmonize, exactness of the inverse, new sites, several smooth terms, bad input, files,
and the issue's figures on IXI."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from neuroHarmonize import harmonizationApply, harmonizationLearn
from sklearn.utils import check_random_state
from statsmodels.gam.api import BSplines
from statsmodels.gam.gam_cross_validation.gam_cross_validation import MultivariateGAMCVPath
from statsmodels.gam.generalized_additive_model import GLMGam

import roisynth
from roisynth import datasets
from roisynth.exceptions import NotFittedError
from roisynth.preprocessing import Harmonizer, _combat

IXI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ixi_dlmuse"
ROIS = datasets.roi_names()[:4]
SHIFT = {"A": 0.0, "B": 300.0, "C": -200.0, "D": 400.0}  # site offset of ROI g: SHIFT * (1 + g / 4), mm³
SCALE = {"A": 1.0, "B": 1.4, "C": 0.7, "D": 1.3}  # site noise scale


def simulate(n: int, seed: int, sites: str = "ABC", icv_effect: bool = False) -> pd.DataFrame:
    """Sites with the same covariate distribution, known additive offsets and noise scales; ROIs
    curve in age and, with ``icv_effect``, grow with ICV (faster above 1.6 l)."""
    rng = np.random.default_rng(seed)
    site = rng.choice(list(sites), n)
    age = rng.uniform(40, 85, n)
    icv = rng.normal(1.45e6, 1.2e5, n)
    male = rng.random(n) < 0.5
    g = np.arange(len(ROIS))
    shift = np.array([SHIFT[s] for s in site])[:, None] * (1 + g / 4)
    scale = np.array([SCALE[s] for s in site])[:, None]
    trend = 4000 + 500 * g - 12 * (age[:, None] - 60) - 0.3 * (age[:, None] - 60) ** 2 + 250 * male[:, None]
    if icv_effect:
        trend = trend + 2e-3 * (icv[:, None] - 1.45e6) + 1e-8 * np.maximum(icv[:, None] - 1.6e6, 0) ** 2
    volumes = trend + shift + 50 * scale * rng.standard_normal((n, len(ROIS)))
    covariates = pd.DataFrame({"participant_id": [f"s{seed}-{i}" for i in range(n)], "site": site, "age": age,
                               "sex": np.where(male, "M", "F"), "icv": icv})
    return pd.concat([covariates, pd.DataFrame(volumes, columns=ROIS)], axis=1).set_index("participant_id", drop=False)


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, float) / np.asarray(b, float) - 1)))


def covars_of(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"SITE": table.site.to_numpy(object), "age": table.age.to_numpy(float),
                         "sex": table.sex.eq("M").to_numpy(float)})


@pytest.fixture(scope="module")
def train():
    return simulate(300, seed=0)


@pytest.fixture(scope="module")
def fitted(train):
    return Harmonizer().fit(train)


# -- the GAM: statsmodels' GLMGam, per ROI, at the chosen penalty ----------------------------
class ReplayFolds:
    """statsmodels' cross-validation iterator giving the Harmonizer's folds (for every penalty)."""

    k_folds = _combat.K_FOLDS

    def __init__(self, n: int, random_state):
        self.folds = _combat.fold_of_rows(n, check_random_state(random_state))

    def split(self, X, y=None, label=None):
        for k in range(self.k_folds):
            yield self.folds != k, self.folds == k


def check_against_glmgam(model: Harmonizer, table: pd.DataFrame, smooth: list[str], linear: list[str],
                         searched: int = 4):
    """Each ROI's coefficients = GLMGam's at the model's penalty (≤ 1e-6 relative), and, for the
    first ``searched`` ROIs, that penalty = the one statsmodels' k-fold search picks on the same folds."""
    knots = [s.knots for s in model.model_["smooth_model"]["bsplines_constructor"].smoothers]
    smoother = BSplines(table[smooth].to_numpy(float), df=[10] * len(smooth), degree=[3] * len(smooth),
                        knot_kwds=[{"all_knots": k} for k in knots])
    exog = np.column_stack([pd.get_dummies(table.site, dtype=float), table[linear].to_numpy(float)])
    folds = ReplayFolds(len(table), model.random_state)
    for g, roi in enumerate(model.feature_names_in_):
        y = table[roi].to_numpy(float)
        gam = GLMGam(y, exog=exog, smoother=smoother, alpha=list(model.penalty_[g]))
        assert rel_err(model.model_["B_hat"][:, g], gam.fit().params) <= 1e-6, roi
        if g >= searched:
            continue
        search = MultivariateGAMCVPath(smoother=smoother, alphas=[_combat.PENALTY_GRID] * len(smooth), gam=GLMGam,
                                       cost=lambda a, b: np.linalg.norm(a - b) / len(a), endog=y, exog=exog,
                                       cv_iterator=folds).fit()
        np.testing.assert_allclose(search.alpha_cv, model.penalty_[g], rtol=1e-12, err_msg=roi)


def test_gam_is_glmgam_per_roi_with_its_cv_penalty(train, fitted):
    assert fitted.penalty_.shape == (len(ROIS), 1)
    check_against_glmgam(fitted, train.assign(sex=train.sex.eq("M").astype(float)), ["age"], ["sex"])


def test_two_smooth_terms():
    """Age and ICV both smooth (neuroHarmonize allows one with bounds): each ROI has two
    penalties, chosen over the 11 × 11 grid, and the fit is GLMGam's with both."""
    train = simulate(300, seed=0, icv_effect=True)
    model = Harmonizer(covariates=("age", "sex", "icv"), smooth=("icv", "age"),
                       smooth_bounds={"age": (0, 120), "icv": None}).fit(train)
    assert model.penalty_.shape == (len(ROIS), 2)
    knots = [s.knots for s in model.model_["smooth_model"]["bsplines_constructor"].smoothers]
    assert knots[0][0] == 0 and knots[1][0] < train.icv.min() and knots[1][-1] > train.icv.max()  # widened range
    # statsmodels' search over 121 penalty pairs takes 2 s a ROI: one ROI
    check_against_glmgam(model, train.assign(sex=train.sex.eq("M").astype(float)), ["age", "icv"], ["sex"], 1)
    harmonized = model.transform(train)
    assert rel_err(model.inverse_transform(harmonized)[ROIS], train[ROIS]) < 1e-12
    shifts, _ = site_effects(harmonized)
    assert np.abs(shifts).max() < 15


def test_matches_neuroharmonize(train, fitted, monkeypatch):
    """neuroHarmonize's harmonizationLearn, given each ROI's penalty, harmonizes the training
    table as we do: the GAM and the pooled variance to 1e-14, the empirical Bayes to the
    tolerance of its iteration (measured: 6e-8 relative on the harmonized values; neuroCombat
    divides the relative change by the signed estimate, so a negative shift never holds its
    iteration back, and it stops earlier). With its own random folds (statsmodels 0.15 draws
    them from fresh entropy, so it differs from run to run) within 5e-3 (measured 1.2e-3..1.4e-3)."""
    def learn():
        with pytest.warns(PendingDeprecationWarning):  # neuroHarmonize's np.matrix
            return harmonizationLearn(train[ROIS].to_numpy(float), covars_of(train), smooth_terms=["age"],
                                      smooth_term_bounds=(0, 120), seed=0)

    ours = fitted.transform(train)[ROIS].to_numpy()
    assert rel_err(ours, learn()[1]) < 5e-3
    penalties = iter(fitted.penalty_[:, 0])
    monkeypatch.setattr(GLMGam, "select_penweight_kfold", lambda self, **kwargs: ((next(penalties),), None))
    model, harmonized = learn()
    assert rel_err(ours, harmonized) < 1e-6
    assert rel_err(fitted.model_["B_hat"][3:], model["B_hat"][3:]) < 1e-8  # the covariate effects
    assert rel_err(fitted.model_["var_pooled"], model["var_pooled"]) < 1e-12
    assert rel_err(fitted.model_["delta_star"], model["delta_star"]) < 1e-5
    np.testing.assert_allclose(fitted.model_["gamma_star"], model["gamma_star"], atol=1e-5)


# -- properties on simulated sites ---------------------------------------------------------
def site_effects(table: pd.DataFrame, sites: str = "BC") -> tuple[np.ndarray, np.ndarray]:
    """Site coefficients (``sites`` vs the others) [site, ROI] of an OLS on age, age², sex, ICV
    and site dummies, and the max/min ratio over sites of the residual SD, per ROI."""
    X = np.column_stack([np.ones(len(table)), table.age, table.age**2, table.sex.eq("M"), table.icv,
                         *(table.site.eq(s) for s in sites)]).astype(float)
    y = table[ROIS].to_numpy(float)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    sd = pd.DataFrame(y - X @ beta).groupby(table.site.to_numpy()).std()
    return beta[-len(sites):], (sd.max() / sd.min()).to_numpy()


def test_removes_known_site_offsets_and_inverse_puts_them_back(train, fitted):
    truth = np.array([[SHIFT[s] - SHIFT["A"]] for s in "BC"]) * (1 + np.arange(len(ROIS)) / 4)
    shifts, sd_ratio = site_effects(train)
    assert np.abs(shifts - truth).max() < 40 and sd_ratio.min() > 1.6  # the simulated site effects are there
    harmonized = fitted.transform(train)
    shifts, sd_ratio = site_effects(harmonized)
    assert np.abs(shifts).max() < 15  # per-site means (adjusted for age and sex) agree
    assert sd_ratio.max() < 1.25  # and so do the spreads
    at = {s: fitted.inverse_transform(harmonized, site=s) for s in "ABC"}
    assert (at["B"].site == "B").all()
    for s in "BC":  # inverse to a site reproduces its mean shift
        shift = (at[s][ROIS] - at["A"][ROIS]).mean().to_numpy()
        assert np.abs(shift - truth["BC".index(s)]).max() < 40


def test_new_site_from_twenty_subjects(train, fitted):
    """add_site: a site never seen in fit, learned from 20 of its subjects without refitting,
    is harmonized like the training sites (its planted shift of 400-700 mm³ and 1.3× noise)."""
    new = simulate(420, seed=3, sites="D")
    model = Harmonizer().fit(train)
    before = {k: model.model_[k].copy() for k in ("stand_mean", "var_pooled", "gamma_star", "delta_star")}
    assert model.add_site(new.iloc[:20].drop(columns="site"), site="D") is model
    assert list(model.sites_) == ["A", "B", "C", "D"]
    for key, value in before.items():  # the fitted model is kept as it is
        np.testing.assert_array_equal(model.model_[key][: len(value)], value)
    np.testing.assert_array_equal(model.transform(train)[ROIS], fitted.transform(train)[ROIS])
    held_out = new.iloc[20:]
    pooled = pd.concat([model.transform(train), model.transform(held_out)])
    shifts, sd_ratio = site_effects(pooled, sites="D")
    raw_shift, _ = site_effects(pd.concat([train, held_out]), sites="D")
    assert np.abs(raw_shift).min() > 300 and np.abs(shifts).max() < 30  # the planted shift is gone
    assert sd_ratio.max() < 1.3
    planted = (SHIFT["D"] - SHIFT["A"]) * (1 + np.arange(len(ROIS)) / 4)
    back = model.inverse_transform(pooled, site="D")[ROIS] - model.inverse_transform(pooled, site="A")[ROIS]
    assert np.abs(back.mean().to_numpy() - planted).max() < 60  # and the way back to D restores it
    assert rel_err(model.inverse_transform(model.transform(held_out))[ROIS], held_out[ROIS]) < 1e-12


def test_round_trip_and_frame_kept(train, fitted):
    harmonized = fitted.transform(train)
    assert list(harmonized.columns) == list(train.columns)
    assert harmonized.index.equals(train.index)
    pd.testing.assert_frame_equal(harmonized.drop(columns=ROIS), train.drop(columns=ROIS))
    assert rel_err(fitted.inverse_transform(harmonized)[ROIS], train[ROIS]) < 1e-12
    assert list(fitted.feature_names_in_) == ROIS and list(fitted.sites_) == ["A", "B", "C"]


def test_reference_site(train, fitted):
    ref = Harmonizer(reference_site="B").fit(train)
    out = ref.transform(train)
    on_b = train.site == "B"
    assert rel_err(out.loc[on_b, ROIS], train.loc[on_b, ROIS]) < 1e-9  # the reference site is left as it is
    expected = fitted.inverse_transform(fitted.transform(train), site="B")
    assert rel_err(out[ROIS], expected[ROIS]) < 1e-9  # = harmonize, then map to B
    assert rel_err(ref.inverse_transform(out)[ROIS], train[ROIS]) < 1e-12


def test_matches_neuroharmonize_apply_on_new_data(fitted):
    new = simulate(60, seed=1)
    ours = fitted.transform(new)[ROIS].to_numpy()
    theirs = harmonizationApply(new[ROIS].to_numpy(float), covars_of(new), fitted.model_)
    assert rel_err(ours, theirs) < 1e-10
    # harmonizationApply re-codes the sites of a table lacking some of them; rows here do not depend on the rest
    only_c = new.site == "C"
    assert rel_err(fitted.transform(new[only_c])[ROIS], ours[only_c.to_numpy()]) < 1e-12


def test_linear_combat(train):
    """Without smooth terms: ordinary least squares, neuroHarmonize's linear ComBat (which rounds
    the covariates to float32 in its design matrix, hence 1e-7)."""
    linear = Harmonizer(smooth=()).fit(train)
    assert linear.penalty_.shape == (len(ROIS), 0)
    out = linear.transform(train)
    with pytest.warns(PendingDeprecationWarning):
        _, theirs = harmonizationLearn(train[ROIS].to_numpy(float), covars_of(train), seed=0)
    assert rel_err(out[ROIS], theirs) < 1e-7
    assert rel_err(out[ROIS], harmonizationApply(train[ROIS].to_numpy(float), covars_of(train), linear.model_)) < 1e-7
    assert rel_err(linear.inverse_transform(out)[ROIS], train[ROIS]) < 1e-12


def test_sex_codes(train, fitted):
    expected = fitted.transform(train)[ROIS]
    for codes in ({"M": 1, "F": 0}, {"M": "male", "F": "Female"}, {"M": " m", "F": "f"}):
        np.testing.assert_array_equal(fitted.transform(train.assign(sex=train.sex.map(codes)))[ROIS], expected)


def test_reproducible(train, fitted):
    again = Harmonizer().fit(train)
    np.testing.assert_array_equal(again.penalty_, fitted.penalty_)
    for key in ("B_hat", "var_pooled", "gamma_star", "delta_star"):
        np.testing.assert_array_equal(again.model_[key], fitted.model_[key])
    np.testing.assert_array_equal(again.transform(train)[ROIS], fitted.transform(train)[ROIS])
    other = Harmonizer(random_state=1).fit(train)  # other folds: other penalties for some ROI, close fits
    assert rel_err(other.transform(train)[ROIS], fitted.transform(train)[ROIS]) < 5e-3


def test_save_load_identical(tmp_path, train, fitted):
    path = tmp_path / "h.roisynth"
    model = Harmonizer().fit(train).add_site(simulate(30, seed=4, sites="D"))
    model.save(path)
    loaded = Harmonizer.load(path)
    assert loaded.get_params()["covariates"] == ["age", "sex"]
    assert isinstance(roisynth.load(path), Harmonizer)
    np.testing.assert_array_equal(loaded.penalty_, model.penalty_)
    new = simulate(40, seed=2, sites="ABCD")
    np.testing.assert_array_equal(loaded.transform(new)[ROIS], model.transform(new)[ROIS])
    np.testing.assert_array_equal(
        loaded.inverse_transform(new, site="D")[ROIS], model.inverse_transform(new, site="D")[ROIS]
    )
    torch = pytest.importorskip("torch")
    torch.save({"format": "something else"}, tmp_path / "bad.roisynth")
    with pytest.raises(ValueError, match="not a roisynth model file"):
        Harmonizer.load(tmp_path / "bad.roisynth")


def test_reads_files_of_the_neuroharmonize_based_harmonizer(train, fitted):
    """Format 1 (no "format" key, 1-D knots, no penalties) still loads; an unknown format is refused."""
    metadata, tensors = fitted._get_state()
    old_metadata = {k: v for k, v in metadata.items() if k != "format"}
    old_metadata["params"] = {**metadata["params"], "n_jobs": 2}   # format-1 files carry the retired n_jobs
    old_tensors = {k: v for k, v in tensors.items() if k != "penalty"} | {"knots": tensors["knots"][0]}
    old = Harmonizer._from_state(old_metadata, old_tensors)
    np.testing.assert_array_equal(old.transform(train)[ROIS], fitted.transform(train)[ROIS])
    assert np.isnan(old.penalty_).all()
    with pytest.raises(ValueError, match="format 9"):
        Harmonizer._from_state({**metadata, "format": 9}, tensors)


# -- bad input ------------------------------------------------------------------------------
def with_value(table, column, rows, value):
    out = table.copy()
    if isinstance(value, str):
        out[column] = out[column].astype(object)
    out.loc[out.index[rows], column] = value
    return out


FIT_ERRORS = {
    "missing site column": (lambda t: t.drop(columns="site"), {}, ValueError, "site column 'site'"),
    "missing covariate": (lambda t: t.drop(columns="age"), {}, ValueError, "'age'"),
    "single site": (lambda t: t.assign(site="A"), {}, ValueError, "single site"),
    "age out of bounds": (lambda t: with_value(t, "age", [3], 130.0), {}, ValueError, "'age'.*s0-3"),
    "NaN covariate": (lambda t: with_value(t, "age", [5], np.nan), {}, ValueError, "'age'.*s0-5"),
    "unmappable sex": (lambda t: with_value(t, "sex", [0], "X"), {}, ValueError, "'sex'"),
    "non-numeric ROI": (lambda t: with_value(t, ROIS[1], [0], "big"), {}, TypeError, ROIS[1]),
    "NaN ROI": (lambda t: with_value(t, ROIS[0], [7], np.nan), {}, ValueError, f"{ROIS[0]}.*s0-7"),
    "no ROI columns": (lambda t: t.rename(columns=dict(zip(ROIS, "abcd"))), {}, ValueError, "rois="),
    "missing ROI": (lambda t: t, {"rois": ROIS + ["nope"]}, ValueError, "nope"),
    "unknown reference": (lambda t: t, {"reference_site": "Z"}, ValueError, "'Z'"),
    "two smooth terms, one pair": (lambda t: t, {"smooth": ("age", "sex")}, ValueError, "one pair.*dict"),
    "bounds of a linear term": (lambda t: t, {"smooth_bounds": {"sex": (0, 1)}}, ValueError, r"\['sex'\]"),
    "reversed bounds": (lambda t: t, {"smooth_bounds": (90, 10)}, ValueError, "smooth_bounds.*low < high"),
    "constant smooth term": (lambda t: t.assign(age=50.5), {}, ValueError, "'age' takes a single value"),
    "smooth not a covariate": (lambda t: t, {"smooth": "icv"}, ValueError, "'icv'"),
    "array input": (lambda t: t[ROIS].to_numpy(), {}, TypeError, "DataFrame"),
}


@pytest.mark.parametrize("case", FIT_ERRORS)
def test_bad_fit_input(train, case):
    change, params, error, message = FIT_ERRORS[case]
    with pytest.raises(error, match=message):
        Harmonizer(**params).fit(change(train))


def test_bad_transform_input(train, fitted):
    with pytest.raises(ValueError, match=r"\['Z'\]"):
        fitted.transform(with_value(train, "site", [2, 4], "Z"))
    with pytest.raises(ValueError, match=r"\['Z'\]"):
        fitted.inverse_transform(train, site="Z")
    with pytest.raises(ValueError, match="'age'.*s0-1"):
        fitted.transform(with_value(train, "age", [1], -5.0))
    with pytest.raises(ValueError, match="'age'.*s0-2"):
        fitted.inverse_transform(with_value(train, "age", [2], np.nan))
    with pytest.raises(ValueError, match=ROIS[2]):
        fitted.transform(train.drop(columns=ROIS[2]))
    with pytest.raises(ValueError, match="add_site"):
        fitted.transform(with_value(train, "site", [0], "Z"))
    at_bound = fitted.transform(with_value(train, "age", [0, 1], [0.0, 120.0]))
    assert np.isfinite(at_bound[ROIS].to_numpy()).all()  # anywhere inside smooth_bounds works



def test_bad_add_site_input(train):
    model = Harmonizer().fit(train)
    new = simulate(10, seed=5, sites="D")
    with pytest.raises(ValueError, match=r"\['B'\] are already"):
        model.add_site(new, site="B")
    with pytest.raises(ValueError, match=r"\['B', 'C'\] are already"):
        model.add_site(pd.concat([new, train.iloc[:3]]))
    with pytest.raises(ValueError, match=r"\['E'\] have a single subject"):
        model.add_site(with_value(new, "site", [4], "E"))
    with pytest.raises(ValueError, match="'age'.*s5-2"):
        model.add_site(with_value(new, "age", [2], 150.0))
    with pytest.raises(ValueError, match=ROIS[1]):
        model.add_site(new.drop(columns=ROIS[1]))
    assert list(model.sites_) == ["A", "B", "C"]  # nothing added by a refused call
    with pytest.raises(NotFittedError):
        Harmonizer().add_site(new)


# -- the issue's figures on the real multi-site IXI table -----------------------------------
@pytest.fixture(scope="module")
def ixi():
    if not (IXI / "IXI_DLMUSE.csv").exists():
        pytest.skip(f"IXI DLMUSE table not found at {IXI}")
    demog = pd.read_csv(IXI / "IXI_demog.csv").rename(columns={"ID": "participant_id", "Age": "age", "Sex": "sex"})
    demog["site"] = demog.participant_id.str.split("-").str[1]  # IXI016-Guys-0697-T1 -> Guys
    volumes = datasets.read_rois(IXI / "IXI_DLMUSE.csv").rename(columns={"ID": "participant_id"})
    return demog.merge(volumes, on="participant_id")


IXI_ROIS = datasets.roi_names(include_ventricles=True)  # all 145 single ROIs


def between_site_share(table: pd.DataFrame, rois) -> float:
    """Mean over ROIs of R² of site dummies in an OLS of the (age, sex)-residualized ROI."""
    covariates = sm.add_constant(np.column_stack([table.age, table.sex.eq("M")]).astype(float))
    sites = sm.add_constant(pd.get_dummies(table.site, drop_first=True, dtype=float).to_numpy())
    shares = [sm.OLS(sm.OLS(table[r].to_numpy(float), covariates).fit().resid, sites).fit().rsquared for r in rois]
    return float(np.mean(shares))


def age_slope(table: pd.DataFrame, roi: str) -> float:
    X = sm.add_constant(np.column_stack([table.age, table.sex.eq("M")]).astype(float))
    return float(sm.OLS(table[roi].to_numpy(float), X).fit().params[1])


def test_ixi_figures(ixi):
    assert sorted(ixi.site.unique()) == ["Guys", "HH", "IOP"]
    harmonized = Harmonizer(rois=IXI_ROIS, random_state=0).fit_transform(ixi)
    raw_share, share = between_site_share(ixi, IXI_ROIS), between_site_share(harmonized, IXI_ROIS)
    assert raw_share > 0.02 and share <= raw_share / 10, (raw_share, share)
    for roi in ("Hippocampus_L", "Hippocampus_R"):
        assert abs(age_slope(harmonized, roi) / age_slope(ixi, roi) - 1) <= 0.10, roi


def test_ixi_same_random_state_same_result(ixi):
    rois = ["Hippocampus_L", "Hippocampus_R", *IXI_ROIS[::8]]  # 21 ROIs
    first, second = (Harmonizer(rois=rois, random_state=7).fit_transform(ixi) for _ in range(2))
    pd.testing.assert_frame_equal(first, second, check_exact=True)
