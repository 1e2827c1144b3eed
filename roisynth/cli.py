"""Command line: ``roisynth demo | fit | sample | counterfactual | harmonize | benchmark | report | release |
imaging``."""

from __future__ import annotations

import argparse
import os
import sys

# Only argparse, os and sys at import time: `roisynth --help` builds the parser without loading pandas,
# torch or the models. Each command imports what it needs.


def cmd_demo(args) -> None:
    from .demo import run_demo

    result = run_demo(args.output, epochs=args.epochs, random_state=args.random_state, verbose=not args.quiet)
    sizes = result["sizes"]
    print(f"Bundled cohort: trained on {sizes['cn_train']} CN and {sizes['patients_train']} MCI+AD, "
          f"held out {sizes['cn_test']} CN and {sizes['patients_test']} MCI+AD.")
    print(f"Harmonized 4 sites (ComBat-GAM), corrected for age, sex and ICV, fitted the contrastive VAE: "
          f"{result['fit_seconds']:.1f} s (best epoch {result['epochs']}).")
    print("\nFidelity, in mm³ at each subject's site: Gaussian W2 of synthetic vs held-out real "
          "(z-scored on CN training data);")
    print("the floor is W2 between the same number of real training subjects and the held-out ones.")
    print(result["fidelity"][["n_synthetic", "w2", "floor", "ratio"]].round(3).to_string())
    print("\nMean severity of held-out subjects (distance from their healthy twin along the disease effect, "
          "in SDs of healthy variation; ≈ 0 when healthy):")
    print(result["severity"].round(3).to_string())
    audit = result["release"]
    if "refused" in audit:
        print(f"\nRelease refused by the privacy audit: {audit['refused']}")
    else:
        measures = [m for m in audit["privacy"]["measures"] if m.get("risk_high") is not None]
        worst = max(measures, key=lambda m: m["risk_high"])
        copies = {m["measure"]: int(m["copies"]) for m in audit["privacy"]["measures"]
                  if m["measure"] in ("exact_rows", "exact_quasi_identifiers") and m.get("copies") is not None}
        print(f"\nPrivacy audit of the release ({audit['synthetic']['rows']} rows vs the training data, held-out "
              f"control): exact copies {copies}; highest risk {worst['measure']} {worst['risk']:.3f} "
              f"[{worst['risk_low']:.3f}, {worst['risk_high']:.3f}]; no flag.")
    print(f"\nWrote paired_synthetic.csv, healthy_twins.csv, model.roisynth and release/ (synthetic.csv, "
          f"report.html, release.json) to {result['output']} ({result['total_seconds']:.1f} s in all).")


def _harmonizer(args, **extra):
    """The Harmonizer that the harmonization options describe."""
    from .io import split_list
    from .preprocessing import Harmonizer

    return Harmonizer(site=args.site_column, covariates=split_list(args.harmonize_covariates),
                      smooth=split_list(args.smooth), random_state=args.random_state, **extra)


