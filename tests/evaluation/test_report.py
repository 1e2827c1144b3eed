"""The HTML report: self-contained, the right figures for each model, exact numbers, reproducible."""

import base64
import re
import struct

import numpy as np
import pandas as pd
import pytest

from roisynth import ContrastiveVAE, GaussianMixtureSynthesizer, datasets
from roisynth.evaluation import METRICS, build_report, standardizer
from roisynth.evaluation._figures import effect_sizes, latent_scatter
from roisynth.metrics import cohens_d, effect_error, effect_maps, effect_scale, gaussian_w2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EMBEDDED = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def data(example):
    """(train, test) pairs of CN vs AD ROI tables and the diagnosis labels."""
    rois = datasets.roi_names()
    cn, ad = example[example.diagnosis == "CN"][rois], example[example.diagnosis == "AD"][rois]
    return (cn.iloc[:250], ad.iloc[:250]), (cn.iloc[250:350], ad.iloc[250:350]), example["diagnosis"]


@pytest.fixture(scope="module")
def model(data):
    return ContrastiveVAE(epochs=15, verbose=False, random_state=0).fit(*data[0])


@pytest.fixture(scope="module")
def report(model, data, tmp_path_factory):
    train, test, groups = data
    path = build_report(tmp_path_factory.mktemp("cvae") / "report.html", model=model, train=train, test=test,
                        groups=groups, n_bootstrap=50, random_state=0)
    return path, path.read_text(encoding="utf-8")


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in EMBEDDED.findall(page)]


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def _metric_table(page: str) -> str:
    return re.search(r'<table id="metrics">.*?</table>', page).group(0)


def _value(page: str, metric: str) -> float:
    """The value cell of one row of the metric table."""
    cell = re.search(rf"<code>{metric}</code></td><td class=\"num\">([^<\[]+)", _metric_table(page)).group(1)
    return float(cell)


def test_report_is_self_contained_with_every_figure_as_png(report):
    path, page = report
    assert path.exists() and path.name == "report.html"
    assert 'src="http' not in page and "<script" not in page and "<link" not in page and "url(" not in page
    pngs = _pngs(page)
    assert len(pngs) == 5 == page.count("<img ")
    assert all(min(_size(png)) > 300 for png in pngs)
    written = sorted((path.parent / "report_figures").glob("*.png"))
    assert [p.name for p in written] == ["1_distributions.png", "2_paired.png", "3_latents.png", "4_severity.png",
                                         "5_effect_sizes.png"]
    assert [p.read_bytes() for p in written] == pngs
    assert "Not shown" not in page and "optimistic" not in page


def test_metric_table_lists_every_evaluate_row_with_an_explanation(report):
    _, page = report
    rows = re.findall(r"<code>(\w+)</code>", _metric_table(page))
    assert set(rows) == set(METRICS) and len(rows) == len(METRICS)
    low, high = map(float, re.search(r"<code>w2_background</code></td><td class=\"num\">[^\[]+\[([^,]+), ([^\]]+)\]",
                                     page).groups())
    assert low <= _value(page, "w2_background") <= high
    for text in ("ContrastiveVAE", "epochs", "real held-out patients (target)", "aspect", "what it tells you"):
        assert text in page


def test_model_file_gives_the_same_report_and_same_seed_same_bytes(report, model, data, tmp_path):
    train, test, groups = data
    model.save(tmp_path / "m.roisynth")
    path = build_report(tmp_path / "again.html", model=str(tmp_path / "m.roisynth"), train=train, test=test,
                        groups=groups, n_bootstrap=50, random_state=0)
    page = path.read_text(encoding="utf-8")
    assert _metric_table(page) == _metric_table(report[1])
    assert _pngs(page) == _pngs(report[1])


def test_model_without_pairing_or_latents_skips_those_figures(data, tmp_path):
    train, test, _ = data
    gmm = GaussianMixtureSynthesizer(n_components=1, random_state=0).fit(*train)
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "2_paired.png").write_bytes(PNG_MAGIC)  # left over from an earlier report
    page = build_report(tmp_path / "gmm.html", model=gmm, train=train, test=test, n_bootstrap=0,
                        png_dir=figures).read_text(encoding="utf-8")
    assert len(_pngs(page)) == 2
    assert sorted(p.name for p in figures.iterdir()) == ["1_distributions.png", "5_effect_sizes.png"]
    assert page.count('class="note">Not shown') == 3
    assert "can_pair = False" in page and "no latent representation" in page and "no severity score" in page
    assert "[" not in re.search(r"<code>w2_target</code>.*?</tr>", page).group(0)  # n_bootstrap=0: no CI


