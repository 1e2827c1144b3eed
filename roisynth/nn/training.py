"""The training loop shared by the neural models: Adam, early stopping, progress, threads, seeds."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm import tqdm


@dataclass
class TrainingHistory:
    """What happened during :func:`train`: losses per epoch, validation scores, the epoch kept.

    Parameters
    ----------
    loss : list of float
        Mean training loss of each epoch.
    val_epochs : list of int
        Epochs at which the validation score was computed.
    val_score : list of float
        The validation scores (lower is better).
    best_epoch : int, default=0
        Epoch whose weights were kept (the last epoch when there is no validation).
    best_score : float, default=inf
        Best validation score.
    stopped_early : bool, default=False
        Whether training stopped before ``epochs`` for lack of improvement.

    Examples
    --------
    >>> from roisynth.nn import TrainingHistory
    >>> history = TrainingHistory(loss=[2.0, 1.5], best_epoch=2)
    >>> history.to_dict()["loss"], history.stopped_early
    ([2.0, 1.5], False)
    """

    loss: list[float] = field(default_factory=list)
    val_epochs: list[int] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("inf")
    stopped_early: bool = False

    def to_dict(self) -> dict:
        """The fields as a plain dict (JSON-serializable), e.g. for model metadata."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


#: Held for the whole of every :func:`seeded`, :func:`threads` and :func:`flush_denormal` block:
#: torch's CPU generator, its thread count and its denormal mode are process-wide, so concurrent
#: fits (and torch work of the estimators) in one process run one at a time, each exactly as when
#: run alone. Re-entrant, so the blocks nest (a seeded fit may fit another, as SalientSubtypes does).
_TORCH_STATE_LOCK = threading.RLock()


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous setting afterwards.

    Small models on 2-core machines run 10-60x slower and erratically when oversubscribed,
    so the estimators default to one thread. ``None`` leaves torch's setting alone. The thread
    count is process-wide: the block holds the process-wide re-entrant lock of :func:`seeded`,
    so blocks started in several threads of one process run one at a time.

    Parameters
    ----------
    n : int or None
        Number of intra-op threads inside the block.

    Yields
    ------
    None

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import threads
    >>> before = torch.get_num_threads()
    >>> with threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    with _TORCH_STATE_LOCK:
        if n is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Treat subnormal floats as zero inside the block (restored afterwards).

    Products of small RBF kernel values underflow into subnormals, which x86 CPUs
    multiply up to ~100x slower than normal numbers; their contribution is below 1e-38.
    Torch offers no getter for this mode, so the exit restores torch's default (off). The mode is
    process-wide: the block holds the process-wide re-entrant lock of :func:`seeded`.

    Yields
    ------
    None

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import flush_denormal
    >>> with flush_denormal():
    ...     tiny = torch.tensor([1e-39], dtype=torch.float32) * 1.0
    >>> tiny.item() < 1e-38  # 0 where the CPU supports flushing
    True
    """
    with _TORCH_STATE_LOCK:
        torch.set_flush_denormal(True)
        try:
            yield
        finally:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block without disturbing the caller's RNG state.

    Torch's CPU generator is process-global, so the block holds a process-wide re-entrant lock
    (shared with :func:`threads` and :func:`flush_denormal`): seeded fits started in several
    threads of one process run one at a time, each with the same draws as when run alone.
    Code outside these blocks that draws from torch's global generator while a seeded block
    runs in another thread still changes that block's draws.

    Parameters
    ----------
    seed : int
        Seed of torch's CPU generator inside the block.

    Yields
    ------
    None

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import seeded
    >>> with seeded(0):
    ...     first = torch.rand(2)
    >>> with seeded(0):
    ...     second = torch.rand(2)
    >>> torch.equal(first, second)
    True
    """
    with _TORCH_STATE_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def train(
    module: torch.nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    batches: Callable[[], Iterable[tuple]],
    *,
    epochs: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    validate: Callable[[], float] | None = None,
    eval_every: int = 5,
    patience: int = 50,
    verbose: bool = True,
    desc: str = "training",
    adversary: tuple[torch.nn.Module, Callable[..., torch.Tensor]] | None = None,
) -> TrainingHistory:
    """Minimize ``loss_fn(*batch)`` with Adam, keeping the weights with the best validation score.

    ``batches()`` yields the batches of one epoch. Every ``eval_every`` epochs ``validate()``
    (lower is better) is called in eval mode without gradients; training stops when it has
    not improved for ``patience`` epochs, and the best weights are restored.

    ``adversary=(submodule, adversary_loss)`` trains a submodule of ``module`` (e.g. a
    discriminator) against the rest: it is left out of the main optimizer and, after each
    main step, takes one step of its own Adam on ``adversary_loss(*batch)``.

    Parameters
    ----------
    module : torch.nn.Module
        The model; its parameters (less the adversary's) are optimized. Left in eval mode.
    loss_fn : callable
        ``loss_fn(*batch) -> Tensor``, the scalar loss of one batch.
    batches : callable
        ``batches() -> iterable of tuples``, the batches of one epoch.
    epochs : int
        Most epochs to run.
    lr : float, default=1e-3
        Adam learning rate.
    betas : tuple of (float, float), default=(0.5, 0.999)
        Adam betas.
    validate : callable or None, default=None
        ``validate() -> float``, lower is better; None trains all epochs and keeps the last weights.
    eval_every : int, default=5
        Epochs between validations (the last epoch is always validated).
    patience : int, default=50
        Epochs without improvement before stopping.
    verbose : bool, default=True
        Show a tqdm progress bar.
    desc : str, default="training"
        Label of the progress bar.
    adversary : tuple of (Module, callable) or None, default=None
        A submodule trained against the rest, and its loss (see above).

    Returns
    -------
    TrainingHistory
        Losses, validation scores and the epoch kept.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import seeded, train
    >>> with seeded(0):
    ...     model = torch.nn.Linear(1, 1)
    ...     x = torch.linspace(-1, 1, 20)[:, None]
    ...     history = train(model, lambda x, y: (model(x) - y).pow(2).mean(), lambda: [(x, 2 * x)],
    ...                     epochs=300, lr=0.05, verbose=False)
    >>> len(history.loss), round(model.weight.item(), 1)
    (300, 2.0)
    """
    excluded = set() if adversary is None else {id(p) for p in adversary[0].parameters()}
    parameters = [p for p in module.parameters() if id(p) not in excluded]
    optimizer = torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    if adversary is not None:
        adversary_optimizer = torch.optim.Adam(adversary[0].parameters(), lr=lr, betas=betas, fused=True)
    history = TrainingHistory()
    best_state = None
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not verbose, leave=False)
    for epoch in bar:
        total, count = 0.0, 0
        for batch in batches():
            loss = loss_fn(*batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if adversary is not None:
                adversary_optimizer.zero_grad(set_to_none=True)
                adversary[1](*batch).backward()
                adversary_optimizer.step()
            total += loss.item()
            count += 1
        history.loss.append(total / max(count, 1))
        if validate is None or (epoch % eval_every and epoch != epochs):
            continue
        module.eval()
        with torch.no_grad():
            score = float(validate())
        module.train()
        history.val_epochs.append(epoch)
        history.val_score.append(score)
        bar.set_postfix(loss=f"{history.loss[-1]:.3g}", val=f"{score:.4g}")
        if score < history.best_score:
            history.best_score, history.best_epoch = score, epoch
            best_state = copy.deepcopy(module.state_dict())
        elif epoch - history.best_epoch >= patience:
            history.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.loss)
    module.eval()
    return history