def cmd_fit(args) -> None:
    from .io import read_cohorts, select_rois, split_list
    from .pipeline import make_pipeline
    from .preprocessing import CovariateResidualizer
    from .privacy import DifferentialPrivacy
    from .synthesizers import ContrastiveVAE

    if args.delta is not None and args.epsilon is None:
        raise ValueError("--delta needs --epsilon (the privacy budget)")
    background, target = read_cohorts(args.tables, args.group_column, args.background, args.target)
    rois = select_rois(background, args.rois)
    # the model keeps the user's own ROI column names (numeric MUSE indices, DL_MUSE_Volume_47, ...),
    # so that its synthetic tables drop into the tools that read the real ones
    labels = background.attrs.get("roi_labels", {})
    background, target = (t.rename(columns=labels) for t in (background, target))
    rois = [labels.get(r, r) for r in rois]
    model = ContrastiveVAE(
        n_common=args.n_common, n_salient=args.n_salient, mmd_weight=args.mmd_weight, epochs=args.epochs,
        random_state=args.random_state, verbose=not args.quiet,
        privacy=None if args.epsilon is None else DifferentialPrivacy(epsilon=args.epsilon, delta=args.delta),
    )
    steps = ([_harmonizer(args)] if args.harmonize else []) + (
        [CovariateResidualizer(covariates=split_list(args.residualize))] if args.residualize else [])
    if steps:
        fitted = make_pipeline(*steps, model).set_params(rois=rois, random_state=args.random_state)
        fitted.fit(background, target)
    else:
        fitted = model.fit(background[rois], target[rois])
    fitted.save(args.output)
    spent = getattr(fitted, "privacy_spent_", None)
    guarantee = "" if spent is None else f", (epsilon={spent[0]:.3g}, delta={spent[1]:.2g})-differentially private"
    print(f"fitted on {len(background)} background and {len(target)} target rows x {len(rois)} ROIs "
          f"(best epoch {getattr(fitted, 'synthesizer', fitted).n_epochs_}{guarantee}); saved {args.output}")


def cmd_sample(args) -> None:
    from .base import load
    from .io import parse_conditions, read_table, write_samples

    conditions = read_table(args.conditions) if args.conditions else parse_conditions(args.condition) or None
    n = len(conditions) if args.n is None and args.conditions else args.n
    if n is None:
        raise ValueError("-n is required (unless --conditions gives one row per synthetic subject)")
    model = load(args.model)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        synthesizer = getattr(model, "synthesizer", model)
        if "n_threads" not in synthesizer.get_params():
            raise ValueError(
                f"--threads applies to neural synthesizers; {type(synthesizer).__name__} draws on one thread")
        synthesizer.set_params(n_threads=args.threads)
    rows = write_samples(model, n, args.output, cohort=args.cohort, site=args.site, conditions=conditions,
                         random_state=args.random_state, progress=not args.quiet and sys.stderr.isatty())
    print(f"wrote {rows} rows to {args.output}")


def cmd_release(args) -> None:
    from .release import release

    result = release(args.output, train=args.train, holdout=args.holdout, model=args.model, synthetic=args.synthetic,
                     n=args.n, group_column=args.group_column, background=args.background, target=args.target,
                     quasi_identifiers=args.quasi_identifiers.split(",") if args.quasi_identifiers else None,
                     override=args.override, n_attacks=args.n_attacks, n_bootstrap=args.n_bootstrap,
                     random_state=args.random_state, title=args.title)
    risks = [m for m in result["privacy"]["measures"] if m.get("risk_high") is not None]
    worst = max(risks, key=lambda m: m["risk_high"])
    print(f"released {result['synthetic']['rows']} synthetic rows to {result['folder']} "
          f"({', '.join(result['files'])}); highest risk bound: {worst['measure']} {worst['risk']:.2f} "
          f"[{worst['risk_low']:.2f}, {worst['risk_high']:.2f}]"
          + (f"; OVERRIDDEN: {result['privacy']['override']['reason']}" if result["privacy"]["override"] else ""))


def cmd_counterfactual(args) -> None:
    from .base import load
    from .io import counterfactual_table, write_table

    out = counterfactual_table(load(args.model), args.table, to=args.to, mode=args.mode, severity=args.severity,
                               random_state=args.random_state)
    write_table(out, args.output)
    print(f"wrote {len(out)} {args.to} twins to {args.output}")


