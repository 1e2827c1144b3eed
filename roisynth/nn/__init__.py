"""Torch building blocks shared by roisynth's neural models: layers, decoder, losses, training loop."""

from .decoder import GaussianDecoder
from .layers import GaussianEncoder, mlp
from .losses import gaussian_nll, kl_standard_normal, rbf_mmd
from .training import TrainingHistory, flush_denormal, seeded, threads, train, train_private

__all__ = [
    "GaussianDecoder",
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
    "train_private",
]
