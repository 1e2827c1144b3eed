"""Command line: ``roisynth imaging phantom | masks | train | sample | counterfactual | evaluate``.

``roisynth imaging phantom -o FOLDER [--shape 64 | --shape 1mm] [--source procedural|PATH]
[--random-state 0]`` writes a phantom subject (image, labels, posteriors NIfTI + phantom.json);
``roisynth imaging masks PHANTOM_FOLDER --volumes row.csv [--reference factual.csv] [--row 0]
-o edited_labels.nii.gz`` edits its label map to a row of ROI volumes
(:func:`~roisynth.imaging.bridge.counterfactual_masks`) and prints achieved vs requested volumes.

The mask-guided diffusion pipeline (needs ``roisynth[imaging]``'s MONAI):

``roisynth imaging train --config {16,32,64,96} -o DIR [--stages autoencoder,unet,...]
[--resume] [--bf16] [--device cpu|cuda] [--steps N] [--subjects N]`` trains it on phantoms
(:func:`~roisynth.imaging.training.train`; several GPUs: ``torchrun --nproc_per_node N -m
roisynth.cli imaging train ...``); ``roisynth imaging sample MODEL --age 75 --sex F --diagnosis
AD --labels labels.nii.gz -o out.nii.gz`` generates an image for a label map and metadata;
``roisynth imaging counterfactual SUBJECT [--labels aseg.nii.gz] --change Hippocampus=-0.15
[--change LateralVentricle=0.2] -o cf.nii.gz [--labels-output cf_labels.nii.gz]`` warps a T1
(with its label map, on any overlapping grid) or a phantom folder by the training-free deformation
(:func:`~roisynth.imaging.subject.counterfactual`), writing the result on the subject's own grid;
with ``--model MODEL [--labels-cf edited.nii.gz] [--diagnosis-cf AD] [--mode local|global]`` the
diffusion model makes it instead (:func:`~roisynth.imaging.subject.diffusion_counterfactual`);
``roisynth imaging evaluate DIR [--subjects 50] [--steps N]`` scores
counterfactuals on the held-out phantoms (:func:`~roisynth.imaging.training.evaluate`) and
writes ``DIR/evaluation.json`` and ``DIR/evaluation_subjects.csv``. MODEL is a training folder
or its ``model.pt``.

:func:`add_parser` registers the ``imaging`` command on ``roisynth``'s subparsers
(:mod:`roisynth.cli` runs it and reports bad input).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _shape(text: str):
    """``--shape``: ``1mm``, ``N`` (N³) or ``X,Y,Z``."""
    if text == "1mm":
        return text
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, X,Y,Z or 1mm, got {text!r}") from None
    if len(sizes) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected N, X,Y,Z or 1mm, got {text!r}")
    return sizes * 3 if len(sizes) == 1 else sizes


def cmd_phantom(args) -> None:
    from .phantoms import make_phantom, save

    phantom = make_phantom(args.shape, source=args.source, random_state=args.random_state)
    folder = save(phantom, args.output)
    size = "x".join(str(n) for n in phantom.labels.shape)
    voxel = "x".join(f"{v:g}" for v in phantom.metadata["voxel_size"])
    print(f"wrote a {size} phantom ({voxel} mm voxels, {phantom.metadata['source']} anatomy, seed "
          f"{phantom.metadata['seed']}) to {folder}: image.nii.gz, labels.nii.gz, posteriors.nii.gz, phantom.json")


def _pick_row(path, row: int, name: str):
    from roisynth.io import read_table

    table = read_table(path)
    if table.empty:
        raise ValueError(f"{name} {path} has no rows")
    if len(table) == 1:
        return table.iloc[[0]]
    if not -len(table) <= row < len(table):
        raise ValueError(f"--row {row} is out of range: {name} {path} has {len(table)} rows")
    return table.iloc[[row]]


def _load_phantom(folder):
    """The phantom in ``folder``, or a clear error if it is not a phantom folder."""
    from .phantoms import load

    if not (Path(folder) / "phantom.json").is_file():
        raise FileNotFoundError(f"{folder} is not a phantom folder (no phantom.json); write one with "
                                "`roisynth imaging phantom -o FOLDER`")
    return load(folder)


def cmd_masks(args) -> None:
    import pandas as pd

    from .bridge import counterfactual_masks
    from .nifti import save_nifti

    phantom = _load_phantom(args.phantom)
    volumes = _pick_row(args.volumes, args.row, "--volumes")
    reference = None if args.reference is None else _pick_row(args.reference, args.row, "--reference")
    rois = [r.strip() for r in args.rois.split(",") if r.strip()] if args.rois else None
    result = counterfactual_masks(phantom, volumes, reference=reference, rois=rois, max_rings=args.max_rings)
    save_nifti(args.output, result.labels, result.affine)
    mode = "relative to --reference" if reference is not None else "absolute mm³"
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(result.table.round(1).to_string())
    if result.skipped:
        print(f"not editable in this label map: {', '.join(f'{roi} ({why})' for roi, why in result.skipped.items())}")
    print(f"edited {len(result.table)} ROIs ({mode}); wrote {args.output}")


def _positive(name: str, value) -> None:
    """An optional count: None, or a positive integer."""
    from roisynth.utils.validation import check_count

    if value is not None:
        check_count(value, name)


def cmd_train(args) -> None:
    from .config import get_config
    from .training import smoke_config, train

    config = smoke_config(get_config(args.config), args.steps, args.subjects)
    for name in ("test_subjects", "jobs"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    result = train(config, args.output, **({"stages": stages} if stages else {}), resume=args.resume,
                   bf16=args.bf16, device=args.device, n_test=args.test_subjects, n_jobs=args.jobs)
    if os.environ.get("RANK", "0") != "0":     # under torchrun, rank 0 reports
        return
    for stage, seconds in result["seconds"].items():
        print(f"{stage}: {seconds:.1f} s, final loss {result['losses'][stage]:.4g}")
    print(f"trained config {config.name} on {result['device']} x {result['world_size']}; wrote {result['output']}")


def _metadata(age, sex, diagnosis) -> dict:
    return {"age": age, "sex": sex, "diagnosis": diagnosis}


def _load_model(path, device):
    from .diffusion import MaskGuidedDiffusion
    from .training import resolve_device

    return MaskGuidedDiffusion.load(path).to(resolve_device(device))


def cmd_sample(args) -> None:
    from .nifti import load_nifti, save_nifti

    model = _load_model(args.model, args.device)
    labels, affine, _ = load_nifti(args.labels)
    image = model.sample(_metadata(args.age, args.sex, args.diagnosis), labels, steps=args.steps,
                         guidance=args.guidance, random_state=args.random_state)[0]
    save_nifti(args.output, image, affine)
    print(f"sampled a {'x'.join(map(str, image.shape))} image (age {args.age:g}, {args.sex}, {args.diagnosis}) "
          f"for {args.labels}; wrote {args.output}")


def _changes(items) -> dict[str, float]:
    """``--change ROI=C`` items -> {ROI: C}."""
    changes = {}
    for item in items:
        roi, sep, value = item.partition("=")
        try:
            changes[int(roi) if roi.strip().isdigit() else roi.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--change expects ROI=relative change (e.g. Hippocampus=-0.15), got {item!r}")
    return changes


def _subject(args):
    """The factual subject: a phantom folder, or a T1 NIfTI with --labels (aligned by affine)."""
    from .subject import Subject, load_subject

    if Path(args.subject).is_dir():
        phantom = _load_phantom(args.subject)
        return Subject(phantom.image, phantom.labels, phantom.affine)
    if args.labels is None:
        raise ValueError(f"{args.subject} is a T1 image: give its label map with --labels (or pass a phantom folder)")
    return load_subject(args.subject, args.labels)


def cmd_counterfactual(args) -> None:
    from .nifti import align_to, load_nifti, save_nifti, voxel_volume
    from .subject import changes_to_targets, counterfactual, diffusion_counterfactual

    changes = _changes(args.change)
    subject = _subject(args)
    if args.model is None:
        if not changes:
            raise ValueError("the deformation needs --change ROI=C (e.g. --change Hippocampus=-0.15); "
                             "--labels-cf is for a diffusion --model")
        result = counterfactual(subject, changes)
        save_nifti(args.output, result.image, subject.affine, subject.header)
        if args.labels_output:
            save_nifti(args.labels_output, result.labels, subject.affine)
        with pd_options():
            print(result.table[["original_mm3", "requested_mm3", "achieved_mm3", "error", "taken_up_by"]]
                  .round(4).to_string())
        print(f"deformation in {result.seconds:.1f} s: Jacobian {result.jacobian_min:.3f}..{result.jacobian_max:.3f}, "
              f"{int(result.moved.sum())} voxels moved; wrote {args.output}")
        return
    if args.labels_cf is not None:
        labels_cf, affine_cf, _ = load_nifti(args.labels_cf)
        labels_cf = align_to(labels_cf, affine_cf, subject.labels.shape, subject.affine, name=args.labels_cf)
    elif changes:
        from .masks import edit_masks

        voxel = voxel_volume(subject.affine)
        labels_cf = edit_masks(subject.labels, None, changes_to_targets(subject.labels, changes, voxel),
                               voxel_volume=voxel).labels
    else:
        raise ValueError("give the counterfactual as --labels-cf EDITED.nii.gz or --change ROI=C")
    model = _load_model(args.model, args.device)
    factual = _metadata(args.age, args.sex, args.diagnosis)
    cf = _metadata(args.age if args.age_cf is None else args.age_cf, args.sex,
                   args.diagnosis if args.diagnosis_cf is None else args.diagnosis_cf)
    image = diffusion_counterfactual(subject, model, labels_cf, factual, cf, mode=args.mode, steps=args.steps)
    save_nifti(args.output, image, subject.affine, subject.header)
    changed = int((labels_cf != subject.labels).sum())
    print(f"{args.mode} diffusion counterfactual of {args.subject} ({changed} voxels relabelled; "
          f"age {factual['age']:g} -> {cf['age']:g}, {factual['diagnosis']} -> {cf['diagnosis']}, sex {args.sex}); "
          f"wrote {args.output}")


def pd_options():
    import pandas as pd

    return pd.option_context("display.width", 120, "display.max_columns", 10)


def cmd_evaluate(args) -> None:
    from .training import evaluate

    _positive("--subjects", args.subjects)
    _positive("--steps", args.steps)
    if args.calibration < 0:
        raise ValueError(f"--calibration must be >= 0, got {args.calibration}")
    _, summary = evaluate(args.model_dir, n_subjects=args.subjects, steps=args.steps, change=args.change,
                          calibration_subjects=args.calibration, device=args.device)
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"wrote {Path(args.model_dir) / 'evaluation.json'} and evaluation_subjects.csv")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``imaging`` (``phantom``, ``masks``, ``train``, ``sample``, ``counterfactual``,
    ``evaluate``) on an ``add_subparsers()`` object."""
    parser = subparsers.add_parser("imaging", help="phantom subjects, counterfactual masks and images (NIfTI)")
    sub = parser.add_subparsers(dest="imaging_command", required=True)

    p = sub.add_parser("phantom", help="write a phantom subject: T1-like image, label map, posteriors")
    p.add_argument("-o", "--output", required=True, help="folder to write the NIfTI files and phantom.json into")
    p.add_argument("--shape", type=_shape, default=(64, 64, 64),
                   help="grid: N (N³), X,Y,Z, or 1mm for 1 mm voxels (default 64)")
    p.add_argument("--source", default="procedural", help="'procedural' (default) or a label map NIfTI file")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("masks", help="edit a phantom's label map to a row of ROI volumes (counterfactual masks)")
    p.add_argument("phantom", metavar="PHANTOM_FOLDER", help="a folder written by `roisynth imaging phantom`")
    p.add_argument("--volumes", required=True,
                   help="CSV/Parquet table with MUSE ROI columns (e.g. counterfactual twins)")
    p.add_argument("--reference", default=None,
                   help="factual table: apply the relative change volumes / reference (default: volumes are mm³)")
    p.add_argument("--row", type=int, default=0, help="row of the tables to use (default 0; one-row tables: that row)")
    p.add_argument("--rois", default=None, help="edit only these ROIs, comma-separated (default: every editable one)")
    p.add_argument("--max-rings", type=int, default=5, help="most boundary rings an edit may use")
    p.add_argument("-o", "--output", required=True, help="edited label map to write (.nii.gz)")
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("train", help="train the mask-guided diffusion pipeline on phantoms")
    p.add_argument("--config", default="64", help="preset: 16 or 32 (CPU smoke runs), 64 or 96 (GPU); default 64")
    p.add_argument("-o", "--output", required=True, help="training folder (model.pt, segmenter, logs, checkpoints)")
    p.add_argument("--stages", default=None,
                   help="comma-separated subset of autoencoder,unet,controlnet,segmenter (default: all)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output (finished stages skipped)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    _device_argument(p)
    p.add_argument("--steps", type=int, default=None, help="override every stage's steps (smoke runs)")
    p.add_argument("--subjects", type=int, default=None, help="training phantoms (default: the preset's)")
    p.add_argument("--test-subjects", type=int, default=None, help="held-out phantoms (default: max(4, subjects/8))")
    p.add_argument("--jobs", type=int, default=1, help="processes making the phantom cohort")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate an image for a label map and subject metadata")
    _model_argument(p)
    _subject_arguments(p, required=True)
    p.add_argument("--labels", required=True, help="label map (.nii.gz) on the model's grid")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight (default: config's)")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the config's)")
    _device_argument(p)
    p.add_argument("-o", "--output", required=True, help="image to write (.nii.gz)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("counterfactual", help="a subject's image with ROI volume changes (deformation, CPU) or "
                       "under edited masks (diffusion --model)")
    p.add_argument("subject", metavar="SUBJECT", help="a T1 NIfTI (with --labels) or a phantom folder")
    p.add_argument("--labels", default=None,
                   help="the T1's label map (SynthSeg / FreeSurfer aseg or aparc+aseg codes), any grid overlapping it")
    p.add_argument("--change", action="append", default=[], metavar="ROI=C",
                   help="relative volume change, e.g. Hippocampus=-0.15 (both sides) or LateralVentricle_L=0.2; "
                        "repeatable")
    p.add_argument("--model", default=None,
                   help="a trained diffusion model (folder or model.pt); default: the training-free deformation")
    p.add_argument("--labels-cf", default=None, help="counterfactual label map for --model (default: --change "
                   "applied at the CSF boundary)")
    p.add_argument("--mode", choices=("local", "global"), default="local",
                   help="diffusion: keep the input outside the edit band (local, default) or regenerate it all")
    _subject_arguments(p, required=False)
    p.add_argument("--age-cf", type=float, default=None, help="counterfactual age (default: --age)")
    p.add_argument("--diagnosis-cf", default=None, help="counterfactual diagnosis (default: --diagnosis)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the config's)")
    _device_argument(p)
    p.add_argument("-o", "--output", required=True, help="counterfactual image (.nii.gz), on the subject's grid")
    p.add_argument("--labels-output", default=None, help="deformation: also write the warped label map here")
    p.set_defaults(func=cmd_counterfactual)

    p = sub.add_parser("evaluate", help="score counterfactuals of a trained folder on its held-out phantoms")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a folder written by `roisynth imaging train`")
    p.add_argument("--subjects", type=int, default=50, help="held-out subjects to use (default 50, at most all)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the config's)")
    p.add_argument("--change", type=float, default=-0.15, help="relative ROI volume change to impose")
    p.add_argument("--calibration", type=int, default=8,
                   help="phantom pairs calibrating the segmenter's volume changes (0: none)")
    _device_argument(p)
    p.set_defaults(func=cmd_evaluate)
    return parser


def _model_argument(parser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a training folder or its model.pt")


def _device_argument(parser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: CUDA when available")


def _subject_arguments(parser, required: bool) -> None:
    default = lambda value: None if required else value  # noqa: E731
    note = "" if required else " of the factual subject (default %(default)s)"
    parser.add_argument("--age", type=float, required=required, default=default(70.0), help="age in years" + note)
    parser.add_argument("--sex", required=required, default=default("F"), help="F or M" + note)
    parser.add_argument("--diagnosis", required=required, default=default("CN"), help="CN, MCI or AD" + note)
