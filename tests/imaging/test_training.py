"""Training loops of the diffusion pipeline (tiny "16" preset, CPU) and the imaging CLI built on them."""

import csv
import dataclasses
import json
import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("monai")

from roisynth.imaging.config import get_config  # noqa: E402
from roisynth.imaging.masks import edit_masks  # noqa: E402
from roisynth.imaging.nifti import load_nifti, save_nifti  # noqa: E402
from roisynth.imaging.training import train  # noqa: E402

from roisynth.cli import main  # noqa: E402


def _config(steps=4, every=2, **stages):
    """The "16" preset with every stage at ``steps`` steps, checkpoints every ``every``."""
    config = get_config("16")
    changes = {name: dataclasses.replace(getattr(config, name), steps=steps, log_every=1, checkpoint_every=every)
               for name in ("autoencoder", "unet", "controlnet", "segmenter")}
    changes.update({name: dataclasses.replace(changes[name], **kw) for name, kw in stages.items()})
    return config.replace(**changes)


def _log(folder):
    with open(folder / "train_log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


class Interrupt(Exception):
    pass


def _crash_at(message):
    def log(line):
        if line.startswith(message):
            raise Interrupt(line)
    return log


def test_steps_lower_the_autoencoder_loss(tmp_path):
    config = _config(steps=24, every=100, autoencoder={"lr": 1e-3})
    result = train(config, tmp_path, stages=["autoencoder"], device="cpu", log=lambda _: None)
    losses = [float(r["loss"]) for r in _log(tmp_path)]
    assert len(losses) == 24 and result["losses"]["autoencoder"] == pytest.approx(losses[-1], rel=1e-5)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["finished"] == ["autoencoder"] and progress["n_test"] == 4
    seen, held_out = (np.load(tmp_path / f"{name}.npz")["images"].reshape(-1, 16 ** 3)
                      for name in ("cohort", "test_cohort"))
    assert len(seen) == 8 and len(held_out) == 4
    assert not (held_out[:, None] == seen[None]).all(axis=2).any()       # no test subject was trained on


def test_resumed_training_equals_uninterrupted(tmp_path):
    config, stages = _config(steps=4, every=2), ("autoencoder", "unet")
    train(config, tmp_path / "straight", stages=stages, device="cpu", log=lambda _: None)
    folder = tmp_path / "interrupted"
    with pytest.raises(Interrupt):      # after step 3 of the autoencoder: its checkpoint is at step 2
        train(config, folder, stages=stages, device="cpu", log=_crash_at("autoencoder step 3"))
    with pytest.raises(Interrupt):      # resumed; then stopped in the UNet stage the same way
        train(config, folder, stages=stages, resume=True, device="cpu", log=_crash_at("unet step 3"))
    lines = []
    train(config, folder, stages=stages, resume=True, device="cpu", log=lines.append)
    assert "autoencoder: finished earlier, skipped" in lines and "unet: resuming after step 2" in lines
    straight, resumed = _weights(tmp_path / "straight/model.pt"), _weights(folder / "model.pt")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop_time(_log(folder)) == drop_time(_log(tmp_path / "straight"))


def test_progress_skips_finished_stages_and_guards_the_folder(tmp_path):
    config = _config(steps=2, every=2)
    with pytest.raises(ValueError, match="needs a trained 'autoencoder'"):
        train(config, tmp_path, stages=["unet"], device="cpu")
    train(config, tmp_path, stages=["autoencoder"], device="cpu", bf16=True, log=lambda _: None)
    before = _weights(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, tmp_path, stages=["autoencoder"], device="cpu")
    with pytest.raises(ValueError, match="another configuration"):
        train(config.replace(n_subjects=9), tmp_path, resume=True, device="cpu")
    lines = []
    result = train(config, tmp_path, stages=["autoencoder", "unet"], resume=True, device="cpu", log=lines.append)
    assert lines[0] == "autoencoder: finished earlier, skipped"
    after = _weights(tmp_path / "model.pt")
    ae = [k for k in before if k.startswith("autoencoder.")]
    assert all(torch.equal(before[k], after[k]) for k in ae)
    assert not all(torch.equal(before[k], after[k]) for k in after if k.startswith("unet."))
    assert [r["stage"] for r in _log(tmp_path)] == ["autoencoder"] * 2 + ["unet"] * 2
    assert set(result["seconds"]) == {"autoencoder", "unet"} and np.isfinite(list(result["losses"].values())).all()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, folder, port):
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)    # no OpenMP team in a forked child
    train(_config(steps=2, every=2), folder, stages=["autoencoder", "unet", "segmenter"], device="cpu",
          log=lambda _: None)


