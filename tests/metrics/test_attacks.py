"""The anonymeter-style privacy attacks, the exact-copy checks and the audit built on them."""

import math

import numpy as np
import pandas as pd
import pytest

from roisynth.metrics import (
    PRIVACY_THRESHOLDS,
    exact_copies,
    inference_risk,
    linkability_risk,
    privacy_audit,
    privacy_flags,
    singling_out_risk,
)
from roisynth.metrics.attacks import attack_result

ROIS = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Thalamus_L", "Putamen_L"]


def cohort(n, rng):
    """A small mixed table: site and sex categorical, age and ICV numeric, ROIs tied to ICV."""
    icv = rng.normal(1.5e6, 1.2e5, n).round()
    rois = {roi: icv / 1.5e6 * rng.normal(4000 + 300 * i, 300, n) for i, roi in enumerate(ROIS)}
    return pd.DataFrame({"site": rng.choice(["site1", "site2", "site3"], n), "age": rng.uniform(55, 90, n),
                         "sex": rng.choice(["F", "M"], n), "icv": icv} | rois)


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    return cohort(400, rng), cohort(400, rng), cohort(400, rng)  # train, control, fresh synthetic


ATTACKS = {
    "singling_out_univariate": lambda s, t, c, seed: singling_out_risk(s, t, c, n_attacks=200, mode="univariate",
                                                                       random_state=seed),
    "singling_out_multivariate": lambda s, t, c, seed: singling_out_risk(s, t, c, n_attacks=200, random_state=seed),
    "linkability": lambda s, t, c, seed: linkability_risk(s, t, c, aux_columns=(["site", "age", "sex", "icv"], ROIS),
                                                          n_attacks=200, random_state=seed),
    "inference": lambda s, t, c, seed: inference_risk(s, t, c, secret="Hippocampus_L", n_attacks=200,
                                                      random_state=seed),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_copier_is_at_high_risk(tables, attack):
    train, control, _ = tables
    result = ATTACKS[attack](train, train, control, 0)
    assert result.risk_low > PRIVACY_THRESHOLDS["risk"]
    assert result.main_rate > result.control_rate
    assert result.main_rate > result.baseline_rate


@pytest.mark.parametrize("attack", ATTACKS)
def test_fresh_draws_of_the_population_carry_no_risk(tables, attack):
    train, control, fresh = tables
    result = ATTACKS[attack](fresh, train, control, 0)
    assert result.risk_low == 0.0  # the interval covers 0
    assert result.risk < 0.1
    assert result.risk_low <= result.risk <= result.risk_high


def test_the_audit_flags_a_copier_on_every_attack_and_passes_fresh_draws(tables):
    train, control, fresh = tables
    flags = privacy_flags(privacy_audit(train, train, control, n_attacks=200, random_state=0))
    flagged = {reason.split(":")[0] for reason in flags}
    assert {"singling_out_univariate", "singling_out_multivariate", "linkability", "exact_rows",
            "exact_quasi_identifiers", "exact_cells"} <= flagged
    assert any(name.startswith("inference_") for name in flagged)
    assert privacy_flags(privacy_audit(fresh, train, control, n_attacks=200, random_state=0)) == []


def test_the_audit_table(tables):
    train, control, fresh = tables
    audit = privacy_audit(fresh, train, control, n_attacks=100, random_state=0)
    assert list(audit.columns) == ["risk", "risk_low", "risk_high", "main_rate", "control_rate", "baseline_rate",
                                   "n_attacks", "copies", "n_checked"]
    # default secrets: the first, middle and last column outside site/age/sex/icv
    assert [n for n in audit.index if n.startswith("inference_")] == ["inference_Hippocampus_L",
                                                                      "inference_Amygdala_L",
                                                                      "inference_Putamen_L"]
    assert audit.loc["linkability", "n_attacks"] == 100
    assert audit.loc["exact_quasi_identifiers", "n_checked"] == len(fresh)


def test_the_audit_is_reproducible(tables):
    train, control, fresh = tables
    first, second = (privacy_audit(fresh, train, control, n_attacks=100, random_state=3) for _ in range(2))
    pd.testing.assert_frame_equal(first, second)


def test_exact_copies_counts_planted_copies(tables):
    train, _, fresh = tables
    synthetic = fresh.copy()
    synthetic.iloc[:7] = train.iloc[10:17].to_numpy()  # 7 whole rows
    synthetic.loc[synthetic.index[20:32], ["site", "age", "sex", "icv"]] = \
        train[["site", "age", "sex", "icv"]].iloc[50:62].to_numpy()  # 12 quasi-identifier tuples
    synthetic.loc[synthetic.index[40:45], "Thalamus_L"] = train["Thalamus_L"].iloc[:5].to_numpy()  # 5 cells
    copies = exact_copies(synthetic, train)
    assert copies["rows"] == 7
    assert copies["quasi_identifiers"] == 7 + 12
    assert copies["quasi_identifier_columns"] == ["site", "age", "sex", "icv"]
    # cells: 7 rows x 7 numeric columns, 12 x (age, icv), 5 Thalamus_L
    assert copies["cells"] == 7 * 7 + 12 * 2 + 5
    assert copies["cells_by_column"]["Thalamus_L"] == pytest.approx(12 / 400)


def test_exact_copies_sees_through_float32_and_skips_small_integers(tables):
    train, _, fresh = tables
    synthetic = fresh.assign(age=train["age"].astype(np.float32).to_numpy(), visits=np.arange(400) % 5)
    copies = exact_copies(synthetic, train.assign(visits=np.arange(400) % 5), quasi_identifiers=["age"])
    assert copies["quasi_identifiers"] == 400
    assert copies["cells"] == 400  # age; the small integer codes of "visits" are not checked
    assert copies["cells_checked"] == 400 * 7
    assert copies["rows"] == 0


def test_a_demo_like_table_with_copied_covariates_is_caught(tables):
    train, _, fresh = tables
    synthetic = fresh.assign(**{c: train[c].to_numpy() for c in ("site", "age", "sex", "icv")})
    assert exact_copies(synthetic, train)["quasi_identifiers"] == len(synthetic)


def test_intervals_shrink_with_the_number_of_attacks():
    widths = [attack_result(n, 0.6 * n, 0.2 * n, 0.01 * n) for n in (100, 400, 1600)]
    widths = [r.risk_high - r.risk_low for r in widths]
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.05)  # ~ 1 / sqrt(n)


