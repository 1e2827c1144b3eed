"""Torch building blocks: the MMD with its hand-written gradient, the likelihood, the W2 metric."""

import numpy as np
import pytest
import torch

from roisynth.metrics import GaussianReference, gaussian_w2
from roisynth.nn.decoder import GaussianDecoder
from roisynth.nn.losses import _RBFMMD, rbf_mmd


def test_mmd_backward_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    pooled = torch.randn(12, 3, dtype=torch.float64, generator=g, requires_grad=True)
    weights = torch.randn(12, 12, dtype=torch.float64, generator=g)
    weights = weights + weights.T
    assert torch.autograd.gradcheck(lambda x: _RBFMMD.apply(x, weights, 1.7), (pooled,))


def test_mmd_is_small_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 5, generator=g), torch.randn(300, 5, generator=g)
    same = rbf_mmd(a, b).item()
    shifted = rbf_mmd(a, b + 1.0).item()
    assert 0 <= same < 0.05 and shifted > 10 * same  # biased estimate: O(1/n) above 0


def test_full_covariance_likelihood_matches_torch_distributions():
    torch.manual_seed(0)
    module = GaussianDecoder(2, 2, 8, 4, noise="full")
    with torch.no_grad():
        module.precision_tril.normal_(0, 0.3)
        module.log_scale.normal_(0, 0.2)
    x, mean = torch.randn(7, 4), torch.randn(7, 4)
    covariance = torch.linalg.inv(module.precision_factor() @ module.precision_factor().T)
    expected = -torch.distributions.MultivariateNormal(mean, covariance).log_prob(x)
    torch.testing.assert_close(module.nll(x, mean), expected, rtol=1e-4, atol=1e-4)
    # the sampling factor A = U^-1 gives covariance A^T A = Sigma
    factor = module.noise_factor()
    torch.testing.assert_close(factor.T @ factor, covariance, rtol=1e-4, atol=1e-5)


def test_gaussian_w2_known_value_and_fast_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = rng.normal(size=(4000, 3)) * 2 + 1
    # N(0, I) vs N(1, 4I) in 3-D: W2^2 = 3 * 1^2 + 3 * (2 - 1)^2 = 6
    assert gaussian_w2(a, b) == pytest.approx(np.sqrt(6), rel=0.03)
    assert GaussianReference(a).distance(b) == pytest.approx(gaussian_w2(a, b), rel=1e-9)
    assert gaussian_w2(a, a) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="columns"):
        gaussian_w2(a, b[:, :2])


def test_adversary_is_trained_on_its_own_loss_only():
    from roisynth.nn import train

    class Game(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.player = torch.nn.Parameter(torch.zeros(1))
            self.adversary = torch.nn.Linear(1, 1, bias=False)

    torch.manual_seed(0)
    game = Game()
    # the player chases the adversary's weight; the main loss would also pull the adversary to 0,
    # but only the adversary's own loss (minimum at 3) may move it
    loss = lambda: (game.player - game.adversary.weight[0]).pow(2).sum() + game.adversary.weight.pow(2).sum()  # noqa: E731
    adversary_loss = lambda: (game.adversary.weight - 3).pow(2).sum()  # noqa: E731
    train(game, loss, lambda: [()], epochs=3000, lr=0.05, verbose=False, adversary=(game.adversary, adversary_loss))
    assert game.adversary.weight.item() == pytest.approx(3, abs=1e-2)
    assert game.player.item() == pytest.approx(3, abs=5e-2)
