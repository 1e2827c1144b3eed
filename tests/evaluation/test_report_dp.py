"""The report's "Differential privacy" section: a private fit's exact (ε, δ), mechanism and advantage
bound; a plain "not differentially private" otherwise; escaped; pipelines and model files alike."""

import math
import re

import pytest

from roisynth import ContrastiveVAE, GaussianMixtureSynthesizer, SynthesisPipeline, datasets
from roisynth.evaluation import build_report
from roisynth.evaluation._report_dp import differential_privacy_html, membership_advantage
from roisynth.privacy import DifferentialPrivacy

ROIS = datasets.roi_names()[:12]
TINY = {"epochs": 2, "n_hidden": 8, "batch_size": 32, "verbose": False, "random_state": 0}


@pytest.fixture(scope="module")
def data(example):
    """(train, test) pairs of CN vs AD tables on 12 ROIs."""
    cn, ad = (example.loc[example.diagnosis == d, ROIS] for d in ("CN", "AD"))
    return (cn.iloc[:300], ad.iloc[:200]), (cn.iloc[300:400], ad.iloc[200:300])


@pytest.fixture(scope="module")
def private(data):
    return ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=3), **TINY).fit(*data[0])


def _section(page: str) -> str:
    return re.search(r"<h2>Differential privacy</h2>.*?(?=<h2>)", page).group(0)


def _cell(section: str, quantity: str) -> str:
    """The value cell of one row of the section's table."""
    return re.search(rf"<tr><td>{quantity}</td><td class=\"num\">([^<]*)</td>", section).group(1)


def test_a_private_fit_reports_its_exact_budget_mechanism_and_advantage_bound(private, data, tmp_path):
    path = build_report(tmp_path / "report.html", model=private, train=data[0], test=data[1], n_bootstrap=0)
    page = path.read_text(encoding="utf-8")
    section = _section(page)
    assert page.index("<h2>Differential privacy</h2>") < page.index("<h2>Privacy audit</h2>")
    eps, delta = private.privacy_spent_
    n, q = 500, 2 * 32 / 500
    assert delta == 1 / n**2 and eps <= 3
    assert _cell(section, "\u03b5 spent / budget") == f"{eps:.4g} / 3"
    assert _cell(section, "\u03b4") == f"{delta:.3g} (budget: 1/n\u00b2, the default)"
    assert _cell(section, "training subjects n") == "500"
    assert _cell(section, "Poisson sampling rate q") == f"{q:.4g}"
    assert _cell(section, "DP-SGD steps T") == str(math.ceil(2 / q)) == "16"
    assert _cell(section, "DP-SGD noise multiplier \u03c3") == f"{private.noise_multiplier_:.4g}"
    assert _cell(section, "clipping norm C") == "1"
    assert _cell(section, "released cohort means") == f"noise multiplier {private.means_noise_multiplier_:.4g}"
    assert _cell(section, "composed releases") == "none"
    bound = (math.exp(eps) - 1 + 2 * delta) / (math.exp(eps) + 1)
    assert membership_advantage(eps, delta) == pytest.approx(bound, rel=1e-12)
    assert re.search(r'<b id="dp-advantage">([^<]+)</b>', section).group(1) == f"{bound:.3f}"
    assert f"right at most {50 * (1 + bound):.1f} %" in section
    assert "not</b> differentially private" not in page and "warning" not in section


def test_model_files_and_pipelines_give_the_same_section(private, data, tmp_path):
    private.save(tmp_path / "m.roisynth")
    expected = differential_privacy_html(private, 500)
    assert differential_privacy_html(ContrastiveVAE.load(tmp_path / "m.roisynth"), 500) == expected
    pipeline = SynthesisPipeline([("model", ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=3), **TINY))],
                                 rois=ROIS, random_state=0).fit(*data[0])
    section = differential_privacy_html(pipeline, 500)
    assert "ContrastiveVAE) was fitted with <b>(\u03b5 = " in section
    assert f"{pipeline.synthesizer.privacy_spent_[0]:.4g} / 3" in section


def test_composed_releases_and_no_released_means_are_stated(data):
    budget = DifferentialPrivacy(epsilon=3, means_share=0, composed_with=(5.0, 8.0))
    model = ContrastiveVAE(privacy=budget, **TINY).fit(*data[0])
    section = differential_privacy_html(model, 500)
    assert _cell(section, "composed releases") == "\u03c3 = 5, \u03c3 = 8"
    assert _cell(section, "released cohort means") == "none"
    assert "DP-SGD steps T" in section


def test_tables_that_are_not_the_training_ones_hide_rate_and_steps(private):
    section = differential_privacy_html(private, 400)
    assert "do not reproduce the spent \u03b5" in section and "DP-SGD steps T" not in section
    assert _cell(section, "\u03b5 spent / budget") == f"{private.privacy_spent_[0]:.4g} / 3"


def test_an_ordinary_model_is_said_not_to_be_private(data, tmp_path):
    model = GaussianMixtureSynthesizer(random_state=0).fit(*data[0])
    page = build_report(tmp_path / "report.html", model=model, train=data[0], test=data[1],
                        n_bootstrap=0).read_text(encoding="utf-8")
    section = _section(page)
    assert "(GaussianMixtureSynthesizer) is <b>not</b> differentially private" in section
    assert "empirical privacy audit below" in section and "<table" not in section
    tables = build_report(tmp_path / "tables.html", synthetic=data[1], train=data[0],
                          n_bootstrap=0).read_text(encoding="utf-8")
    assert "cannot state a differential-privacy guarantee" in _section(tables)


def test_names_are_escaped(private):
    odd = type("Odd<script>&", (), {})()
    for name in ("privacy", "privacy_spent_", "noise_multiplier_", "means_noise_multiplier_", "epochs",
                 "batch_size"):
        setattr(odd, name, getattr(private, name))
    for section in (differential_privacy_html(odd, 500), differential_privacy_html(type(odd)(), 500)):
        assert "(Odd&lt;script&gt;&amp;)" in section and "<script" not in section
    assert "DP-SGD steps T" in differential_privacy_html(odd, 500)
