r"""Conditional normalizing flows (zuko) and the torch module of :class:`roisynth.synthesizers.CausalROIModel`.

A flow maps an observation x to exogenous noise u = T(x | c) ~ N(0, I) given a context c
(the node's parents); T is invertible in x for every c, so abduction is u = T(x | c) and
prediction is x = T⁻¹(u | c). Each flow is a linear-Gaussian regression layer followed
by rational-quadratic spline layers:

    T = S_K ∘ … ∘ S_1 ∘ A,   A(x | c) = (x − W c − b) ⊙ exp(−(V c + a)),

where the spline layers S_k (Durkan et al. 2019) are coupling layers (two halves of the
features, alternating) whose bin parameters are MLPs of the other half and c. The linear
layer carries the main effects of the parents (a linear model on log volumes is a good
first approximation), the splines the non-Gaussian and non-linear rest.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import AffineTransform, Transform
from zuko.distributions import DiagNormal
from zuko.flows import Flow, MaskedAutoregressiveTransform
from zuko.flows.gaussianization import ElementWiseTransform
from zuko.lazy import LazyTransform, UnconditionalDistribution
from zuko.transforms import MonotonicRQSTransform


class LinearAffineTransform(LazyTransform):
    r"""x ↦ (x − W c − b) ⊙ exp(−(V c + a)): a heteroscedastic linear regression on c.

    Starts at the identity (all weights 0). With ``context=0`` it is a learned shift and scale.
    Calling it with a context ``c`` of shape (n, context) returns a torch ``AffineTransform``.

    Parameters
    ----------
    features : int
        Dimensions of x.
    context : int
        Dimensions of c.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.flows import LinearAffineTransform
    >>> transform = LinearAffineTransform(features=2, context=1)(torch.zeros(3, 1))
    >>> transform(torch.ones(3, 2)).detach()  # the identity at initialization
    tensor([[1., 1.],
            [1., 1.],
            [1., 1.]])
    """

    def __init__(self, features: int, context: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features, context + 1))
        self.log_scale = nn.Parameter(torch.zeros(features, context + 1))

    @staticmethod
    def _linear(weight: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return weight[:, -1] if c is None else c @ weight[:, :-1].T + weight[:, -1]

    def forward(self, c: torch.Tensor | None = None) -> Transform:
        inv_scale = torch.exp(-self._linear(self.log_scale, c))
        return AffineTransform(-self._linear(self.shift, c) * inv_scale, inv_scale, event_dim=1)


def conditional_flow(features: int, context: int, transforms: int = 2, bins: int = 8, hidden: int = 64) -> Flow:
    """A zuko flow p(x | c) = N(T(x | c); 0, I) |det ∂T/∂x| with T as in the module docstring.

    The spline layers are masked autoregressive transforms with two passes (coupling layers)
    in alternating feature order, or element-wise transforms for one feature.

    Parameters
    ----------
    features : int
        Dimensions of x.
    context : int
        Dimensions of c (0 for an unconditional flow).
    transforms : int, default=2
        Number K of spline layers.
    bins : int, default=8
        Bins of each rational-quadratic spline.
    hidden : int, default=64
        Hidden units of the two-layer MLPs giving the spline parameters.

    Returns
    -------
    zuko.flows.Flow
        Called with a context of shape (n, context), the distribution p(x | c).

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.flows import conditional_flow
    >>> flow = conditional_flow(features=2, context=1, hidden=8)
    >>> flow(torch.zeros(3, 1)).log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
    """
    spline = {"univariate": MonotonicRQSTransform, "shapes": [(bins,), (bins,), (bins - 1,)],
              "hidden_features": (hidden, hidden)}
    layers: list[LazyTransform] = [LinearAffineTransform(features, context)]
    for k in range(transforms):
        if features == 1:
            layers.append(ElementWiseTransform(1, context, **spline))
        else:
            order = torch.arange(features) if k % 2 == 0 else torch.arange(features).flip(0)
            layers.append(MaskedAutoregressiveTransform(features, context, passes=2, order=order, **spline))
    base = UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)
    return Flow(layers, base)


class CovariateMechanisms(nn.Module):
    r"""Mechanisms of the metadata nodes, on standardized age a and log ICV i.

    * age: p(a) — unconditional 1-D flow (a root; sex, the other root, is a Bernoulli rate
      kept by the estimator);
    * diagnosis: p(d | a, s) = softmax(L [a, s]) — multinomial logistic regression;
    * ICV: p(i | a, s) — 1-D flow.

    Parameters
    ----------
    n_levels : int
        Number of diagnosis levels.
    transforms : int, default=2
        Spline layers of each flow (see :func:`conditional_flow`).
    bins : int, default=8
        Spline bins.
    hidden : int, default=64
        Hidden units of the spline MLPs.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.flows import CovariateMechanisms
    >>> mechanisms = CovariateMechanisms(n_levels=3, hidden=8)
    >>> column = torch.zeros(4, 1)
    >>> mechanisms.log_prob(column, column, column, torch.tensor([0, 1, 2, 0])).shape
    torch.Size([4])
    """

    def __init__(self, n_levels: int, transforms: int = 2, bins: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.age = conditional_flow(1, 0, transforms, bins, hidden)
        self.icv = conditional_flow(1, 2, transforms, bins, hidden)
        self.diagnosis = nn.Linear(2, n_levels)

    def log_prob(self, age, sex, icv, diagnosis, rois=None) -> torch.Tensor:
        """log p(a) + log p(d | a, s) + log p(i | a, s), per subject (``rois`` is ignored)."""
        demo = torch.cat([age, sex], 1)
        log_p_diagnosis = -nn.functional.cross_entropy(self.diagnosis(demo), diagnosis, reduction="none")
        return self.age().log_prob(age) + log_p_diagnosis + self.icv(demo).log_prob(icv)


class ROIMechanism(nn.Module):
    """p(r | a, s, i, onehot(d)): one flow over the whole standardized log-ROI vector.

    Parameters
    ----------
    n_rois : int
        Number of ROIs (dimensions of r).
    n_levels : int
        Number of diagnosis levels.
    transforms : int, default=2
        Spline layers (see :func:`conditional_flow`).
    bins : int, default=8
        Spline bins.
    hidden : int, default=64
        Hidden units of the spline MLPs.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.flows import ROIMechanism
    >>> mechanism = ROIMechanism(n_rois=3, n_levels=2, hidden=8)
    >>> column = torch.zeros(4, 1)
    >>> mechanism.log_prob(column, column, column, torch.tensor([0, 1, 0, 1]), torch.zeros(4, 3)).shape
    torch.Size([4])
    """

    def __init__(self, n_rois: int, n_levels: int, transforms: int = 2, bins: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.n_levels = n_levels
        self.flow = conditional_flow(n_rois, 3 + n_levels, transforms, bins, hidden)

    def forward(self, age, sex, icv, diagnosis):
        """The flow given the parents [age, sex, icv, onehot(diagnosis)] (columns of shape (n, 1))."""
        onehot = nn.functional.one_hot(diagnosis, self.n_levels).to(age.dtype)
        return self.flow(torch.cat([age, sex, icv, onehot], 1))

    def log_prob(self, age, sex, icv, diagnosis, rois) -> torch.Tensor:
        """log p(r | a, s, i, d) per subject."""
        return self(age, sex, icv, diagnosis).log_prob(rois)


class CausalROIModule(nn.Module):
    """All mechanisms of the causal graph of :class:`roisynth.synthesizers.CausalROIModel`.

    ``covariates`` (:class:`CovariateMechanisms`) and ``rois`` (:class:`ROIMechanism`). The
    likelihood factorizes over them, so each is trained on its own.

    Parameters
    ----------
    n_rois : int
        Number of ROIs.
    n_levels : int
        Number of diagnosis levels.
    transforms : int, default=2
        Spline layers of every flow (see :func:`conditional_flow`).
    bins : int, default=8
        Spline bins.
    hidden : int, default=64
        Hidden units of the spline MLPs.

    Examples
    --------
    >>> from roisynth.nn.flows import CausalROIModule
    >>> module = CausalROIModule(n_rois=3, n_levels=2, hidden=8)
    >>> type(module.covariates).__name__, type(module.rois).__name__
    ('CovariateMechanisms', 'ROIMechanism')
    """

    def __init__(self, n_rois: int, n_levels: int, transforms: int = 2, bins: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.covariates = CovariateMechanisms(n_levels, transforms, bins, hidden)
        self.rois = ROIMechanism(n_rois, n_levels, transforms, bins, hidden)
