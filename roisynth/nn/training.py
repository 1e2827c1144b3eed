"""The training loop shared by the neural models: Adam, early stopping, progress, threads, seeds."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm import tqdm


@dataclass
class TrainingHistory:
    """What happened during ``train``: losses per epoch, validation scores, the epoch kept."""

    loss: list[float] = field(default_factory=list)
    val_epochs: list[int] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("inf")
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous setting afterwards.

    Small models on 2-core machines run 10-60x slower and erratically when oversubscribed,
    so the estimators default to one thread. ``None`` leaves torch's setting alone.
    """
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
    Torch offers no getter for this mode, so the exit restores torch's default (off).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
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
    """
    excluded = set() if adversary is None else {id(p) for p in adversary[0].parameters()}
    optimizer = torch.optim.Adam([p for p in module.parameters() if id(p) not in excluded], lr=lr, betas=betas, fused=True)
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
