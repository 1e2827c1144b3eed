"""Evaluation of a fitted synthesizer: the metric table (:func:`evaluate`), the model benchmark
(:func:`benchmark_models`, :func:`write_benchmark`) and the one-file HTML report
(:func:`build_report`, :func:`build_report_from_tables`). The benchmark and report modules
import the models and matplotlib, so they are loaded only when one of their names is asked for."""

from ._evaluate import (
    effect_scores,
    evaluate,
    fidelity_summary,
    flatten,
    latent_codes,
    normative_z,
    semisynthetic_scores,
    severity_comparison,
    standardizer,
)

_LAZY = {"build_report": "._report", "build_report_from_tables": "._report", "METRICS": "._report",
         "explain_metric": "._report",
         "benchmark_models": "._benchmark", "write_benchmark": "._benchmark",
         "run_semisynthetic": "._benchmark", "run_table": "._benchmark", "semisynthetic_data": "._benchmark",
         "table_a1": "._benchmark", "to_markdown": "._benchmark"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METRICS",
    "benchmark_models",
    "build_report",
    "build_report_from_tables",
    "effect_scores",
    "evaluate",
    "explain_metric",
    "fidelity_summary",
    "flatten",
    "latent_codes",
    "normative_z",
    "run_semisynthetic",
    "run_table",
    "semisynthetic_data",
    "semisynthetic_scores",
    "severity_comparison",
    "standardizer",
    "table_a1",
    "to_markdown",
    "write_benchmark",
]
