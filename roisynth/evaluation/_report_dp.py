"""The "Differential privacy" section of the HTML report (:func:`~roisynth.evaluation.build_report`):
the (ε, δ) a private fit spent against its budget, the mechanism that spent it, what the guarantee
covers and what it does not, and how to read ε, in words for a data-access committee."""

from __future__ import annotations

import html
import math

from ..pipeline import SynthesisPipeline
from ..privacy import accountant
from ..privacy._differential_privacy import dp_sgd_schedule

_HEADING = "<h2>Differential privacy</h2>"

_COVERS = (
    "Whatever anyone computes from the model file or from anything drawn from it (the synthetic tables of this "
    "report included), with any background knowledge, any attack and any computing power, the probability of any "
    "outcome changes by at most a factor e<sup>\u03b5</sup> (plus \u03b4) when any one subject is added to or "
    "removed from either cohort of the training data.",
    "It holds for every subject, unusual ones included, and for attacks not yet invented; it does not depend on "
    "the attacks of the audit below.",
    "It treats the cohort sizes as public (the sampling rate depends on them), and the model standardizes volumes "
    "with public ranges known before the data were seen ({bounds}), so the standardization spends nothing.",
)

_EXCLUDES = (
    "Anything done to the data outside the model: preprocessing fitted on the same subjects outside the budget "
    "(site harmonization, covariate correction, a selection of subjects or ROIs made by looking at them) before "
    "the tables reached the model.",
    "Covariates supplied by the user (site, age, sex, ICV given for conditional sampling or attached to the "
    "released rows), and the rows of real subjects passed through the model (<code>transform</code>, "
    "<code>counterfactual</code>, <code>severity</code>): each such output is a function of that subject's own "
    "data. The latent and severity figures of this report are of this kind.",
    "Attacks on the floating-point noise itself: it comes from a seeded generator, so that fits are reproducible, "
    "not from a cryptographic one.",
    "The guarantee bounds what any attack could learn; the empirical audit below measures what the attacks tried "
    "do learn on this cohort. The two are complementary: a committee should read both.",
)


def membership_advantage(epsilon: float, delta: float) -> float:
    r"""The largest advantage of any membership test against an (ε, δ)-differentially private model.

    A test that says whether one subject was in the training data has advantage true-positive
    rate minus false-positive rate; (ε, δ)-DP bounds it by (Kairouz, Oh & Viswanath 2015,
    *The composition theorem for differential privacy*; Humphries et al. 2023, *Investigating
    membership inference attacks under data dependencies*)

    .. math:: \frac{e^\varepsilon - 1 + 2\delta}{e^\varepsilon + 1}.

    Parameters
    ----------
    epsilon : float
        ε ≥ 0.
    delta : float
        δ in [0, 1).

    Returns
    -------
    float
        The bound, in [0, 1].

    Examples
    --------
    >>> from roisynth.evaluation._report_dp import membership_advantage
    >>> round(membership_advantage(1.0, 0.0), 3)
    0.462
    """
    return min(1.0, (math.expm1(epsilon) + 2 * delta) / (math.exp(epsilon) + 1))


def _rows(fit, spent: tuple[float, float], n: int) -> tuple[list[tuple[str, str, str]], str]:
    """(quantity, value, meaning) rows of the mechanism, and a warning when the ``n`` training
    subjects given to the report do not reproduce the spent ε (then the rate and steps are left out)."""
    budget = fit.privacy
    eps, delta = spent
    sigma, means_sigma = fit.noise_multiplier_, fit.means_noise_multiplier_
    composed = tuple(budget.composed_with)
    gaussian = composed + (() if means_sigma is None else (means_sigma,))
    rate, steps = dp_sgd_schedule(fit.batch_size, fit.epochs, n)
    delta_budget = "1/n\u00b2, the default" if budget.delta is None else f"{budget.delta:.3g}"
    rows = [
        ("\u03b5 spent / budget", f"{eps:.4g} / {budget.epsilon:.4g}",
         "The privacy loss of the whole fit, from the R\u00e9nyi-DP accountant of every mechanism below together; "
         "it never exceeds the budget."),
        ("\u03b4", f"{delta:.3g} (budget: {delta_budget})",
         "The probability with which the factor e^\u03b5 may fail; below 1/n, so the model cannot simply publish "
         "one subject's data."),
    ]
    warning = ""
    if math.isclose(accountant.epsilon(rate, sigma, steps, delta, gaussian), eps, rel_tol=1e-9):
        rows += [
            ("training subjects n", str(n), "Both cohorts together; treated as public."),
            ("Poisson sampling rate q", f"{rate:.4g}",
             f"min(1, 2\u00b7batch_size / n) with batch_size = {fit.batch_size}: each step takes every subject "
             "independently with this probability."),
            ("DP-SGD steps T", str(steps), f"\u2308epochs / q\u2309 with epochs = {fit.epochs}; no early stopping."),
        ]
    else:
        warning = (f'<div class="banner warning">The {n} training subjects given to this report do not reproduce the '
                   f"spent \u03b5 from the model's noise: they are not the tables the model was fitted on, so its "
                   "sampling rate and number of steps are not shown. The spent (\u03b5, \u03b4) above is the "
                   "model's own record.</div>")
    rows += [
        ("DP-SGD noise multiplier \u03c3", f"{sigma:.4g}",
         "Each step clips every subject's gradient and adds Gaussian noise of standard deviation \u03c3 times the "
         "clipping norm to their sum (DP-SGD, Abadi et al. 2016)."),
        ("clipping norm C", f"{budget.max_grad_norm:.4g}",
         "The most any one subject's gradient can weigh in a step (max_grad_norm)."),
        ("released cohort means",
         "none" if means_sigma is None else f"noise multiplier {means_sigma:.4g}",
         "No cohort means were released (calibration='none' or means_share=0)." if means_sigma is None else
         f"The calibration offsets use the two cohort means released by the Gaussian mechanism, with the noise "
         f"that alone would spend means_share\u00b7\u03b5 = {budget.means_share * budget.epsilon:.4g} at \u03b4."),
        ("composed releases", "none" if not composed else ", ".join(f"\u03c3 = {s:.4g}" for s in composed),
         "Gaussian mechanisms already run on the same subjects (e.g. a pipeline's private preprocessing), "
         "composed into the spent \u03b5." if composed else
         "No earlier private release of these subjects was composed into this budget (composed_with is empty)."),
    ]
    return rows, warning