def test_synthetic_tables_are_scored_exactly(model, data, tmp_path):
    train, test, _ = data
    synthetic = [model.sample(len(t), cohort=c, random_state=5) for c, t in zip(("background", "target"), train)]
    paths = []
    for cohort, table in zip(("background", "target"), synthetic):
        paths.append(tmp_path / f"synthetic_{cohort}.csv")
        table.to_csv(paths[-1], index=False)
    page = build_report(tmp_path / "tables.html", synthetic=paths, train=train, test=test, n_bootstrap=0,
                        rois=["Hippocampus_L", "Amygdala_R"]).read_text(encoding="utf-8")
    assert len(_pngs(page)) == 2 and page.count("it needs a model") == 3
    z = standardizer(train[0])
    assert _value(page, "w2_background") == pytest.approx(gaussian_w2(z(synthetic[0]), z(test[0])), rel=5e-3)
    real_d, synthetic_d = cohens_d(test[1], test[0]), cohens_d(synthetic[1], synthetic[0])
    assert _value(page, "effect_map_r") == pytest.approx(np.corrcoef(real_d, synthetic_d)[0, 1], rel=5e-3, abs=1e-3)
    scale = effect_scale(*train, *synthetic)  # d does not change with the z-scoring of the metric table
    assert _value(page, "effect_map_scale") == pytest.approx(scale, rel=5e-3)
    ratio = effect_error(*train, *synthetic, reference=test)["ratio"]
    ratio_cell = re.search(r"<code>effect_map_rmse</code></td>(?:<td class=\"num\">([^<]+)</td>){3}", page).group(1)
    assert float(ratio_cell) == pytest.approx(ratio, rel=5e-3)


def test_without_test_data_the_report_warns_and_blanks_privacy(model, data, tmp_path):
    train, _, _ = data
    page = build_report(tmp_path / "r.html", synthetic=[model.sample(100, c) for c in ("background", "target")],
                        train=train, n_bootstrap=0).read_text(encoding="utf-8")
    assert "Compared with training data: optimistic" in page and "fewer rows than the training ones" in page
    for metric in ("dcr_ratio", "membership_auc"):
        assert re.search(rf"<code>{metric}</code></td><td class=\"num\">\u2014<", page)
    assert _value(page, "w2_target") > 0


def _privacy_rows(page: str) -> dict:
    """measure -> status ("ok" or "flagged") of the rows of the privacy table."""
    table = re.search(r'<table id="privacy">.*?</table>', page).group(0)
    return {name: "flagged" if "flagged" in status else status
            for status, name in re.findall(r"<tr(?: class=\"flagged\")?><td>([^<]*)</td><td><code>(\w+)</code>", table)}


def test_the_privacy_audit_lists_every_risk_and_passes_a_generator(report):
    _, page = report
    rows = _privacy_rows(page)
    assert {"singling_out_univariate", "singling_out_multivariate", "linkability", "exact_rows",
            "exact_quasi_identifiers", "exact_cells"} <= set(rows)
    assert sum(name.startswith("inference_") for name in rows) == 3
    assert set(rows.values()) == {"ok"} and "Privacy audit passed" in page
    assert re.search(r"<code>linkability</code></td><td class=\"num\">[\d.]+ \[[\d.]+, [\d.]+\]", page)


def test_the_privacy_audit_flags_a_copier_with_its_covariates(data, tmp_path):
    train, test, _ = data
    covariates = datasets.load_example()[["site", "age", "sex", "icv"]]
    train, test = ([t.join(covariates) for t in pair] for pair in (train, test))
    page = build_report(tmp_path / "copier.html", synthetic=train, train=train, test=test,
                        n_bootstrap=0).read_text(encoding="utf-8")
    rows = _privacy_rows(page)
    assert rows["exact_rows"] == rows["exact_quasi_identifiers"] == rows["linkability"] == "flagged"
    assert "Privacy audit failed" in page and "500 of 500 synthetic rows copy a training row" in page


