"""Torch building blocks shared by roisynth's neural models: layers, losses, the training loop."""

from .layers import GaussianEncoder, mlp
from .losses import gaussian_nll, kl_standard_normal, rbf_mmd
from .training import TrainingHistory, flush_denormal, seeded, threads, train

__all__ = [
    "GaussianEncoder",
    "TrainingHistory",
    "flush_denormal",
    "gaussian_nll",
    "kl_standard_normal",
    "mlp",
    "rbf_mmd",
    "seeded",
    "threads",
    "train",
]
