"""Command line and demo, end to end on files."""

import numpy as np
import pandas as pd
import pytest

from roisynth import datasets
from roisynth.cli import main


def test_demo_writes_a_paired_cohort_and_twins(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--epochs", "10", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "floor" in printed and "ratio" in printed and "severity" in printed
    paired = pd.read_csv(tmp_path / "paired_synthetic.csv")
    twins = pd.read_csv(tmp_path / "healthy_twins.csv")
    rois = datasets.roi_names()
    assert set(paired["cohort"]) == {"healthy", "disease"}
    assert (paired.groupby("synthetic_id").size() == 2).all()
    assert list(paired.columns) == ["synthetic_id", "cohort", "site", "age", "sex", "icv", *rois]
    healthy, ill = (paired[paired.cohort == c].set_index("synthetic_id") for c in ("healthy", "disease"))
    pd.testing.assert_frame_equal(healthy[["site", "age", "sex", "icv"]], ill[["site", "age", "sex", "icv"]])
    example = datasets.load_example()
    assert len(twins) == (example.diagnosis != "CN").sum()
    assert list(twins.columns) == [*example.columns, "severity"]
    patients = example[example.diagnosis != "CN"].reset_index(drop=True)
    pd.testing.assert_frame_equal(twins[["participant_id", "site", "age"]], patients[["participant_id", "site", "age"]])
    assert (tmp_path / "model.roisynth").exists()
    # the release: generated covariates (no real quasi-identifier), audited, written whole
    assert "Privacy audit of the release" in printed
    released = pd.read_csv(tmp_path / "release" / "synthetic.csv")
    real = set(example[["site", "age", "sex", "icv"]].itertuples(index=False, name=None))
    assert not real & set(released[["site", "age", "sex", "icv"]].itertuples(index=False, name=None))
    assert not real & set(paired[["site", "age", "sex", "icv"]].itertuples(index=False, name=None))
    assert {p.name for p in (tmp_path / "release").iterdir()} >= {"synthetic.csv", "report.html", "release.json"}
    # a pipeline with a Harmonizer loads in a fresh process (its class is registered on demand)
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, roisynth; m = roisynth.load(sys.argv[1]); "
                             "print(type(m.steps_[0][1]).__name__)", str(tmp_path / "model.roisynth")],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "Harmonizer"


def test_fit_sample_counterfactual_round_trip(tmp_path, example):
    table = tmp_path / "cohort.parquet"
    example.iloc[:600].to_parquet(table)
    model = tmp_path / "m.roisynth"
    assert main(["fit", str(table), "-o", str(model), "--epochs", "5", "--quiet"]) == 0
    assert main(["sample", str(model), "-n", "25", "-o", str(tmp_path / "s.csv"), "--random-state", "1"]) == 0
    sample = pd.read_csv(tmp_path / "s.csv")
    assert len(sample) == 50 and sample.groupby("synthetic_id")["cohort"].apply(set).eq({"background", "target"}).all()
    assert main(["sample", str(model), "-n", "7", "-o", str(tmp_path / "t.csv"), "--cohort", "target"]) == 0
    assert len(pd.read_csv(tmp_path / "t.csv")) == 7
    patients = example.iloc[:600].query("diagnosis != 'CN'")
    patients.to_csv(tmp_path / "patients.csv", index=False)
    out = tmp_path / "twins.csv"
    assert main(["counterfactual", str(model), str(tmp_path / "patients.csv"), "-o", str(out), "--severity"]) == 0
    twins = pd.read_csv(out)
    assert list(twins["participant_id"]) == list(patients["participant_id"])
    assert "severity" in twins and (twins["age"].to_numpy() == patients["age"].to_numpy()).all()


