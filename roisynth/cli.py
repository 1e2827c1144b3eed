"""Command line: ``roisynth demo | fit | sample | counterfactual | harmonize | benchmark | report | imaging``."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from . import __version__, datasets
from .base import load
from .imaging.cli import add_parser as add_imaging_parser
from .io import read_table, write_table
from .pipeline import HARMONIZED, SynthesisPipeline, make_pipeline
from .preprocessing import CovariateResidualizer, Harmonizer
from .synthesizers._contrastive_vae import ContrastiveVAE
from .utils.frames import long_pairs, replace_columns

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
    print(f"Harmonized 4 sites (ComBat-GAM), corrected for age, sex and ICV, fitted the contrastive VAE: "
          f"{result['fit_seconds']:.1f} s (best epoch {result['epochs']}).")
    print("\nFidelity, in mm³ at each subject's site: Gaussian W2 of synthetic vs held-out real (z-scored on CN training data);")
    print("the floor is W2 between the same number of real training subjects and the held-out ones.")
    print(result["fidelity"][["n_synthetic", "w2", "floor", "ratio"]].round(3).to_string())
    print("\nMean severity of held-out subjects (background-SD units):")
    print(result["severity"].round(3).to_string())
    print(f"\nWrote paired_synthetic.csv, healthy_twins.csv and model.roisynth to {result['output']} "
          f"({result['total_seconds']:.1f} s in all).")


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _harmonizer(args, **extra) -> Harmonizer:
    return Harmonizer(site=args.site_column, covariates=_split_list(args.harmonize_covariates),
                      smooth=_split_list(args.smooth), random_state=args.random_state, **extra)


def cmd_fit(args) -> None:
    background, target = _cohorts(args)
    rois = _roi_columns(background, args.rois)
    model = ContrastiveVAE(
        n_common=args.n_common, n_salient=args.n_salient, mmd_weight=args.mmd_weight, epochs=args.epochs,
        random_state=args.random_state, verbose=not args.quiet,
    )
    steps = ([_harmonizer(args)] if args.harmonize else []) + (
        [CovariateResidualizer(covariates=_split_list(args.residualize))] if args.residualize else [])
    if steps:
        fitted = make_pipeline(*steps, model).set_params(rois=rois, random_state=args.random_state)
        fitted.fit(background, target)
        epochs = fitted.synthesizer.n_epochs_
    else:
        fitted = model.fit(background[rois], target[rois])
        epochs = model.n_epochs_
    fitted.save(args.output)
    print(f"fitted on {len(background)} background and {len(target)} target rows x {len(rois)} ROIs "
          f"(best epoch {epochs}); saved {args.output}")


def cmd_sample(args) -> None:
    model = load(args.model)
    options = {"random_state": args.random_state}
    if isinstance(model, SynthesisPipeline):
        options["site"] = args.site
    elif args.site is not None:
        raise ValueError("--site needs a model fitted with --harmonize")
    if args.cohort == "paired":
        table = long_pairs(*model.sample_paired(args.n, **options), names=("background", "target"))
    else:
        table = model.sample(args.n, cohort=args.cohort, **options)
        table = table.rename_axis("synthetic_id").reset_index().assign(cohort=args.cohort)
        table = table[["synthetic_id", "cohort", *table.columns[1:-1]]]
    write_table(table, args.output)
    print(f"wrote {len(table)} rows to {args.output}")


def cmd_counterfactual(args) -> None:
    model = load(args.model)
    table = datasets.read_rois(read_table(args.table))
    rois = list(model.feature_names_in_)
    missing = [c for c in rois if c not in table.columns]
    if missing:
        raise ValueError(f"{args.table} lacks the model's ROI columns {missing[:5]}")
    options = {"to": args.to, "mode": args.mode, "random_state": args.random_state}
    if isinstance(model, SynthesisPipeline):
        out = model.counterfactual(table, **options)
        severity = model.severity(table) if args.severity else None
    else:
        out = replace_columns(table, rois, model.counterfactual(table[rois], **options).to_numpy())
        severity = model.severity(table[rois]) if args.severity else None
    if severity is not None:
        out = out.assign(severity=severity)
    write_table(out, args.output)
    print(f"wrote {len(out)} {args.to} twins to {args.output}")


def cmd_harmonize(args) -> None:
    table = datasets.read_rois(read_table(args.table))
    if args.apply:
        harmonizer = Harmonizer.load(args.apply)
    else:
        rois = None if args.rois == "muse" else list(_split_list(args.rois))
        fit_rows = table
        if args.fit_on:
            if args.group_column not in table.columns:
                raise ValueError(f"--fit-on needs the group column {args.group_column!r} (see --group-column)")
            fit_rows = table[table[args.group_column].astype(str).isin(_split_list(args.fit_on))]
            if fit_rows.empty:
                raise ValueError(f"no rows with {args.group_column} in {args.fit_on!r} to fit on")
        harmonizer = _harmonizer(args, rois=rois, reference_site=args.reference_site).fit(fit_rows)
    write_table(harmonizer.transform(table), args.output)
    if args.save:
        harmonizer.save(args.save)
    print(f"harmonized {len(table)} rows x {len(harmonizer.feature_names_in_)} ROIs across sites "
          f"{sorted(map(str, harmonizer.sites_))}; wrote {args.output}" + (f" and {args.save}" if args.save else ""))


def cmd_benchmark(args) -> None:
    from pathlib import Path

    from .evaluation._benchmark import (
        benchmark_models,
        run_semisynthetic,
        run_table,
        table_a1,
        to_markdown,
    )

    models = benchmark_models(quick=args.quick)
    if args.models:
        wanted = _split_list(args.models)
        models = {name: m for name, m in models.items() if any(w.lower() in name.lower() for w in wanted)}
        if not models:
            raise ValueError(f"--models {args.models!r} matches none of {list(benchmark_models())}")
    n_bootstrap = args.n_bootstrap if args.n_bootstrap is not None else (200 if args.quick else 1000)
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    seeds = range(args.seeds)
    if args.table:
        args.tables = [args.table]
        background, target = _cohorts(args)
        rois = _roi_columns(background, args.rois)
        scores = run_table(models, background[rois], target[rois], seeds=seeds, n_bootstrap=n_bootstrap, progress=progress)
        source = f"{args.table} ({len(background)} background, {len(target)} target rows, 80/20 split)"
    else:
        scores = run_semisynthetic(models, seeds=seeds, n_bootstrap=n_bootstrap, progress=progress)
        source = "make_semisynthetic (3000 simulated CN, Table 1 atrophy, 1050 training subjects per cohort)"
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    write_table(scores.reset_index(), output / "benchmark.csv")
    table = to_markdown(table_a1(scores, {name: m.can_pair for name, m in models.items()}))
    header = (f"# roisynth benchmark\n\nData: {source}; {len(seeds)} seed(s); {n_bootstrap} bootstrap replicates "
              f"(95 % centered intervals: the spread of each value over fresh samples of the same sizes){'; quick run: neural models capped in epochs' if args.quick else ''}.\n\n")
    (output / "benchmark.md").write_text(header + table + "\n")
    print(table)
    print(f"wrote {output / 'benchmark.csv'} and {output / 'benchmark.md'}")


def cmd_report(args) -> None:
    from .evaluation._report import build_report

    def cohorts(path):
        args.tables = [path]
        background, target = _cohorts(args)
        return background, target

    train = cohorts(args.train)
    test = None if args.test is None else cohorts(args.test)
    held_out = test or train
    groups = pd.concat(held_out)[args.group_column].astype(str)
    if str(args.source).endswith(".roisynth"):
        source = {"model": args.source}
    else:
        table = read_table(args.source)
        if "cohort" not in table.columns:
            raise ValueError(f"{args.source} is neither a .roisynth model file nor a synthetic table with a 'cohort' "
                             "column (background/target), as `roisynth sample` writes")
        source = {"synthetic": tuple(datasets.read_rois(table[table["cohort"] == c]) for c in ("background", "target"))}
    rois = None if args.rois is None else list(_split_list(args.rois))
    path = build_report(args.output, train=train, test=test, groups=groups, rois=rois, n_bootstrap=args.n_bootstrap,
                        random_state=args.random_state, title=args.title, **source)
    print(f"wrote {path} (figures in {path.with_name(path.stem + '_figures')})")


def _add_harmonization_options(p) -> None:
    p.add_argument("--site-column", default="site")
    p.add_argument("--harmonize-covariates", default="age,sex,icv", help="covariates whose effects ComBat-GAM protects")
    p.add_argument("--smooth", default="age", help="covariates modelled with a smooth (GAM) term; '' for none")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roisynth",
        description="Synthetic brain ROI-volume cohorts, paired healthy/disease, from unpaired tables (CSV or Parquet).",
    )
    parser.add_argument("--version", action="version", version=f"roisynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the pipeline on the bundled cohort, write a paired synthetic cohort")
    p.add_argument("--output", default="demo_output", help="folder for the outputs (default: demo_output)")
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a ContrastiveVAE (or, with --harmonize/--residualize, a pipeline) on healthy and patient tables")
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
    p.add_argument("--harmonize", action="store_true", help="harmonize sites with ComBat-GAM first (pipeline)")
    _add_harmonization_options(p)
    p.add_argument("--residualize", default="", metavar="COVARIATES",
                   help="regress these covariates out, fitted on the background (e.g. age,sex,icv)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("harmonize", help="remove site effects from a multi-site table (ComBat-GAM)")
    p.add_argument("table")
    p.add_argument("-o", "--output", required=True, help="harmonized table to write (all columns kept)")
    p.add_argument("--rois", default="muse", help="'muse' (default: MUSE ROI columns) or col1,col2,...")
    _add_harmonization_options(p)
    p.add_argument("--reference-site", default=None, help="express harmonized values on this site's scale")
    p.add_argument("--fit-on", default="", metavar="GROUPS",
                   help="fit on these groups of --group-column only (e.g. CN: site effects free of disease), apply to all")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--save", metavar="MODEL", help="also save the fitted harmonizer")
    p.add_argument("--apply", metavar="MODEL", help="apply a saved harmonizer instead of fitting one")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=cmd_harmonize)

    p = sub.add_parser("sample", help="draw synthetic subjects from a model file")
    p.add_argument("model")
    p.add_argument("-n", type=int, required=True, help="number of synthetic subjects (pairs for --cohort paired)")
    p.add_argument("-o", "--output", required=True, help="CSV or Parquet file to write")
    p.add_argument("--cohort", choices=["paired", "background", "target"], default="paired")
    p.add_argument("--site", default=None,
                   help=f"pipeline models: all subjects at this site, or '{HARMONIZED}' (default: each at its drawn site)")
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

    p = sub.add_parser("benchmark", help="every model on the semi-synthetic benchmark (or your table): Table A1 and more")
    p.add_argument("-o", "--output", default="benchmark_output", help="folder for benchmark.csv and benchmark.md")
    p.add_argument("--quick", action="store_true", help="neural models capped at a few epochs, 200 bootstrap replicates")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--models", default="", help="comma-separated parts of model names to run (default: all)")
    p.add_argument("--n-bootstrap", type=int, default=None, help="replicates for the W2 intervals (default 1000)")
    p.add_argument("--table", default=None, help="benchmark on this table (split by --group-column) instead")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--background", default="CN")
    p.add_argument("--target", default="MCI,AD")
    p.add_argument("--rois", default="muse", help="'muse' (default: MUSE ROI columns), 'numeric', or col1,col2,...")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("report", help="self-contained HTML report (figures + metrics) on a model or synthetic table")
    p.add_argument("source", help="a .roisynth model file, or a synthetic table with a cohort column (roisynth sample)")
    p.add_argument("-o", "--output", default="report.html")
    p.add_argument("--train", required=True, help="the real table the model was fitted on (split by --group-column)")
    p.add_argument("--test", default=None, help="held-out real table (without it every figure is optimistic)")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--background", default="CN")
    p.add_argument("--target", default="MCI,AD")
    p.add_argument("--rois", default=None, help="ROIs to plot, comma-separated (default: the 6 most affected)")
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--title", default=None)
    p.set_defaults(func=cmd_report)

    add_imaging_parser(sub)
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