def test_intervals_shrink_with_the_number_of_attacks_of_a_real_attack(tables):
    train, control, _ = tables
    widths = [singling_out_risk(train, train, control, n_attacks=n, mode="univariate", random_state=0)
              for n in (50, 400)]
    assert widths[0].main_high - widths[0].main_low > widths[1].main_high - widths[1].main_low


def test_the_risk_follows_the_wilson_rates_and_their_propagated_error():
    z = 1.959963984540054
    n, k_main, k_control = 500, 400, 100

    def wilson(k):
        return (k + z * z / 2) / (n + z * z), z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)

    (main, d_main), (control, d_control) = wilson(k_main), wilson(k_control)
    risk = (main - control) / (1 - control)
    error = math.sqrt((d_main / (1 - control)) ** 2 + ((main - 1) / (1 - control) ** 2 * d_control) ** 2)
    result = attack_result(n, k_main, k_control, 5)
    assert result.risk == pytest.approx(risk)
    assert (result.risk_low, result.risk_high) == pytest.approx((risk - error, risk + error))
    assert result.control_rate == pytest.approx(control)


def test_a_smaller_control_is_corrected_for_its_size_without_flagging_fresh_draws(tables):
    # anonymeter's correction under 1000 control rows is conservative (the control success is
    # scaled down): fresh draws get a small positive risk, below the flag
    train, control, fresh = tables
    result = singling_out_risk(fresh, train, control.iloc[:150], n_attacks=200, random_state=0)
    assert result.risk_low < PRIVACY_THRESHOLDS["risk"]


@pytest.mark.parametrize("call, message", [
    (lambda s, t, c: singling_out_risk(s, t, c, mode="bivariate"), "mode='bivariate'"),
    (lambda s, t, c: singling_out_risk(s, t, c, n_cols=20), "n_cols=20"),
    (lambda s, t, c: linkability_risk(s, t, c, aux_columns=(["age"], ["Hippocampus_X"])), "Hippocampus_X"),
    (lambda s, t, c: linkability_risk(s, t, c, aux_columns=["age", "icv"]), "aux_columns must be a pair"),
    (lambda s, t, c: inference_risk(s, t, c, secret="Hippocampus_X"), "Hippocampus_X"),
    (lambda s, t, c: inference_risk(s, t, c, secret="age", aux_columns=["age", "sex"]), "contains the secret"),
    (lambda s, t, c: inference_risk(s, t, c, secret="site", regression=True), "'site' is categorical"),
    (lambda s, t, c: inference_risk(s, t, c, secret="age", n_attacks=5000), "n_attacks=5000"),
    (lambda s, t, c: privacy_audit(s, t, c, secrets=["Hippocampus_X"]), "secrets"),
])
def test_bad_arguments_are_named(tables, call, message):
    train, control, fresh = tables
    with pytest.raises(ValueError, match=message):
        call(fresh, train, control)


def test_bad_tables_are_named(tables):
    train, control, fresh = tables
    with pytest.raises(ValueError, match=r"synthetic columns differ from train: missing \['icv'\]"):
        singling_out_risk(fresh.drop(columns="icv"), train, control)
    with pytest.raises(ValueError, match="control column 'age' has missing values"):
        inference_risk(fresh, train, control.assign(age=np.nan), secret="icv")
    with pytest.raises(TypeError, match="column 'age' is numeric in train but"):
        linkability_risk(fresh.assign(age="old"), train, control, aux_columns=(["age"], ["icv"]))
    with pytest.raises(TypeError, match="train must be a pandas DataFrame"):
        singling_out_risk(fresh, "train.csv", control)
    with pytest.raises(ValueError, match="quasi_identifiers"):
        exact_copies(fresh, train, quasi_identifiers=["postcode"])
    with pytest.raises(ValueError, match=r"unknown thresholds \['risk_high'\]"):
        privacy_flags(privacy_audit(fresh, train, control, n_attacks=50, random_state=0), {"risk_high": 0.2})


def test_arrays_are_matched_by_position():
    rng = np.random.default_rng(1)
    train, control = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    assert inference_risk(train, train, control, secret="x2", random_state=0).risk_low > 0.5
