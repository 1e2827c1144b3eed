"""Smile-GAN (Yang et al. 2021, Nat. Commun.) as torch modules: the maths, apart from the estimator.

Healthy rows x and patient rows y live in the CN-normalized space (CN mean 1, SD 0.1 per ROI).
A mapping f(x, z) turns a healthy subject into a patient of subtype z ∈ {e_1..e_k}; a
discriminator D tells real patients from mapped healthy subjects; a clustering network g
recovers z from f(x, z), so that g(y) subtypes real patients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LEAKY_SLOPE, mlp


class SubtypeMapping(nn.Module):
    r"""f(x, z) = x + h(x, z): the disease change of a healthy subject along subtype direction z.

    As in the reference, h encodes x, gates the code by the subtype and decodes a change:

    .. math:: h(x, z) = W_3\,\sigma_L\big(W_2\,[\sigma_L(W_1 x) \odot \mathrm{sigmoid}(G z)]\big)

    (σ_L LeakyReLU; no biases, so that h is a function of the subject, not a fixed offset per
    subtype; with z one-hot, G's column k is the gate of subtype k).

    Parameters
    ----------
    n_features : int
        Observed features.
    n_subtypes : int
        Number of subtypes k (dimensions of z).
    n_hidden : int
        Hidden units.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.smilegan import SubtypeMapping
    >>> mapping = SubtypeMapping(n_features=3, n_subtypes=2, n_hidden=8)
    >>> x = torch.ones(4, 3)
    >>> mapping(x, torch.eye(2)[[0, 1, 0, 1]]).shape
    torch.Size([4, 3])
    """

    def __init__(self, n_features: int, n_subtypes: int, n_hidden: int):
        super().__init__()
        self.encode = nn.Linear(n_features, n_hidden, bias=False)
        self.gate = nn.Linear(n_subtypes, n_hidden)
        self.decode = nn.Sequential(nn.Linear(n_hidden, n_hidden, bias=False), nn.LeakyReLU(LEAKY_SLOPE),
                                    nn.Linear(n_hidden, n_features, bias=False))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        code = F.leaky_relu(self.encode(x), LEAKY_SLOPE) * torch.sigmoid(self.gate(z))
        return x + self.decode(code)


class SmileGANModule(nn.Module):
    r"""Mapping f, clustering g (softmax logits) and discriminator D (one logit) of Smile-GAN.

    For healthy rows x, patient rows y and subtypes c ~ Uniform{1..k} (one-hot z = e_c),
    ỹ = f(x, z). D minimizes the logistic (binary cross-entropy) loss

    .. math:: \mathcal L_D = \tfrac12\big[\overline{\mathrm{softplus}(-D(y))}
              + \overline{\mathrm{softplus}(D(\tilde y))}\big]

    and (f, g) minimize the non-saturating GAN loss plus the cluster and change terms

    .. math:: \mathcal L_{f,g} = \overline{\mathrm{softplus}(-D(\tilde y))}
              + \lambda\,\overline{\mathrm{CE}(g(\tilde y), c)}
              + \mu\,\overline{\lVert \tilde y - x \rVert_1} / p

    (the reference's two-class cross-entropy discriminator is this logistic loss with the
    logit difference as D). The Lipschitz constraint of the reference, weight clipping of f and
    g to [−κ, κ], is :meth:`clip`.

    Parameters
    ----------
    n_features : int
        Observed features.
    n_subtypes : int
        Number of subtypes k.
    n_hidden : int
        Hidden units of f, g and D.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.smilegan import SmileGANModule
    >>> from roisynth.nn import seeded
    >>> with seeded(0):
    ...     module = SmileGANModule(n_features=3, n_subtypes=2, n_hidden=8)
    ...     x, y, c = torch.ones(4, 3), 0.9 * torch.ones(4, 3), torch.tensor([0, 1, 0, 1])
    ...     loss, cluster = module.generator_loss(x, y, c, cluster_weight=3.0, change_weight=1.0)
    >>> module.proba(y).sum(1)
    tensor([1., 1., 1., 1.])
    """

    def __init__(self, n_features: int, n_subtypes: int, n_hidden: int):
        super().__init__()
        self.n_subtypes = n_subtypes
        self.mapping = SubtypeMapping(n_features, n_subtypes, n_hidden)
        self.clustering = mlp(n_features, n_hidden, n_subtypes)
        self.discriminator = mlp(n_features, n_hidden, 1)

    def one_hot(self, c: torch.Tensor) -> torch.Tensor:
        """Subtype indices ``c`` as one-hot rows e_c, in torch's default dtype."""
        return F.one_hot(c, self.n_subtypes).to(torch.get_default_dtype())

    def generator_loss(self, x, y, c, cluster_weight: float, change_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_{f,g}, its cluster cross-entropy term) for subtypes ``c`` (indices) of the rows ``x``."""
        fake = self.mapping(x, self.one_hot(c))
        cluster = F.cross_entropy(self.clustering(fake), c)
        loss = F.softplus(-self.discriminator(fake)).mean() + cluster_weight * cluster
        return loss + change_weight * (fake - x).abs().mean(), cluster

    def discriminator_loss(self, x, y, c) -> torch.Tensor:
        """L_D on real patients ``y`` and mapped healthy rows f(x, e_c) (f held fixed)."""
        with torch.no_grad():
            fake = self.mapping(x, self.one_hot(c))
        return 0.5 * (F.softplus(-self.discriminator(y)).mean() + F.softplus(self.discriminator(fake)).mean())

    @torch.no_grad()
    def clip(self, bound: float) -> None:
        """Clip every weight of f and g to [−bound, bound] (the reference's Lipschitz constraint)."""
        for p in (*self.mapping.parameters(), *self.clustering.parameters()):
            p.clamp_(-bound, bound)

    @torch.no_grad()
    def proba(self, y: torch.Tensor) -> torch.Tensor:
        """Subtype probabilities softmax(g(y))."""
        return torch.softmax(self.clustering(y), 1)