def cmd_harmonize(args) -> None:
    from .datasets import read_rois
    from .io import select_rows, split_list, write_table
    from .preprocessing import Harmonizer

    table = read_rois(args.table)
    if args.apply:
        harmonizer = Harmonizer.load(args.apply)
    else:
        rois = None if args.rois == "muse" else list(split_list(args.rois))
        fit_rows = select_rows(table, args.group_column, args.fit_on) if args.fit_on else table
        harmonizer = _harmonizer(args, rois=rois, reference_site=args.reference_site).fit(fit_rows)
    write_table(harmonizer.transform(table), args.output)
    if args.save:
        harmonizer.save(args.save)
    print(f"harmonized {len(table)} rows x {len(harmonizer.feature_names_in_)} ROIs across sites "
          f"{sorted(map(str, harmonizer.sites_))}; wrote {args.output}" + (f" and {args.save}" if args.save else ""))


def cmd_benchmark(args) -> None:
    from functools import partial

    from .evaluation import write_benchmark

    result = write_benchmark(args.output, table=args.table, group_column=args.group_column, background=args.background,
                             target=args.target, rois=args.rois, models=args.models, quick=args.quick,
                             seeds=args.seeds, n_bootstrap=args.n_bootstrap,
                             progress=None if args.quiet else partial(print, flush=True))
    print(result["markdown"])
    print(f"wrote {result['csv']} and {result['md']}")


def cmd_report(args) -> None:
    from .evaluation import build_report_from_tables

    path = build_report_from_tables(args.output, source=args.source, train=args.train, test=args.test,
                                    group_column=args.group_column, background=args.background, target=args.target,
                                    rois=args.rois, n_bootstrap=args.n_bootstrap, random_state=args.random_state,
                                    title=args.title, shareable=args.shareable)
    print(f"wrote {path} (figures in {path.with_name(path.stem + '_figures')})")


