"""Command line: ``roisynth demo | fit | sample | counterfactual``."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from . import __version__, datasets
from .base import load
from .contrastive_vae import ContrastiveVAE
from .io import read_table, write_table

COVARIATES = {"participant_id", "id", "site", "age", "sex", "icv", "diagnosis", "dx", "group", "cohort"}


def _roi_columns(table: pd.DataFrame, spec: str) -> list[str]:
    """ROI columns chosen by ``--rois``: 'muse' (default set found), 'numeric', or a comma list."""
    if spec == "muse":
        found = [c for c in datasets.roi_names() if c in table.columns]
        if not found:
            raise ValueError("no MUSE ROI columns found; name them with --rois col1,col2,... or --rois numeric")
        return found
    if spec == "numeric":
        return [c for c in table.columns if str(c).lower() not in COVARIATES and pd.api.types.is_numeric_dtype(table[c])]
    wanted = [c.strip() for c in spec.split(",") if c.strip()]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ValueError(f"--rois: columns {missing} are not in the table")
    return wanted


def _cohorts(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    first = datasets.read_rois(read_table(args.tables[0]))
    if len(args.tables) == 2:
        return first, datasets.read_rois(read_table(args.tables[1]))
    if args.group_column not in first.columns:
        raise ValueError(f"one table given: it needs the group column {args.group_column!r} (see --group-column)")
    groups = first[args.group_column].astype(str)
    background = first[groups.isin(args.background.split(","))]
    target = first[groups.isin(args.target.split(","))]
    for name, part, labels in (("background", background, args.background), ("target", target, args.target)):
        if part.empty:
            raise ValueError(f"no rows with {args.group_column} in {labels!r} for the {name} cohort")
    return background, target


def cmd_demo(args) -> None:
    from .demo import run_demo

    result = run_demo(args.output, epochs=args.epochs, random_state=args.random_state, verbose=not args.quiet)
    sizes = result["sizes"]
    print(f"Bundled cohort: trained on {sizes['cn_train']} CN and {sizes['patients_train']} MCI+AD, "
          f"held out {sizes['cn_test']} CN and {sizes['patients_test']} MCI+AD.")
    print(f"Fitted in {result['fit_seconds']:.1f} s (best epoch {result['epochs']}).")
    print("\nFidelity: Gaussian W2 of synthetic vs held-out real (z-scored on CN training data);")
    print("the floor is W2 between the same number of real training subjects and the held-out ones.")
    print(result["fidelity"][["n_synthetic", "w2", "floor", "ratio"]].round(3).to_string())
    print("\nMean severity of held-out subjects (background-SD units):")
    print(result["severity"].round(3).to_string())
    print(f"\nWrote paired_synthetic.csv, healthy_twins.csv and model.roisynth to {result['output']} "
          f"({result['total_seconds']:.1f} s in all).")


def cmd_fit(args) -> None:
    background, target = _cohorts(args)
    rois = _roi_columns(background, args.rois)
    model = ContrastiveVAE(
        n_common=args.n_common, n_salient=args.n_salient, mmd_weight=args.mmd_weight, epochs=args.epochs,
        random_state=args.random_state, verbose=not args.quiet,
    )
    model.fit(background[rois], target[rois])
    model.save(args.output)
    print(f"fitted on {len(background)} background and {len(target)} target rows x {len(rois)} ROIs "
          f"(best epoch {model.n_epochs_}); saved {args.output}")


def cmd_sample(args) -> None:
    model = load(args.model)
    if args.cohort == "paired":
        healthy, disease = model.sample_paired(args.n, random_state=args.random_state)
        table = pd.concat([healthy.assign(cohort="background"), disease.assign(cohort="target")])
        table = table.rename_axis("synthetic_id").reset_index().sort_values("synthetic_id", kind="stable")
    else:
        table = model.sample(args.n, cohort=args.cohort, random_state=args.random_state)
        table = table.rename_axis("synthetic_id").reset_index().assign(cohort=args.cohort)
    columns = ["synthetic_id", "cohort", *model.feature_names_in_]
    write_table(table[columns], args.output)
    print(f"wrote {len(table)} rows to {args.output}")


def cmd_counterfactual(args) -> None:
    model = load(args.model)
    table = datasets.read_rois(read_table(args.table))
    rois = list(model.feature_names_in_)
    missing = [c for c in rois if c not in table.columns]
    if missing:
        raise ValueError(f"{args.table} lacks the model's ROI columns {missing[:5]}")
    twins = model.counterfactual(table[rois], to=args.to, mode=args.mode, random_state=args.random_state)
    parts = [table.drop(columns=rois), twins] + ([model.severity(table[rois])] if args.severity else [])
    out = pd.concat(parts, axis=1)[[*table.columns] + (["severity"] if args.severity else [])]
    write_table(out, args.output)
    print(f"wrote {len(out)} {args.to} twins to {args.output}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roisynth", description=__doc__)
    parser.add_argument("--version", action="version", version=f"roisynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit on the bundled cohort, write a paired synthetic cohort")
    p.add_argument("--output", default="demo_output", help="folder for the outputs (default: demo_output)")
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a ContrastiveVAE on healthy (background) and patient (target) tables")
    p.add_argument("tables", nargs="+", metavar="TABLE", help="BACKGROUND TARGET, or one table split by --group-column")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--background", default="CN", help="group labels of the background cohort (comma-separated)")
    p.add_argument("--target", default="MCI,AD", help="group labels of the target cohort (comma-separated)")
    p.add_argument("--rois", default="muse", help="'muse' (default: MUSE ROI columns), 'numeric', or col1,col2,...")
    p.add_argument("--n-common", type=int, default=5)
    p.add_argument("--n-salient", type=int, default=5)
    p.add_argument("--mmd-weight", type=float, default=10.0)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("sample", help="draw synthetic subjects from a model file")
    p.add_argument("model")
    p.add_argument("-n", type=int, required=True, help="number of synthetic subjects (pairs for --cohort paired)")
    p.add_argument("-o", "--output", required=True, help="CSV or Parquet file to write")
    p.add_argument("--cohort", choices=["paired", "background", "target"], default="paired")
    p.add_argument("--random-state", type=int, default=None)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("counterfactual", help="twins of real subjects in the other cohort")
    p.add_argument("model")
    p.add_argument("table", help="CSV or Parquet file of subjects (other columns are kept)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--to", choices=["background", "target"], default="background")
    p.add_argument("--mode", choices=["residual", "decode"], default="residual")
    p.add_argument("--severity", action="store_true", help="add a severity column")
    p.add_argument("--random-state", type=int, default=None)
    p.set_defaults(func=cmd_counterfactual)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"roisynth {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