def test_two_processes_with_gloo(tmp_path):
    """DDP on the CPU (gloo), two forked processes: both finish, rank 0 writes, streams differ."""
    torch.multiprocessing.start_processes(_rank, args=(tmp_path, _free_port()), nprocs=2, start_method="fork")
    assert json.loads((tmp_path / "timings.json").read_text())["world_size"] == 2
    rng = torch.load(tmp_path / "checkpoints/unet.pt", weights_only=True)["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["generator"], rng[1]["generator"])
    assert (tmp_path / "segmenter").is_dir() and len(_log(tmp_path)) == 6


def test_cli_train_evaluate_sample_counterfactual(tmp_path, capsys):
    """End to end on the "32" preset (at 16³ the hippocampi and amygdalae vanish: nothing to edit)."""
    run, phantom = tmp_path / "run", tmp_path / "phantom"
    assert main(["imaging", "train", "--config", "32", "-o", str(run), "--steps", "1", "--subjects", "4",
                 "--test-subjects", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "controlnet:" in out and "segmenter:" in out and (run / "model.pt").is_file()
    assert main(["imaging", "evaluate", str(run), "--steps", "1", "--calibration", "2", "--device", "cpu"]) == 0
    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["n_subjects"] == 1 and summary["config"] == "32" and 0 <= summary["volume_within_25"] <= 1
    assert len(pd.read_csv(run / "evaluation_subjects.csv")) == 1 and "null_ssim" in capsys.readouterr().out

    assert main(["imaging", "phantom", "-o", str(phantom), "--shape", "32"]) == 0
    labels, affine, _ = load_nifti(phantom / "labels.nii.gz")
    edited = edit_masks(labels, None, {17: 0.7 * np.count_nonzero(labels == 17)}).labels
    save_nifti(tmp_path / "edited.nii.gz", edited, affine)
    common = ["--steps", "1", "--device", "cpu"]
    assert main(["imaging", "sample", str(run / "model.pt"), "--age", "75", "--sex", "F", "--diagnosis", "AD",
                 "--labels", str(phantom / "labels.nii.gz"), "-o", str(tmp_path / "sample.nii.gz"), *common]) == 0
    assert main(["imaging", "counterfactual", str(phantom), "--model", str(run), "--labels-cf",
                 str(tmp_path / "edited.nii.gz"),
                 "--diagnosis-cf", "AD", "-o", str(tmp_path / "cf.nii.gz"), *common]) == 0
    assert "CN -> AD" in capsys.readouterr().out
    for name in ("sample", "cf"):
        image, image_affine, _ = load_nifti(tmp_path / f"{name}.nii.gz")
        assert image.shape == (32, 32, 32) and np.isfinite(image).all() and np.allclose(image_affine, affine)


@pytest.mark.parametrize("argv, message", [
    (["imaging", "train", "--config", "7", "-o", "x"], "unknown imaging config '7'"),
    (["imaging", "train", "--config", "16", "-o", "x", "--steps", "0"], "steps must be a positive integer"),
    (["imaging", "evaluate", "missing"], "missing"),
    (["imaging", "counterfactual", "nowhere", "--change", "Hippocampus=-0.1", "-o", "y.nii.gz"],
     "give its label map with --labels"),
    (["imaging", "counterfactual", "nowhere", "--labels", "x.nii.gz", "--change", "Hippocampus", "-o", "y.nii.gz"],
     "--change expects ROI=relative change"),
])
def test_clear_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