def test_without_test_data_the_privacy_audit_is_not_run(model, data, tmp_path):
    train, _, _ = data
    page = build_report(tmp_path / "r.html", synthetic=[model.sample(100, c) for c in ("background", "target")],
                        train=train, n_bootstrap=0).read_text(encoding="utf-8")
    assert "Not run: the attacks need held-out subjects" in page and '<table id="privacy">' not in page


def test_bad_arguments_are_clear_errors(model, data, tmp_path):
    train, test, groups = data
    out = tmp_path / "r.html"
    with pytest.raises(ValueError, match="pass model="):
        build_report(out, train=train)
    with pytest.raises(ValueError, match="train="):
        build_report(out, model=model)
    with pytest.raises(ValueError, match="unknown: \\['Nope'\\]"):
        build_report(out, model=model, train=train, rois=["Nope"])
    with pytest.raises(ValueError, match="no label for 100 held-out"):
        build_report(out, model=model, train=train, test=test, groups=groups.drop(test[1].index))
    with pytest.raises(ValueError, match="train target lacks column"):
        build_report(out, model=model, train=(train[0], train[1].iloc[:, 1:]))
    assert not out.exists()


def test_effect_figure_plots_synthetic_and_training_d_against_the_reference(data):
    train, test, _ = data
    synthetic = tuple(t.sample(frac=1.0, replace=True, random_state=0) for t in train)
    with_test = effect_sizes(effect_maps(*train, *synthetic, reference=test), scale=0.91, error_ratio=1.3)
    scatter = with_test.axes[0]
    assert [t.get_text() for t in scatter.get_legend().get_texts()] == [
        "real training data (for scale)", "synthetic data", "same d as the reference"]
    assert "effect scale 0.91, effect error ratio 1.30" in scatter.get_title()
    assert "held-out" in scatter.get_xlabel()
    np.testing.assert_allclose(scatter.collections[1].get_offsets()[:, 0], cohens_d(test[1], test[0]))
    alone = effect_sizes(effect_maps(*train, *synthetic), scale=0.91).axes[0]
    assert len(alone.collections) == 1 and "training" in alone.get_xlabel()  # no held-out data: no grey cloud
    assert "error ratio" not in alone.get_title()


def test_latent_scatter_draws_one_panel_per_latent_block():
    rng = np.random.default_rng(0)
    labels = pd.Categorical(np.repeat(["CN", "AD"], 50), categories=["CN", "AD"])
    only_z = pd.DataFrame(rng.normal(size=(100, 1)), columns=["z1"])
    assert len(latent_scatter(only_z, labels).axes) == 1
    both = pd.DataFrame(rng.normal(size=(100, 6)), columns=["z1", "z2", "z3", "s1", "s2", "s3"])
    left, right = latent_scatter(both, labels).axes
    assert "principal component 1" in left.get_xlabel() and right.get_xlabel().startswith("s")
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["CN (n=50)", "AD (n=50)"]


def test_report_from_tables_takes_a_synthetic_dataframe(model, data, tmp_path):
    from roisynth.evaluation import build_report_from_tables
    from roisynth.io import sample_table

    train, test, _ = data
    label = lambda tables: pd.concat([t.assign(diagnosis=d) for t, d in zip(tables, ("CN", "AD"))])  # noqa: E731
    table = sample_table(model, 100, cohort="both", random_state=0)   # a DataFrame has .sample: not a model
    path = build_report_from_tables(tmp_path / "frame.html", source=table, train=label(train), test=label(test),
                                    target="AD", n_bootstrap=0)
    assert "it needs a model" in path.read_text(encoding="utf-8")


def test_given_tables_are_described_beside_their_model(model, data, tmp_path):
    """With a model and tables (a released file), the metrics describe the tables as given: copies of the
    training rows raise the privacy banner that the model's own draws do not."""
    train, test, _ = data
    copies = tuple(t.copy() for t in train)
    kwargs = {"train": train, "test": test, "n_bootstrap": 0}
    drawn = build_report(tmp_path / "drawn.html", model=model, **kwargs).read_text()
    given = build_report(tmp_path / "given.html", model=model, synthetic=copies, **kwargs).read_text()
    assert "Privacy warning" not in drawn and "Privacy warning" in given
    assert 'alt="Paired view' in given                           # the model still supplies its figures