class _RowLoss(torch.nn.Module):
    """``row_loss`` of one row as a module call, so that :func:`torch.func.functional_call` can swap
    in the parameters of ``module`` (held as a submodule) while vmap maps it over rows."""

    def __init__(self, module: torch.nn.Module, row_loss: Callable[..., torch.Tensor]):
        super().__init__()
        self.module, self.row_loss = module, row_loss

    def forward(self, *row: torch.Tensor) -> torch.Tensor:
        return self.row_loss(*(r.unsqueeze(0) for r in row))[0]


def train_private(
    module: torch.nn.Module,
    row_loss: Callable[..., torch.Tensor],
    data: tuple[torch.Tensor, ...],
    *,
    steps: int,
    sampling_rate: float,
    noise_multiplier: float,
    max_grad_norm: float,
    noise_shape: tuple[int, ...],
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    verbose: bool = True,
    desc: str = "DP-SGD",
) -> None:
    r"""Minimize a per-row loss by DP-SGD (Abadi et al. 2016) with Poisson sampling and Adam.

    Each of ``steps`` steps takes every row of ``data`` independently with probability
    q = ``sampling_rate``, computes each taken row's gradient g_i of ``row_loss`` (torch.func:
    vmap of grad, one row at a time), clips it to norm C = ``max_grad_norm`` and gives Adam

    .. math:: \tilde g = \frac{1}{qN}\Big(\sum_i g_i \min\big(1, C / \lVert g_i\rVert_2\big)
              + N(0, \sigma^2 C^2 I)\Big)

    with σ = ``noise_multiplier`` and N the number of rows; the norm is taken over all
    parameters together. Adam only post-processes the noisy gradients, so the guarantee is
    that of the subsampled Gaussian mechanism composed over the steps
    (:func:`roisynth.privacy.epsilon`). Nothing computed from the data other than the noisy
    gradients leaves the loop: no loss is recorded. The masks and noises come from torch's
    global generator (seed it with :func:`seeded` for bit-identical runs on CPU).

    Parameters
    ----------
    module : torch.nn.Module
        The model; all its parameters that require gradients are trained. Left in eval mode.
    row_loss : callable
        ``row_loss(*rows, eps) -> Tensor of shape (n,)``: the loss of each of n rows, each row's
        value depending on that row only; ``rows`` are the rows of ``data``, ``eps`` standard normal
        draws of shape (n, *noise_shape) for the reparameterization.
    data : tuple of Tensor
        Tensors of N rows each (e.g. features and cohort labels).
    steps : int
        Number of DP-SGD steps.
    sampling_rate : float
        q, the Poisson probability of a row in a step.
    noise_multiplier : float
        σ.
    max_grad_norm : float
        C.
    noise_shape : tuple of int
        Shape of one row's reparameterization draws.
    lr : float, default=1e-3
        Adam learning rate.
    betas : tuple of (float, float), default=(0.5, 0.999)
        Adam betas.
    verbose : bool, default=True
        Show a tqdm progress bar.
    desc : str, default="DP-SGD"
        Label of the progress bar.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import seeded, train_private
    >>> with seeded(0):
    ...     model = torch.nn.Linear(1, 1, bias=False)
    ...     x = torch.linspace(-1, 1, 200)[:, None]
    ...     train_private(model, lambda x, y, eps: (model(x) - y).pow(2).sum(1), (x, 2 * x), steps=300,
    ...                   sampling_rate=0.25, noise_multiplier=1.0, max_grad_norm=1.0, noise_shape=(1,),
    ...                   lr=0.05, verbose=False)
    >>> round(model.weight.item(), 1)
    2.0
    """
    names = [name for name, p in module.named_parameters() if p.requires_grad]
    parameters = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    wrapper = _RowLoss(module, row_loss)
    prefixed = [f"module.{name}" for name in names]

    def loss_of(params: dict, *row: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(wrapper, params, row)

    per_row_grads = torch.func.vmap(torch.func.grad(loss_of), in_dims=(None, *[0] * (len(data) + 1)))
    n = len(data[0])
    scale = 1.0 / (sampling_rate * n)
    module.train()
    for _ in tqdm(range(steps), desc=desc, disable=not verbose, leave=False):
        taken = (torch.rand(n) < sampling_rate).nonzero().squeeze(1)
        eps = torch.randn(len(taken), *noise_shape)
        if len(taken):
            params = {key: p.detach() for key, p in zip(prefixed, parameters)}
            grads = per_row_grads(params, *(d[taken] for d in data), eps)
            norms = torch.stack([grads[key].flatten(1).pow(2).sum(1) for key in prefixed]).sum(0).sqrt()
            factor = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        for key, p in zip(prefixed, parameters):
            total = torch.tensordot(factor, grads[key], dims=1) if len(taken) else torch.zeros_like(p)
            p.grad = (total + torch.randn_like(p) * (noise_multiplier * max_grad_norm)) * scale
        optimizer.step()
    module.eval()
