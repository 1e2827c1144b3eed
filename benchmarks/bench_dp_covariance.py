"""Where a private fit loses fidelity (issue 20): its observation covariance Σ, and why a direct
private release of the residual covariance does not help at n = 2100, p = 139.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp_covariance.py [--epsilon 10] [--seed 0] [--no-record]

One private ContrastiveVAE fit (``bench_dp.model_at``: ε, δ = 1/n², 100 epochs, batch 64) on the
semi-synthetic benchmark's 1050 + 1050 training rows; then, on that one fitted model, the decoder's
Σ (learned by DP-SGD) is replaced by other covariances and the held-out W2/floor ratios of
:func:`~roisynth.evaluation.evaluate` are recomputed. All replacements are diagnoses, not private
models: they use the training residuals r = x − f(μ_z, μ_s) (s = 0 for the healthy, public
standardization) without charging any budget, except the Gaussian releases, whose noise is the
Analyze-Gauss mechanism's (Dwork et al. 2014) — rows clipped to norm R (here the median residual
norm, a data-dependent choice that favours the release), N(0, σ²R⁴) on each entry of the upper
triangle of Σ r rᵀ, symmetrized, divided by n, eigenvalues floored at 0.02 — for the σ given, with
its budget *not* charged (the most favourable case: a real release would also take budget from
DP-SGD).

Records section "Differential privacy: covariance diagnosis" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from roisynth.evaluation import evaluate, flatten, semisynthetic_data
from roisynth.evaluation._evaluate import _split_rows
from roisynth.privacy import epsilon, noise_multiplier
from roisynth.privacy._differential_privacy import dp_sgd_schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402
from bench_dp import model_at  # noqa: E402

RELEASE_SIGMAS = (0.5, 1.0, 2.0)
EIGEN_FLOOR = 0.02


def training_split(data, n_train: int = 1050, seed: int = 0):
    """The train / held-out split of :func:`~roisynth.evaluation.semisynthetic_scores` (same seed, same rows)."""
    order_b, order_t, n_b, n_t = _split_rows(data, n_train, np.random.default_rng(seed))
    b, t = data.background[data.rois], data.target[data.rois]
    return ((b.iloc[order_b[:n_b]], t.iloc[order_t[:n_t]]),
            (b.iloc[order_b[n_b:]], t.iloc[order_t[n_t:]]))


def residuals(model, train) -> np.ndarray:
    """Centred training residuals x − f(μ_z, μ_s) (s = 0 for the healthy) in the model's standardization."""
    rows = []
    for X, salient in zip(train, (False, True)):
        _, values = model._validate_X(X)
        mu_z, mu_s = model._posterior_means(values)
        with torch.no_grad():
            decoded = model.module_.decoder(mu_z, mu_s if salient else None)
        rows.append((model._as_tensor(values) - decoded).double().numpy())
    r = np.vstack(rows)
    return r - r.mean(0)


def set_covariance(model, covariance: np.ndarray) -> None:
    """Make the fitted decoder's Σ equal ``covariance`` (through its precision's Cholesky factor)."""
    factor = np.linalg.cholesky(np.linalg.inv(covariance))
    decoder = model.module_.decoder
    with torch.no_grad():
        decoder.log_scale.copy_(torch.as_tensor(-np.log(np.diag(factor))))
        decoder.precision_tril.copy_(torch.as_tensor(np.tril(factor, -1)))


def correlation(covariance: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(covariance))
    return covariance / np.outer(sd, sd)


