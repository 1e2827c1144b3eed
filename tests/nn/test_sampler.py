"""GaussianDecoder.sampler (BLAS trmm/gemm in place) and LatentMixture.sample against their formulas (issue 18)."""

import numpy as np
import pytest
import torch

from roisynth.nn.decoder import GaussianDecoder, blas_threads
from roisynth.synthesizers._latent_density import LatentMixture


@pytest.mark.parametrize("noise", ["full", "diagonal", "none"])
def test_sampler_writes_mean_plus_offsets_plus_noise_times_factor(noise):
    torch.manual_seed(0)
    decoder = GaussianDecoder(n_shared=3, n_condition=2, n_hidden=16, n_features=7, noise=noise)
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.normal_(0, 0.3)
    k = 50
    u, c, eps = torch.randn(k, 3), torch.randn(k, 2), torch.randn(k, 7)
    scale, shift = torch.rand(7) + 0.5, torch.randn(7)
    offsets = torch.randn(7), torch.randn(7)
    with torch.no_grad():
        noisy = torch.zeros(k, 7) if noise == "none" else eps.double() @ decoder.noise_factor().double()
        expected = [(decoder(u).double() + offsets[0] + noisy) * scale + shift,
                    (decoder(u, c).double() + offsets[1] + noisy) * scale + shift]
        out_b = torch.empty(k, 7)
        out_t = torch.empty(7, k).T  # not contiguous: written through a temporary
        with blas_threads():
            decoder.sampler(True, True, scale, shift, offsets)(u, c, eps.clone(), (out_b, out_t))
    for got, want in zip((out_b, out_t), expected):
        np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_mixture_draws_map_each_row_by_its_own_component():
    torch.manual_seed(1)
    k, d = 3, 4
    roots = torch.randn(k, d, d)
    factors = torch.linalg.cholesky(torch.eye(d) + 0.3 * roots @ roots.transpose(1, 2))
    mixture = LatentMixture(torch.tensor([0.2, 0.5, 0.3]), torch.randn(k, d) * 3, factors)
    draws = mixture.sample(1000, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # the same stream: normals, then components
    eps = torch.randn(1000, d, generator=generator)
    component = torch.multinomial(mixture.weights, 1000, replacement=True, generator=generator)
    expected = mixture.means[component] + torch.einsum("nij,nj->ni", factors[component], eps)
    torch.testing.assert_close(draws, expected, rtol=1e-5, atol=1e-5)
