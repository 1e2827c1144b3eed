"""Command line: ``roisynth imaging phantom | masks``.

``roisynth imaging phantom -o FOLDER [--shape 64 | --shape 1mm] [--source procedural|PATH]
[--random-state 0]`` writes a phantom subject (image, labels, posteriors NIfTI + phantom.json);
``roisynth imaging masks PHANTOM_FOLDER --volumes row.csv [--reference factual.csv] [--row 0]
-o edited_labels.nii.gz`` edits its label map to a row of ROI volumes
(:func:`~roisynth.imaging.bridge.counterfactual_masks`) and prints achieved vs requested volumes.

:func:`add_parser` registers the ``imaging`` command on ``roisynth``'s subparsers
(:mod:`roisynth.cli` runs it and reports bad input).
"""

from __future__ import annotations

import argparse
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


def cmd_masks(args) -> None:
    import pandas as pd

    from .bridge import counterfactual_masks
    from .nifti import save_nifti
    from .phantoms import load

    folder = Path(args.phantom)
    if not (folder / "phantom.json").is_file():
        raise FileNotFoundError(f"{folder} is not a phantom folder (no phantom.json); write one with "
                                "`roisynth imaging phantom -o FOLDER`")
    volumes = _pick_row(args.volumes, args.row, "--volumes")
    reference = None if args.reference is None else _pick_row(args.reference, args.row, "--reference")
    rois = [r.strip() for r in args.rois.split(",") if r.strip()] if args.rois else None
    result = counterfactual_masks(load(folder), volumes, reference=reference, rois=rois, max_rings=args.max_rings)
    save_nifti(args.output, result.labels, result.affine)
    mode = "relative to --reference" if reference is not None else "absolute mm³"
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(result.table.round(1).to_string())
    if result.skipped:
        print(f"not editable in this label map: {', '.join(f'{roi} ({why})' for roi, why in result.skipped.items())}")
    print(f"edited {len(result.table)} ROIs ({mode}); wrote {args.output}")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``imaging`` (with ``phantom`` and ``masks``) on an ``add_subparsers()`` object."""
    parser = subparsers.add_parser("imaging", help="phantom subjects and counterfactual masks (NIfTI)")
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
    p.add_argument("--volumes", required=True, help="CSV/Parquet table with MUSE ROI columns (e.g. counterfactual twins)")
    p.add_argument("--reference", default=None,
                   help="factual table: apply the relative change volumes / reference (default: volumes are mm³)")
    p.add_argument("--row", type=int, default=0, help="row of the tables to use (default 0; one-row tables: that row)")
    p.add_argument("--rois", default=None, help="edit only these ROIs, comma-separated (default: every editable one)")
    p.add_argument("--max-rings", type=int, default=5, help="most boundary rings an edit may use")
    p.add_argument("-o", "--output", required=True, help="edited label map to write (.nii.gz)")
    p.set_defaults(func=cmd_masks)
    return parser