def test_fit_with_two_tables_and_explicit_rois(tmp_path, cohorts):
    cn, pt = cohorts
    cols = list(cn.columns[:12])
    cn[cols].iloc[:200].to_csv(tmp_path / "cn.csv", index=False)
    pt[cols].iloc[:200].to_csv(tmp_path / "pt.csv", index=False)
    model = tmp_path / "m.roisynth"
    args = ["fit", str(tmp_path / "cn.csv"), str(tmp_path / "pt.csv"), "-o", str(model), "--epochs", "3", "--quiet"]
    assert main([*args, "--rois", ",".join(cols[:4])]) == 0
    from roisynth import load

    assert list(load(model).feature_names_in_) == cols[:4]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "cohort.xlsx", "-o", "m.roisynth"], "extension .xlsx"),
        (["fit", "missing.csv", "-o", "m.roisynth"], "no table at"),
        (["sample", "missing.roisynth", "-n", "3", "-o", "x.csv"], "no model file"),
    ],
)
def test_clear_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_sample_to_an_unknown_format(tmp_path, small_model, capsys):
    small_model.save(tmp_path / "m.roisynth")
    assert main(["sample", str(tmp_path / "m.roisynth"), "-n", "3", "-o", str(tmp_path / "x.txt")]) == 2
    assert "extension .txt" in capsys.readouterr().err


def test_harmonize_then_pipeline_fit_and_sample(tmp_path, example):
    rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R", "Precuneus_L", "Precuneus_R"]
    table = tmp_path / "cohort.csv"
    example[["participant_id", "site", "age", "sex", "icv", "diagnosis", *rois]].to_csv(table, index=False)
    out, model = tmp_path / "harmonized.csv", tmp_path / "harmonizer.roisynth"
    assert main(["harmonize", str(table), "-o", str(out), "--smooth", "", "--save", str(model), "--fit-on", "CN"]) == 0
    harmonized = pd.read_csv(out)
    assert list(harmonized.columns) == list(pd.read_csv(table).columns)
    site_means = harmonized.groupby("site")["Hippocampus_L"].mean()
    raw_means = example.groupby("site")["Hippocampus_L"].mean()
    assert site_means.std() < raw_means.std()
    again = tmp_path / "again.csv"
    assert main(["harmonize", str(table), "-o", str(again), "--apply", str(model)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again), harmonized)

    pipe = tmp_path / "pipe.roisynth"
    args = ["fit", str(table), "-o", str(pipe), "--epochs", "5", "--quiet", "--harmonize", "--smooth", "",
            "--residualize", "age,sex,icv"]
    assert main(args) == 0
    sample = tmp_path / "s.csv"
    argv = ["sample", str(pipe), "-n", "20", "-o", str(sample), "--site", "harmonized", "--random-state", "0"]
    assert main(argv) == 0
    synthetic = pd.read_csv(sample)
    assert list(synthetic.columns[:6]) == ["synthetic_id", "cohort", "site", "age", "sex", "icv"]
    assert sorted(synthetic.columns[6:]) == sorted(rois)
    assert (synthetic["site"] == "harmonized").all() and len(synthetic) == 40
    twins = tmp_path / "twins.csv"
    assert main(["counterfactual", str(pipe), str(table), "-o", str(twins), "--severity"]) == 0
    assert list(pd.read_csv(twins).columns) == [*pd.read_csv(table).columns, "severity"]


def test_benchmark_on_a_user_table_writes_table_a1(tmp_path, example, capsys):
    table = tmp_path / "cohort.csv"
    example.iloc[:900].to_csv(table, index=False)
    out = tmp_path / "bench"
    argv = ["benchmark", "--table", str(table), "--models", "linear,gaussian", "--n-bootstrap", "20", "-o", str(out),
            "--quiet"]
    assert main(argv) == 0
    scores = pd.read_csv(out / "benchmark.csv")
    assert list(scores["model"]) == ["LinearContrastive", "GaussianMixture (BIC)"]
    assert (scores["w2_target_low"] < scores["w2_target"]).all()
    assert (scores["w2_target"] < scores["w2_target_high"]).all()
    markdown = (out / "benchmark.md").read_text()
    assert "W2 background↔target [95% CI] (real" in markdown and "membership AUC" in markdown
    assert "twin RMSE ratio" not in markdown  # no ground truth on a user's table
    assert main(["benchmark", "--models", "nothing-like-this", "-o", str(out)]) == 2
    assert "matches none" in capsys.readouterr().err