def _add_harmonization_options(p) -> None:
    p.add_argument("--site-column", default="site")
    p.add_argument("--harmonize-covariates", default="age,sex,icv", help="covariates whose effects ComBat-GAM protects")
    p.add_argument("--smooth", default="age", help="covariates modelled with a smooth (GAM) term; '' for none")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .imaging.cli import add_parser as add_imaging_parser

    parser = argparse.ArgumentParser(
        prog="roisynth",
        description="Synthetic brain ROI-volume cohorts, paired healthy/disease, from unpaired tables "
                    "(CSV or Parquet).",
    )
    parser.add_argument("--version", action="version", version=f"roisynth {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    parser.add_argument("--no-plausibility", action="store_true",
                        help="accept volumes above 2.5e6 mm³ and age/ICV outside their plausible ranges "
                             "(NaN, inf and negative volumes are still refused)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the pipeline on the bundled cohort, write a paired synthetic cohort")
    p.add_argument("--output", default="demo_output", help="folder for the outputs (default: demo_output)")
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a ContrastiveVAE (or, with --harmonize/--residualize, a pipeline) "
                                   "on healthy and patient tables")
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
    p.add_argument("--epsilon", type=float, default=None,
                   help="fit with (epsilon, delta)-differential privacy (DP-SGD; see the README); ROI columns only")
    p.add_argument("--delta", type=float, default=None, help="with --epsilon: delta (default 1/n^2)")
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
                   help="fit on these groups of --group-column only (e.g. CN: site effects free of disease), "
                        "apply to all")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--save", metavar="MODEL", help="also save the fitted harmonizer")
    p.add_argument("--apply", metavar="MODEL", help="apply a saved harmonizer instead of fitting one")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=cmd_harmonize)

    p = sub.add_parser("sample", help="draw synthetic subjects from a model file")
    p.add_argument("model")
    p.add_argument("-n", type=int, default=None, help="number of synthetic subjects (pairs for --cohort paired, "
                                                       "per cohort for both); any size: written in blocks")
    p.add_argument("-o", "--output", required=True, help="CSV or Parquet file to write")
    p.add_argument("--cohort", choices=["paired", "both", "background", "target"], default="paired")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--site", default=None,
                   help="pipeline models: all subjects at this site, or 'harmonized' (default: each at its drawn site)")
    p.add_argument("--random-state", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="neural synthesizers: draw rows on N threads (the same rows for any N; default: the "
                        "model's n_threads)")
    p.add_argument("--condition", action="append", default=[], metavar="COLUMN=VALUE",
                   help="pipeline models: restrict the drawn covariates, repeatable: sex=F, site=site1,site2 "
                        "(any of), age=70:80 (70 <= age < 80; age=70: or age=:80 for an open end), age=75")
    p.add_argument("--conditions", default=None, metavar="TABLE",
                   help="pipeline models: a table of per-subject covariate values (empty cells drawn); "
                        "one synthetic subject (pair) per row")
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

    p = sub.add_parser("benchmark",
                       help="every model on the semi-synthetic benchmark (or your table): Table A1 and more")
    p.add_argument("-o", "--output", default="benchmark_output", help="folder for benchmark.csv and benchmark.md")
    p.add_argument("--quick", action="store_true",
                   help="neural models capped at a few epochs, 200 bootstrap replicates")
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
    p.add_argument("--shareable", action="store_true",
                   help="leave out the figures of individual real subjects (latent codes, severities)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("release", help="audit a synthetic cohort against its training data (exact copies, "
                                       "anonymeter risks) and write a shareable folder, or refuse")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a fitted model file: the synthetic cohort is drawn from it")
    source.add_argument("--synthetic", help="a synthetic table with a cohort column (roisynth sample)")
    p.add_argument("--train", required=True, help="the real table the model was fitted on (split by --group-column)")
    p.add_argument("--holdout", required=True, help="real subjects the model never saw (the attacks' control)")
    p.add_argument("-o", "--output", required=True, help="the release folder to create (must not exist)")
    p.add_argument("-n", type=int, default=None, help="synthetic people to draw (default: as many as the patients)")
    p.add_argument("--group-column", default="diagnosis")
    p.add_argument("--background", default="CN")
    p.add_argument("--target", default="MCI,AD")
    p.add_argument("--quasi-identifiers", default=None, help="comma-separated (default: site, age, sex, icv)")
    p.add_argument("--override", default=None, metavar="REASON",
                   help="release despite privacy flags, for this stated reason (recorded in release.json)")
    p.add_argument("--n-attacks", type=int, default=500)
    p.add_argument("--n-bootstrap", type=int, default=200)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--title", default=None)
    p.set_defaults(func=cmd_release)

    add_imaging_parser(sub)
    return parser


def _command(args) -> str:
    """The command's name as the user typed it (``fit``, ``imaging masks``)."""
    return " ".join(filter(None, (args.command, getattr(args, "imaging_command", None))))


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (pandas and OS messages may span several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if not isinstance(exc, MemoryError) else f"out of memory ({text})"

#: Outputs that are folders, by command: they must not be existing files.
_FOLDER_OUTPUTS = frozenset({"demo", "benchmark", "release", "imaging phantom", "imaging train"})
#: Outputs that are model files (a zip archive written by torch.save), by (command, option).
_MODEL_OUTPUTS = frozenset({("fit", "output"), ("harmonize", "save")})
_KIND_NAMES = {"zip": "a zip archive (a model file)", "parquet": "a Parquet table", "gzip": "a gzip file",
               "nifti": "a NIfTI image", "text": "a text file (CSV, HTML)", "binary": "a binary file"}


def _file_kind(path: str) -> str | None:
    """What an existing file holds, from its first bytes (a key of ``_KIND_NAMES``); None if empty."""
    with open(path, "rb") as handle:
        head = handle.read(352)
    if not head:
        return None
    for magic, kind in ((b"PK\x03\x04", "zip"), (b"PAR1", "parquet"), (b"\x1f\x8b", "gzip")):
        if head.startswith(magic):
            return kind
    if head[344:348] in (b"n+1\0", b"ni1\0"):
        return "nifti"
    return "binary" if b"\0" in head else "text"


def _output_kind(command: str, option: str, path: str) -> str:
    """The kind of file (a key of ``_KIND_NAMES``) that ``command`` writes to ``path`` through ``option``."""
    if (command, option) in _MODEL_OUTPUTS:
        return "zip"
    name = path.lower()
    for ending, kind in ((".gz", "gzip"), (".parquet", "parquet"), (".pq", "parquet"), (".nii", "nifti")):
        if name.endswith(ending):
            return kind
    return "text"


def _input_paths(args, outputs: set[str]):
    """Every existing file or folder named by an argument other than the outputs."""
    for option, value in vars(args).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if option not in outputs and isinstance(item, str) and item and os.path.exists(item):
                yield item


def check_outputs(args) -> None:
    """Refuse outputs that would destroy an input or a file of another kind, before any work.

    For every output of a parsed ``roisynth`` command (``-o/--output``, ``--save``): it must not
    be the same file as any input (symlinks and hard links resolved, :func:`os.path.samefile`);
    an existing file there must hold what the command writes (a model file is a zip archive, a
    ``.csv`` or ``.html`` is text, ``.parquet`` is Parquet, ``.nii`` NIfTI, ``.gz`` gzip), so that
    e.g. ``fit ... -o cohort2.csv`` never replaces a table by a model; folder outputs must not be
    files, and file outputs must not be folders.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (:func:`build_parser`).

    Raises
    ------
    ValueError
        Naming the output and what it would destroy.

    Examples
    --------
    >>> import os, tempfile
    >>> from roisynth.cli import build_parser, check_outputs
    >>> table = os.path.join(tempfile.mkdtemp(), "cohort.csv")
    >>> _ = open(table, "w").write("diagnosis,Hippocampus_L\\nCN,3.1\\n")
    >>> check_outputs(build_parser().parse_args(["fit", table, "-o", table]))
    Traceback (most recent call last):
    ...
    ValueError: -o/--output ... is the input file ...; refusing to overwrite an input, choose another output path
    """
    command = _command(args)
    options = {option: getattr(args, option, None) for option in ("output", "save")}
    options = {option: path for option, path in options.items() if path}
    for option, path in options.items():
        flag = "-o/--output" if option == "output" else f"--{option}"
        for source in _input_paths(args, set(options)):
            if os.path.exists(path) and os.path.samefile(path, source):
                raise ValueError(f"{flag} {path} is the input file {source}; refusing to overwrite an input, "
                                 "choose another output path")
        if command in _FOLDER_OUTPUTS and option == "output":
            if os.path.isfile(path):
                raise ValueError(f"{flag} {path} is a file; this command writes a folder")
            continue
        if os.path.isdir(path):
            raise ValueError(f"{flag} {path} is a folder; name a file to write")
        if os.path.isfile(path):
            found, wanted = _file_kind(path), _output_kind(command, option, path)
            if found not in (None, wanted):
                raise ValueError(f"{flag} {path} already exists and holds {_KIND_NAMES[found]}, not "
                                 f"{_KIND_NAMES[wanted]} as this command writes; refusing to replace it: "
                                 "delete it first or choose another path")


def main(argv=None) -> int:
    """Run ``roisynth`` with ``argv``; 0 on success, 2 and one line on stderr for a user error.

    Bad input (paths, tables, options, model files) and failed writes are reported as
    ``roisynth COMMAND: error: ...`` with exit code 2 and no traceback; ``--debug`` shows the
    traceback instead; ``--no-plausibility`` runs the command inside
    :func:`roisynth.utils.validation.plausibility_checks` ``(False)``. Before a command runs, its
    outputs are checked (:func:`check_outputs`).
    """
    args = build_parser().parse_args(argv)
    from .utils.validation import plausibility_checks  # after parsing: --help never loads pandas

    try:
        check_outputs(args)
        with plausibility_checks(not args.no_plausibility):
            args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"roisynth {_command(args)}: interrupted; no partial output was written", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"roisynth {_command(args)}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
