"""How SmileGAN's settings change one fold model: ARI with the true subtypes over seeds.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sweep_smilegan.py --data semisynthetic --seeds 10 \
          --set '{}' '{"cluster_weight": 9.0}' '{"batch_size": 128, "n_hidden": 64}'

Each ``--set`` is a JSON dict of ``SmileGAN`` parameters on top of the defaults; each is fitted
as one fold model (``n_folds=1``, 80 % of each cohort, no retries) with random_state 0..seeds−1
on the data sets of ``bench_subtyping.py``. One fold model is what the consensus is made of, so
its share of poor runs (ARI < 0.9: subtypes merged and split) and its ARI when it is not poor
decide how often folds are retrained and how good the consensus is. Recorded in RESULTS.md
("SmileGAN settings: <data>"), one row per setting.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from roisynth.subtyping import SmileGAN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402
from bench_subtyping import (  # noqa: E402
    FRACTION,
    N_SUBTYPES,
    fit_seeds,
    load_sample,
    load_semisynthetic,
)

POOR = 0.9  # ARI below which a fold model has merged or split subtypes


def sweep(settings: dict, cn, pt, truth, seeds: int) -> dict:
    """One fold model per seed with ``settings``: ARI per seed, poor runs, mean ARI of the others, mean seconds."""
    def factory(seed):
        return SmileGAN(n_subtypes=N_SUBTYPES, fraction=FRACTION, max_retries=0, verbose=False, random_state=seed,
                        **settings)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        runs = fit_seeds(factory, cn, pt, truth, range(seeds))
    aris, seconds = runs["ari"], runs["seconds"]
    good = [a for a in aris if a >= POOR]
    return {"aris": aris, "poor": len(aris) - len(good), "good_mean": float(np.mean(good)) if good else float("nan"),
            "seconds": float(np.mean(seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("sample", "semisynthetic"), default="semisynthetic")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--set", nargs="+", default=["{}"], dest="settings", help="JSON dicts of SmileGAN parameters")
    args = parser.parse_args()
    data = load_sample() if args.data == "sample" else load_semisynthetic()
    if data is None:
        sys.exit("the Smile-GAN sample data are absent (../shared/data/smilegan_sample)")
    settings_list = []
    for text in args.settings:
        try:
            settings = json.loads(text)
        except json.JSONDecodeError:
            settings = None
        if not isinstance(settings, dict) or not set(settings) <= set(SmileGAN().get_params()):
            parser.error(f"--set {text!r} is not a JSON object of SmileGAN parameters "
                         f"({', '.join(SmileGAN().get_params())})")
        settings_list.append(settings)
    rows = []
    for settings in settings_list:
        result = sweep(settings, *data, args.seeds)
        line = (f"| `{json.dumps(settings)}` | {result['poor']}/{args.seeds} | {result['good_mean']:.3f} | "
                f"{', '.join(f'{a:.3f}' for a in result['aris'])} | {result['seconds']:.1f} |")
        print(line, flush=True)
        rows.append(line)
    defaults = {k: v for k, v in SmileGAN().get_params().items()
                if k in ("change_weight", "cluster_weight", "n_hidden", "batch_size", "learning_rate", "max_iter")}
    record(f"SmileGAN settings: {args.data}", "\n".join([
        f"## SmileGAN settings, one fold model: {args.data}",
        "",
        f"`benchmarks/sweep_smilegan.py --data {args.data} --seeds {args.seeds}`: each setting on top of the defaults "
        f"{json.dumps(defaults)}, one fold model on {FRACTION:.0%} of each cohort, random_state 0..{args.seeds - 1}; "
        f"poor: ARI with the true subtypes below {POOR}; one thread.",
        "",
        "| setting | poor | mean ARI when not poor | ARI per seed | seconds per model |",
        "|---|---|---|---|---|",
        *rows,
    ]))


if __name__ == "__main__":
    main()