def gaussian_release(r: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Analyze-Gauss: (Σ clip(r) clip(r)ᵀ + symmetric N(0, σ²R⁴)) / n, R the median row norm, made PSD."""
    n, p = r.shape
    norms = np.linalg.norm(r, axis=1, keepdims=True)
    bound = float(np.median(norms))
    clipped = r * np.minimum(1.0, bound / norms)
    noise = np.triu(rng.normal(scale=sigma * bound**2, size=(p, p)))
    moment = (clipped.T @ clipped + noise + np.triu(noise, 1).T) / n
    values, vectors = np.linalg.eigh(moment)
    return (vectors * np.maximum(values, EIGEN_FLOOR)) @ vectors.T


def diagnosis(eps: float, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """W2/floor of one private fit with each replacement Σ, and how well DP-SGD learned the correlations."""
    data = semisynthetic_data()
    train, test = training_split(data, seed=seed)
    start = time.perf_counter()
    model = model_at(eps, seed).fit(*train)
    fit_seconds = time.perf_counter() - start
    n = sum(len(X) for X in train)
    (q, steps), delta = dp_sgd_schedule(model.batch_size, model.epochs, n), model.privacy_spent_[1]
    steps_epsilon = epsilon(q, model.noise_multiplier_, steps, delta)
    equivalent = noise_multiplier(steps_epsilon, delta, 1.0, 1)  # one Gaussian release as private as the steps
    with torch.no_grad():
        factor = model.module_.decoder.noise_factor().double().numpy()
    learned = factor.T @ factor  # εA with ε ~ N(0, I) rows has covariance AᵀA
    r = residuals(model, train)
    empirical = r.T @ r / len(r)
    sd_learned, sd_empirical = np.sqrt(np.diag(learned)), np.sqrt(np.diag(empirical))
    values, vectors = np.linalg.eigh(empirical)
    top = vectors[:, -10:] * np.sqrt(values[-10:])
    low_rank = top @ top.T
    variants = {
        "private fit (Σ learned by DP-SGD)": learned,
        "Σ = residual covariance": empirical,
        "residual correlations, DP-SGD variances": correlation(empirical) * np.outer(sd_learned, sd_learned),
        "DP-SGD correlations, residual variances": correlation(learned) * np.outer(sd_empirical, sd_empirical),
        "residual top-10 components + diagonal": low_rank + np.diag(np.maximum(np.diag(empirical - low_rank),
                                                                               EIGEN_FLOOR)),
    }
    rng = np.random.default_rng(seed)
    for sigma in sorted((*RELEASE_SIGMAS, round(equivalent, 2))):
        variants[f"Gaussian release, σ = {sigma:g} (budget not charged)"] = gaussian_release(r, sigma, rng)
    variants["½ (σ = 0.5 release) + ½ DP-SGD Σ"] = (variants["Gaussian release, σ = 0.5 (budget not charged)"]
                                                  + learned) / 2
    rows = {}
    for name, covariance in variants.items():
        set_covariance(model, covariance)
        scores = flatten(evaluate(model, train, test, n_bootstrap=0, random_state=seed))
        rows[name] = {"W2/floor B": scores["w2_background_ratio"], "W2/floor T": scores["w2_target_ratio"]}
        print(name, rows[name], flush=True)
    upper = np.triu_indices(len(learned), 1)
    marginal = correlation(learned)[upper], correlation(empirical)[upper]
    partial = (-correlation(np.linalg.inv(learned))[upper], -correlation(np.linalg.inv(empirical))[upper])
    facts = {"fit_seconds": fit_seconds,
             "marginal": (np.polyfit(marginal[1], marginal[0], 1)[0], np.corrcoef(*marginal)[0, 1]),
             "partial": (np.polyfit(partial[1], partial[0], 1)[0], np.corrcoef(*partial)[0, 1]),
             "variance_ratio": np.percentile(sd_learned**2 / sd_empirical**2, [5, 50, 95]),
             "median_norm": float(np.median(np.linalg.norm(r, axis=1))), "n": len(r), "p": r.shape[1],
             "steps_epsilon": steps_epsilon, "equivalent": equivalent,
             "mean_variance": float(np.diag(empirical).mean()), "median_eigenvalue": float(np.median(values))}
    return pd.DataFrame(rows).T, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="print only, do not write RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table, facts = diagnosis(args.epsilon, args.seed)
    low, middle, high = facts["variance_ratio"]
    p = facts["p"]
    entry = [sigma * facts["median_norm"] ** 2 / facts["n"] for sigma in RELEASE_SIGMAS]
    body = (
        "## Differential privacy: where the distance comes from (`benchmarks/bench_dp_covariance.py`)\n\n"
        f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp_covariance.py --epsilon {args.epsilon:g} "
        f"--seed {args.seed}` ({time.strftime('%Y-%m-%d')}): one private fit (ε = {args.epsilon:g}, "
        f"{facts['fit_seconds']:.0f} s), its decoder's Σ replaced by each covariance below, held-out W2/floor. "
        "Every row but the first is a diagnosis, not a private model (module docstring).\n\n"
        f"{table.round(3).to_markdown()}\n\n"
        "Reading: the DP-SGD variances are close to the residuals' (learned / residual variance "
        f"{middle:.2f}, 5–95 % {low:.2f}–{high:.2f}) and its marginal correlations follow theirs (slope "
        f"{facts['marginal'][0]:.2f}, r = {facts['marginal'][1]:.2f} over ROI pairs), but its partial "
        f"correlations do not (slope {facts['partial'][0]:.2f}, r = {facts['partial'][1]:.2f}); the swaps locate "
        "the loss in the correlations, and a low-rank form does not carry them. A direct Gaussian release of "
        "the residual covariance is worse than DP-SGD even with its budget not charged: at n = "
        f"{facts['n']}, p = {p} and R = the median residual norm ({facts['median_norm']:.1f}), each entry's noise "
        f"σR²/n ({entry[0]:.3f}–{entry[-1]:.3f} for σ = {RELEASE_SIGMAS[0]:g}–{RELEASE_SIGMAS[-1]:g}) is small "
        f"beside a variance ({facts['mean_variance']:.2f} on average), but over the p × p entries the noise matrix has "
        f"spectral norm ≈ 2√p·σR²/n ({2 * p**0.5 * entry[0]:.2f}–{2 * p**0.5 * entry[-1]:.2f}), as large as the "
        f"bulk of the eigenvalues (median {facts['median_eigenvalue']:.2f}); and a σ = {RELEASE_SIGMAS[0]:g} release "
        f"alone spends ε = {epsilon(1.0, RELEASE_SIGMAS[0], 1, 1 / facts['n'] ** 2):.1f} at δ = 1/n². "
        "DP-SGD is not the weak link: its "
        f"steps alone spend ε = {facts['steps_epsilon']:.2f}, what one Gaussian release with noise multiplier "
        f"{facts['equivalent']:.2f} spends, and a release of the covariance at that σ is worse than the "
        "DP-SGD Σ: at this n and p the budget, not the estimator, limits Σ. Meeting W2/floor ≤ 1.5 at ε = 10 "
        "would need a better-structured private estimate of the residual correlations (a public "
        "prior or a sparse graphical model), not built.")
    print(body)
    if not args.no_record:
        record("Differential privacy: covariance diagnosis", body)


if __name__ == "__main__":
    main()
