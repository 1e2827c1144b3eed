"""Sharing a synthetic cohort (issue 16): `release` audits and writes a folder or refuses; the CLI keeps the
user's ROI column names and draws covariates under conditions."""

import json

import pandas as pd
import pytest

from roisynth import (
    CovariateResidualizer,
    GaussianMixtureSynthesizer,
    KDESynthesizer,
    LinearContrastive,
    datasets,
    make_pipeline,
)
from roisynth.cli import main
from roisynth.exceptions import ReleaseRefusedError
from roisynth.release import FILES, release

ROIS = datasets.roi_names()[:8]
COVARIATES = ["site", "age", "sex", "icv"]
QUICK = {"n_attacks": 200, "n_bootstrap": 0}


@pytest.fixture(scope="module")
def split():
    table = datasets.load_example()[["participant_id", *COVARIATES, "diagnosis", *ROIS]]
    return table.iloc[:2200], table.iloc[2200:]


@pytest.fixture(scope="module")
def pipeline(split):
    train, _ = split
    pipe = make_pipeline(CovariateResidualizer(), LinearContrastive(n_common=3, n_salient=2, random_state=0))
    pipe.set_params(rois=ROIS, random_state=0)
    return pipe.fit(train[train.diagnosis == "CN"], train[train.diagnosis != "CN"])


def test_release_writes_one_audited_folder(pipeline, split, tmp_path):
    train, holdout = split
    release(tmp_path / "release", train=train, holdout=holdout, model=pipeline, n=500, **QUICK)
    folder = tmp_path / "release"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["release"]            # no staging folder left behind
    synthetic = pd.read_csv(folder / "synthetic.csv")
    carried = ["age", "sex", "icv"]                     # the covariates the residualizer reads
    assert len(synthetic) == 1000 and list(synthetic.columns) == ["synthetic_id", "cohort", *carried, *ROIS]
    real = set(train[carried].itertuples(index=False, name=None))
    assert not real & set(synthetic[carried].itertuples(index=False, name=None))
    written = json.loads((folder / "release.json").read_text())
    assert written["privacy"]["flags"] == [] and written["privacy"]["override"] is None
    measures = {m["measure"]: m for m in written["privacy"]["measures"]}
    assert {"singling_out_univariate", "linkability", "exact_rows", "exact_quasi_identifiers"} <= set(measures)
    assert measures["exact_quasi_identifiers"]["copies"] == 0
    assert all(m["risk_low"] <= m["risk"] <= m["risk_high"] for m in measures.values() if m["risk_low"] is not None)
    assert written["training"]["background"] == (train.diagnosis == "CN").sum()
    assert written["model"]["class"] == "SynthesisPipeline" and written["software"]["roisynth"]
    assert 0.8 < written["fidelity"]["background"]["ratio"] < 1.5
    report = (folder / "report.html").read_text()
    assert "is <b>not</b> differentially private" in report      # the model beside the table: its status
    assert 'alt="Paired view' in report                 # synthetic people: shown
    assert 'alt="Latent space' not in report and 'alt="Severity' not in report    # real people one by one: not
    assert report.count("plots individual real subjects") == 2


def test_a_copier_is_refused_and_nothing_is_written(split, tmp_path):
    train, holdout = split
    copier = train.assign(cohort=train.diagnosis.eq("CN").map({True: "background", False: "target"}))
    with pytest.raises(ReleaseRefusedError, match="exact_quasi_identifiers: 2200 of 2200") as refused:
        release(tmp_path / "out", train=train, holdout=holdout, synthetic=copier, **QUICK)
    assert "exact_rows" in str(refused.value) and "linkability" in str(refused.value)
    assert list(tmp_path.iterdir()) == []
    # an override needs a reason, and is recorded with what it overrode
    with pytest.raises(ValueError, match="override needs a reason"):
        release(tmp_path / "out", train=train, holdout=holdout, synthetic=copier, override=" ", **QUICK)
    result = release(tmp_path / "out", train=train, holdout=holdout, synthetic=copier,
                     override="test of the override path", **QUICK)
    recorded = json.loads((tmp_path / "out" / "release.json").read_text())["privacy"]["override"]
    assert recorded["reason"] == "test of the override path" and recorded["overrode"] == result["privacy"]["flags"]


def test_a_model_that_stores_its_training_rows_is_refused(split, tmp_path):
    train, holdout = split
    cn, pt = train[train.diagnosis == "CN"][ROIS], train[train.diagnosis != "CN"][ROIS]
    with pytest.raises(ReleaseRefusedError, match="KDESynthesizer stores its training rows"):
        release(tmp_path / "kde", train=train, holdout=holdout, model=KDESynthesizer(random_state=0).fit(cn, pt),
                **QUICK)
    assert not (tmp_path / "kde").exists()
    with pytest.raises(ValueError, match="not an empty folder"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x.txt").write_text("x")
        release(tmp_path / "full", train=train, holdout=holdout,
                model=GaussianMixtureSynthesizer(random_state=0).fit(cn, pt), **QUICK)


def test_cli_keeps_the_users_roi_names_and_samples_under_conditions(split, tmp_path, capsys):
    train, holdout = split
    index = dict(zip(datasets.muse_rois().name, datasets.muse_rois()["index"]))
    numeric = {roi: str(index[roi]) for roi in ROIS}              # a NiChart DLMUSE table: 47, 48, ...
    train.rename(columns=numeric).to_csv(tmp_path / "train.csv", index=False)
    holdout.rename(columns=numeric).to_csv(tmp_path / "holdout.csv", index=False)
    model = str(tmp_path / "m.roisynth")
    rois = ",".join(numeric.values())
    assert main(["fit", str(tmp_path / "train.csv"), "-o", model, "--rois", rois, "--epochs", "5", "--quiet",
                 "--residualize", "age,sex,icv"]) == 0
    assert main(["sample", model, "-n", "40", "-o", str(tmp_path / "s.csv"), "--condition", "sex=F",
                 "--condition", "age=70:80", "--random-state", "0"]) == 0
    sample = pd.read_csv(tmp_path / "s.csv")
    assert list(sample.columns[-len(ROIS):]) == list(numeric.values())
    assert set(sample.sex) == {"F"} and sample.age.between(70, 80).all()
    capsys.readouterr()
    assert main(["sample", model, "-n", "5", "-o", str(tmp_path / "bad.csv"), "--condition", "age=130:140"]) == 2
    assert "does not meet the training support" in capsys.readouterr().err
    assert main(["release", "--model", model, "--train", str(tmp_path / "train.csv"), "--holdout",
                 str(tmp_path / "holdout.csv"), "-o", str(tmp_path / "release"), "-n", "300", "--n-attacks", "200",
                 "--n-bootstrap", "0", "--override", "5-epoch test model"]) == 0
    released = pd.read_csv(tmp_path / "release" / "synthetic.csv")
    assert list(released.columns[-len(ROIS):]) == list(numeric.values())