def test_report_from_a_model_file_and_from_a_sampled_table(tmp_path, example, small_model):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    example.iloc[:400].to_csv(train, index=False)
    example.iloc[400:700].to_csv(test, index=False)
    small_model.save(tmp_path / "m.roisynth")
    out = tmp_path / "model_report.html"
    common = ["--train", str(train), "--n-bootstrap", "20", "--rois", "Hippocampus_L,Amygdala_R"]
    assert main(["report", str(tmp_path / "m.roisynth"), "-o", str(out), "--test", str(test), *common]) == 0
    page = out.read_text()
    assert page.count('src="data:image/png;base64,') == 5 and "w2_background" in page
    assert sorted(p.name for p in (tmp_path / "model_report_figures").iterdir())[0].endswith(".png")
    shared = tmp_path / "shared.html"
    assert main(["report", str(tmp_path / "m.roisynth"), "-o", str(shared), "--test", str(test), "--shareable",
                 *common]) == 0
    assert shared.read_text().count('src="data:image/png;base64,') == 3       # no latent codes, no severities
    sampled = tmp_path / "synthetic.csv"
    assert main(["sample", str(tmp_path / "m.roisynth"), "-n", "300", "-o", str(sampled)]) == 0
    assert main(["report", str(sampled), "-o", str(tmp_path / "tables.html"), *common]) == 0
    assert "optimistic" in (tmp_path / "tables.html").read_text()  # no --test given
    assert main(["report", str(train), "-o", str(tmp_path / "x.html"), *common]) == 2


def test_sample_streams_any_size_with_the_same_rows_whatever_the_format(tmp_path, cohorts, monkeypatch):
    import roisynth.io as rio
    from roisynth import LinearContrastive

    cn, pt = cohorts
    rois = list(cn.columns[:5])
    model = LinearContrastive(n_common=2, n_salient=1, random_state=0).fit(cn[rois], pt[rois])
    path = tmp_path / "m.roisynth"
    model.save(path)
    monkeypatch.setattr(rio, "BLOCK", 300)           # several blocks in a small test
    assert main(["sample", str(path), "-n", "1000", "-o", str(tmp_path / "s.parquet"), "--random-state", "3"]) == 0
    streamed = pd.read_parquet(tmp_path / "s.parquet")
    assert len(streamed) == 2000 and streamed.synthetic_id.tolist() == list(np.repeat(np.arange(1000), 2))
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "s.parquet").num_row_groups == 4  # one per block: memory holds one block
    assert main(["sample", str(path), "-n", "1000", "-o", str(tmp_path / "s.csv"), "--random-state", "3"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "s.csv"), streamed, check_dtype=False)
    again = pd.concat(rio.iter_samples(model, 1000, random_state=3), ignore_index=True)
    pd.testing.assert_frame_equal(again, streamed, check_dtype=False)
    assert not streamed.duplicated(subset=rois).any()   # blocks are independent draws, not repeats


def test_sample_threads_give_the_same_file(tmp_path, small_model, cohorts, capsys):
    """--threads N draws a neural model's rows on N threads: the file is the one-thread file;
    a model that draws on one thread, or N < 1, is an error naming --threads."""
    from roisynth import LinearContrastive

    small_model.save(tmp_path / "m.roisynth")
    files = {}
    for threads in ([], ["--threads", "2"]):
        files[len(threads)] = tmp_path / f"s{len(threads)}.parquet"
        assert main(["sample", str(tmp_path / "m.roisynth"), "-n", "5000", "-o", str(files[len(threads)]),
                     "--random-state", "1", *threads]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(files[2]), pd.read_parquet(files[0]))
    assert main(["sample", str(tmp_path / "m.roisynth"), "-n", "10", "-o", str(tmp_path / "x.csv"),
                 "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    rois = list(cohorts[0].columns[:5])
    LinearContrastive(n_common=2, n_salient=1, random_state=0).fit(cohorts[0][rois], cohorts[1][rois]).save(
        tmp_path / "linear.roisynth")
    assert main(["sample", str(tmp_path / "linear.roisynth"), "-n", "10", "-o", str(tmp_path / "y.csv"),
                 "--threads", "2"]) == 2
    assert "--threads applies to neural synthesizers; LinearContrastive" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.csv").exists()