def differential_privacy_html(model, n: int) -> str:
    """The report's "Differential privacy" section for ``model`` fitted on ``n`` subjects.

    A private fit (``privacy_spent_`` not None on the model, or on a pipeline's synthesizer)
    gets its spent (ε, δ) against the budget, the DP-SGD mechanism (sampling rate, steps,
    noise multiplier, clipping norm), the released cohort means and composed releases, what
    the guarantee covers and what it does not, and the advantage bound of any membership test
    (:func:`membership_advantage`). Any other model gets a sentence saying it is not
    differentially private; synthetic tables without their model, that the report cannot tell.

    Parameters
    ----------
    model : estimator, SynthesisPipeline or None
        The fitted model of the report (None: synthetic tables were given).
    n : int
        The number of training subjects given to the report (both cohorts).

    Returns
    -------
    str
        HTML: a heading and the section's paragraphs and table.
    """
    if model is None:
        return (f'{_HEADING}<p class="note">This report was given synthetic tables, not the model that drew them, so '
                "it cannot state a differential-privacy guarantee; any such guarantee is the model's (see its file "
                "or the release's release.json). The protection the report can show rests on the empirical "
                "privacy audit below.</p>")
    fit = model.synthesizer if isinstance(model, SynthesisPipeline) else model
    spent = getattr(model, "privacy_spent_", None) or getattr(fit, "privacy_spent_", None)
    name = html.escape(type(fit).__name__)
    if spent is None:
        return (f'{_HEADING}<p class="note">This model ({name}) is <b>not</b> differentially private: it was fitted '
                "without <code>privacy=DifferentialPrivacy(...)</code>, so no bound holds against every attack. Its "
                "protection rests on the empirical privacy audit below, which measures the attacks tried.</p>")
    rows, warning = _rows(fit, spent, n)
    table = "".join(f"<tr><td>{html.escape(quantity)}</td><td class=\"num\">{html.escape(value)}</td>"
                    f"<td>{html.escape(meaning)}</td></tr>" for quantity, value, meaning in rows)
    bounds = ("the normative centiles roisynth ships" if fit.privacy.bounds is None
              else f"bounds given for {len(fit.privacy.bounds)} column(s), which the guarantee assumes were known "
                   "without looking at the data")
    advantage = membership_advantage(*spent)
    examples = ", ".join(f"{membership_advantage(e, spent[1]):.2f} at \u03b5 = {e:g}" for e in (0.5, 1, 3, 10))
    covers = "".join(f"<li>{text.format(bounds=html.escape(bounds))}</li>" for text in _COVERS)
    excludes = "".join(f"<li>{text}</li>" for text in _EXCLUDES)
    return (
        f"{_HEADING}<p>This model ({name}) was fitted with <b>(\u03b5 = {spent[0]:.4g}, \u03b4 = {spent[1]:.3g})-"
        "differential privacy</b>: a formal guarantee, proven for the mechanism rather than measured on attacks.</p>"
        f"{warning}<table id=\"differential-privacy\"><thead><tr><th>quantity</th><th>value</th>"
        f"<th>what it means</th></tr></thead><tbody>{table}</tbody></table>"
        f"<p><b>What the guarantee covers.</b></p><ul>{covers}</ul>"
        f"<p><b>What it does not cover.</b></p><ul>{excludes}</ul>"
        "<p><b>How to read \u03b5.</b> Any test of whether one given person was in the training data, however "
        "clever and whatever else the attacker knows, has an advantage (true-positive rate minus false-positive "
        "rate) of at most (e<sup>\u03b5</sup> \u2212 1 + 2\u03b4) / (e<sup>\u03b5</sup> + 1) = "
        f'<b id="dp-advantage">{advantage:.3f}</b> here: guessing at even odds, such an attacker is right at most '
        f"{50 * (1 + advantage):.1f} % of the time (50 % is a coin toss). Smaller \u03b5 is stronger: the bound is "
        f"{examples}. An \u03b5 of 1 or less is usually called strong; above about 5 the bound says little on its "
        "own, and the empirical audit below carries more of the weight.</p>"
    )
