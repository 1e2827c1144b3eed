r"""Training of the mask-guided diffusion pipeline, one process or many (``torchrun``).

:func:`train` runs the stages in order, each a plain loop of Adam steps on random minibatches
of a phantom cohort (:func:`~roisynth.imaging.cohort.make_cohort`):

1. ``autoencoder``: L1 + KL (:meth:`MaskGuidedDiffusion.autoencoder_loss`), then the latent
   scale s = 1/std(latents) on the training images (:meth:`~MaskGuidedDiffusion.fit_scale_factor`);
2. ``unet``: ε-prediction MSE with condition dropout, UNet and metadata embedding trained;
3. ``controlnet``: the ControlNet, initialized from the UNet, trained with the same loss on the
   mask channels while the UNet and embedding stay frozen;
4. ``segmenter``: Dice + cross-entropy (:class:`~roisynth.imaging.segmenter.Segmenter`), used by
   :func:`evaluate` to measure the volumes of generated images.

The output folder holds ``cohort.npz`` (training subjects), ``test_cohort.npz`` (held out,
never trained on), ``model.pt``, ``segmenter/`` (its weights and config), ``train_log.csv`` (stage, step, loss, lr,
seconds), ``timings.json``, ``progress.json`` (finished stages) and ``checkpoints/{stage}.pt``
(module and optimizer state, step, every rank's random streams). With ``resume=True`` finished
stages are skipped and an unfinished one continues from its checkpoint; the result is the same
as an uninterrupted run's (same random draws, bit for bit on one CPU process).

:func:`evaluate` scores counterfactuals of the held-out subjects of a trained folder
(:func:`~roisynth.imaging.verification.evaluate_counterfactuals`); :func:`load_run` reads the
folder back; :func:`smoke_config` shortens a preset for smoke runs.

Several GPUs: ``torchrun --nproc_per_node N -m roisynth.cli imaging train ...``. Each rank
draws its own minibatches and noise (seeds spawned from the stage and the rank), the model is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` with only the stage's parameters
trainable (each gets a gradient at every step, so DDP needs no unused-parameter search;
gradients are averaged over ranks: an effective batch of N × ``batch_size``), and rank 0 alone
writes files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from roisynth.utils.atomic import atomic_output, write_bytes
from roisynth.utils.validation import check_count

from .cohort import PhantomCohort, make_cohort
from .config import DiffusionConfig, StageConfig
from .diffusion import MaskGuidedDiffusion
from .segmenter import Segmenter
from .verification import calibrate_segmenter, evaluate_counterfactuals

STAGES = ("autoencoder", "unet", "controlnet", "segmenter")
"""Training stages, in the order they run."""

REQUIRES = {"unet": "autoencoder", "controlnet": "unet"}
MAX_GRAD_NORM = 1.0
LOG_COLUMNS = ("stage", "step", "loss", "lr", "seconds")


def smoke_config(config: DiffusionConfig, steps: int | None = None, subjects: int | None = None) -> DiffusionConfig:
    """A shortened copy of ``config`` for smoke runs: fewer steps and training phantoms.

    Every stage of :data:`STAGES` gets ``steps`` optimizer steps (its batch size, learning
    rate, log and checkpoint cadence are kept) and the cohort ``subjects`` training phantoms;
    the networks and grid are unchanged.

    Parameters
    ----------
    config : DiffusionConfig
        The configuration to shorten (e.g. a preset of
        :func:`~roisynth.imaging.config.get_config`).
    steps : int, default=None
        Steps of every stage (a positive integer); None keeps each stage's own.
    subjects : int, default=None
        ``n_subjects``, the training phantoms (a positive integer); None keeps it.

    Returns
    -------
    DiffusionConfig
        The shortened copy (``config`` itself is frozen and unchanged).

    Examples
    --------
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.training import smoke_config
    >>> config = smoke_config(get_config("64"), steps=2, subjects=8)
    >>> config.n_subjects, config.unet.steps, config.segmenter.steps, config.unet.batch_size, config.shape
    (8, 2, 2, 16, 64)
    """
    if subjects is not None:
        config = config.replace(n_subjects=check_count(subjects, "subjects"))
    if steps is not None:
        steps = check_count(steps, "steps")
        config = config.replace(**{name: dataclasses.replace(getattr(config, name), steps=steps) for name in STAGES})
    return config


def default_n_test(n_subjects: int) -> int:
    """Number of held-out test subjects for a cohort of ``n_subjects`` training subjects.

    max(4, ⌊n / 8⌋): 50 for the 400 subjects of the ``"64"`` preset. :func:`train` makes
    these subjects together with the training ones and never trains on them.

    Parameters
    ----------
    n_subjects : int
        Training subjects (``config.n_subjects``).

    Returns
    -------
    int
        Held-out subjects.

    Examples
    --------
    >>> from roisynth.imaging.training import default_n_test
    >>> [default_n_test(n) for n in (8, 64, 400)]
    [4, 8, 50]
    """
    return max(4, n_subjects // 8)


# -- processes ---------------------------------------------------------------------------
@dataclass
class _Context:
    """This process's rank, the number of processes and the device it trains on."""

    device: torch.device
    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def mean(self, value: torch.Tensor) -> float:
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
            value /= self.world
        return float(value)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def resolve_device(device: str | None) -> torch.device:
    """The torch device a device argument names.

    Parameters
    ----------
    device : {"cpu", "cuda"} or None
        ``"cpu"``, ``"cuda"`` (a ``ValueError`` when CUDA is not available), or None: CUDA when
        available, else the CPU. Any other value is a ``ValueError``.

    Returns
    -------
    torch.device
        ``cpu`` or ``cuda`` (the current CUDA device).

    Examples
    --------
    >>> from roisynth.imaging.training import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device(None).type in ("cpu", "cuda")
    True
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device must be 'cpu', 'cuda' or None (CUDA when available), got 'gpu'
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None (CUDA when available), got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for but CUDA is not available")
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _start(device: str | None) -> _Context:
    """One process, or rank ``RANK`` of ``WORLD_SIZE`` (set by ``torchrun``): NCCL on
    ``cuda:LOCAL_RANK``, gloo on the CPU."""
    target = resolve_device(device)
    cuda = target.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Context(target)
    if cuda:
        target = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(target)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Context(target, dist.get_rank(), dist.get_world_size(), owns)


# -- data ----------------------------------------------------------------------------------
class _Batches:
    """The training cohort's network inputs, held on the device (masks as bool, classes as
    uint8) and handed out as :meth:`PhantomCohort.batch` dictionaries."""

    def __init__(self, cohort: PhantomCohort, device: torch.device, chunk: int = 32):
        parts = [cohort.batch(np.arange(i, min(i + chunk, len(cohort)))) for i in range(0, len(cohort), chunk)]
        join = lambda key, dtype: torch.cat([p[key].to(dtype) for p in parts]).to(device)  # noqa: E731
        self.image, self.condition = join("image", torch.float32), join("condition", torch.float32)
        self.masks, self.labels = join("masks", torch.bool), join("labels", torch.uint8)

    def __len__(self) -> int:
        return len(self.image)

    def __call__(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": self.image[idx], "condition": self.condition[idx],
                "masks": self.masks[idx].float(), "labels": self.labels[idx].long()}


def _cohort(config: DiffusionConfig, output: Path, n_test: int, n_jobs: int, ctx: _Context, log) -> PhantomCohort:
    """The training cohort: made once (rank 0) as ``cohort.npz`` and ``test_cohort.npz``."""
    paths = output / "cohort.npz", output / "test_cohort.npz"
    if ctx.main and not all(p.is_file() for p in paths):
        start = time.perf_counter()
        full = make_cohort(config.n_subjects + n_test, config.shape, random_state=0, n_jobs=n_jobs)
        for part, path in zip(full.split(n_test, random_state=0), paths):
            os.replace(part.save(path.with_name(path.name + ".tmp")), path)
        log(f"made {len(full)} phantoms ({config.shape}³), {n_test} held out for testing "
            f"({time.perf_counter() - start:.1f} s)")
    ctx.barrier()
    return PhantomCohort.load(paths[0])


# -- one stage ------------------------------------------------------------------------------
class _Loss(nn.Module):
    """``loss_fn(batch, generator)`` as a module's forward, so that DDP sees the call."""

    def __init__(self, module: nn.Module, loss_fn: Callable):
        super().__init__()
        self.module, self.loss_fn = module, loss_fn

    def forward(self, batch, generator):
        return self.loss_fn(batch, generator)


@contextmanager
def _only_trainable(module: nn.Module, parameters: Sequence[nn.Parameter]):
    """``requires_grad`` on ``parameters`` only (restored afterwards), ``module`` in train mode."""
    keep = {id(p) for p in parameters}
    before = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in before:
        p.requires_grad_(id(p) in keep)
    module.train()
    try:
        yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)
        module.eval()


def _stage_seed(name: str, rank: int) -> int:
    return int(np.random.SeedSequence([STAGES.index(name), rank]).generate_state(1)[0])


def _rng_state(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _save(obj, path: Path) -> None:
    """torch.save whole or not at all, so an interrupted write leaves the old file."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _write_json(data: dict, path: Path) -> None:
    write_bytes(path, json.dumps(data, indent=1, default=_plain).encode())


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else str(value)


def _trim_log(path: Path, stage: str, step: int) -> None:
    """Drop ``stage``'s log rows after ``step`` (written by an interrupted run)."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["stage"] != stage or int(r["step"]) <= step]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _run_stage(name: str, module: nn.Module, parameters: Sequence[nn.Parameter], loss_fn: Callable,
               stage: StageConfig, *, data: _Batches, ctx: _Context, output: Path, bf16: bool,
               log) -> tuple[float, float]:
    """Train ``parameters`` (of ``module``) for ``stage.steps`` Adam steps of
    ``loss_fn(batch, generator)`` on random minibatches; returns (seconds, last logged loss).

    Each rank draws ``stage.batch_size`` distinct subjects per step (at most the cohort) from its
    own generator on the device, which ``loss_fn`` also uses (e.g. for t and ε). Gradients are
    clipped to norm :data:`MAX_GRAD_NORM`; ``bf16`` runs the forward pass under bfloat16
    autocast. Continues from ``checkpoints/{name}.pt`` when present.
    """
    checkpoint, log_path = output / "checkpoints" / f"{name}.pt", output / "train_log.csv"
    optimizer = torch.optim.Adam(parameters, lr=stage.lr)
    seed = _stage_seed(name, ctx.rank)
    generator = torch.Generator(device=ctx.device).manual_seed(seed)
    torch.manual_seed(seed)
    first, seconds, last_loss = 1, 0.0, float("nan")
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        if len(state["rng"]) != ctx.world:
            raise ValueError(f"{checkpoint} was written by {len(state['rng'])} processes; resume it with as many "
                             f"(this run has {ctx.world})")
        _set_rng_state(state["rng"][ctx.rank], generator, ctx.device)
        first, seconds, last_loss = state["step"] + 1, state["seconds"], state["loss"]
        log(f"{name}: resuming after step {state['step']}")
    if ctx.main:
        _trim_log(log_path, name, first - 1)
    batch_size = min(stage.batch_size, len(data))
    with _only_trainable(module, parameters):
        net = _Loss(module, loss_fn)
        if ctx.world > 1:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        ctx.synchronize()
        start, window, count = time.perf_counter() - seconds, torch.zeros((), device=ctx.device), 0
        for step in range(first, stage.steps + 1):
            idx = torch.randperm(len(data), generator=generator, device=ctx.device)[:batch_size]
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = net(data(idx), generator)
            optimizer.zero_grad(set_to_none=True)
            loss.float().backward()
            nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            optimizer.step()
            window += loss.detach().float()
            count += 1
            if step % stage.log_every == 0 or step == stage.steps:
                last_loss = ctx.mean(window / count)
                window.zero_()
                count = 0
                elapsed = time.perf_counter() - start
                if ctx.main:
                    _append_log(log_path, {"stage": name, "step": step, "loss": f"{last_loss:.6g}",
                                           "lr": f"{stage.lr:g}", "seconds": f"{elapsed:.2f}"})
                log(f"{name} step {step}/{stage.steps}: loss {last_loss:.4f} ({elapsed:.1f} s)")
            if step % stage.checkpoint_every == 0 or step == stage.steps:
                rng = ctx.gather(_rng_state(generator, ctx.device))
                if ctx.main:
                    checkpoint.parent.mkdir(exist_ok=True)
                    _save({"module": module.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                           "seconds": time.perf_counter() - start, "loss": last_loss, "rng": rng}, checkpoint)
        ctx.synchronize()
    return time.perf_counter() - start, last_loss


# -- the pipeline ---------------------------------------------------------------------------
def _progress(output: Path, config: DiffusionConfig, resume: bool, n_test: int | None) -> dict:
    path = output / "progress.json"
    wanted = json.loads(json.dumps(config.to_dict()))
    if not path.is_file():
        n_test = default_n_test(config.n_subjects) if n_test is None else check_count(n_test, "n_test")
        return {"config": wanted, "n_test": n_test, "finished": [], "seconds": {}, "losses": {}}
    if not resume:
        raise ValueError(f"{output} already holds a training run (progress.json); resume it with resume=True "
                         "(--resume) or choose another folder")
    progress = json.loads(path.read_text())
    changed = sorted(k for k in wanted if wanted[k] != progress["config"].get(k))
    if changed:
        raise ValueError(f"{output} was trained with another configuration (differs in {changed}); "
                         "resume with the same settings")
    if n_test is not None and n_test != progress["n_test"]:
        raise ValueError(f"{output} holds out {progress['n_test']} test subjects, not {n_test}")
    return progress


def _check_stages(stages, finished) -> list[str]:
    stages = [stages] if isinstance(stages, str) else list(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise ValueError(f"unknown stages {unknown}; choose from {STAGES}" if unknown else "no stages to train")
    for stage in stages:
        needed = REQUIRES.get(stage)
        if needed and needed not in finished and needed not in stages:
            raise ValueError(f"stage {stage!r} needs a trained {needed!r}: add it to the stages "
                             "(or resume a folder where it is finished)")
    return [s for s in STAGES if s in stages]


def train(config: DiffusionConfig, output, *, stages: Sequence[str] = STAGES, resume: bool = False,
          bf16: bool = False, device: str | None = None, n_test: int | None = None, n_jobs: int = 1,
          log: Callable[[str], None] = print) -> dict:
    """Train the pipeline's ``stages`` of ``config`` into the folder ``output``.

    The cohort of ``config.n_subjects`` + ``n_test`` phantoms (``make_cohort(..., random_state=0)``,
    split with ``random_state=0``) is made once and saved; then each stage runs its Adam steps on
    random minibatches of the training subjects, minimizing

    - ``autoencoder``: L1 + ``kl_weight`` · KL, then the latent scale s = 1 / std(latents);
    - ``unet``: E‖ε - ε_θ(z_t, t, c)‖² at uniform t, with the null condition at rate
      ``condition_dropout``;
    - ``controlnet``: the same loss with the mask channels, UNet and embedding frozen;
    - ``segmenter``: Dice + cross-entropy;

    with gradients clipped to norm :data:`MAX_GRAD_NORM`. See the module docstring for the files
    written, checkpoints, resuming and several processes (``torchrun``).

    Parameters
    ----------
    config : DiffusionConfig
        Sizes and stage settings, e.g. ``get_config("64")``; ``config.n_subjects`` phantoms are
        trained on. A resumed run must use the same configuration (``ValueError`` otherwise).
    output : str or path-like
        Folder (created with its parents) that receives the run.
    stages : str or sequence of str, default=STAGES
        Any of :data:`STAGES`, run in that order; the UNet needs a trained autoencoder, the
        ControlNet a trained UNet, here or earlier in ``output`` (``ValueError`` otherwise).
    resume : bool, default=False
        Continue the run in ``output``: skip finished stages, restart an unfinished one from its
        last checkpoint. Without it ``output`` must not hold a run already (``ValueError``).
    bf16 : bool, default=False
        bfloat16 autocast for the forward passes (CUDA or CPU).
    device : {"cpu", "cuda"} or None, default=None
        As in :func:`resolve_device` (None: CUDA when available); under ``torchrun`` rank r
        uses ``cuda:LOCAL_RANK``.
    n_test : int, default=None
        Held-out subjects, made with the training ones and written to ``test_cohort.npz``;
        None: :func:`default_n_test` for a new run, the folder's own when resuming.
    n_jobs : int, default=1
        joblib processes making the phantom cohort.
    log : callable, default=print
        Called with each progress line (on rank 0 only).

    Returns
    -------
    dict
        ``"seconds"`` ({stage: training seconds}) and ``"losses"`` ({stage: last logged loss})
        over every finished stage of the folder (this run's and earlier ones), ``"device"``
        (its name), ``"world_size"`` (processes) and ``"output"`` (the folder, as a string).

    Examples
    --------
    One step per stage on two 16³ phantoms (one held out), about a second on one CPU core:

    >>> import os, shutil, tempfile
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.training import smoke_config, train
    >>> folder = tempfile.mkdtemp()
    >>> config = smoke_config(get_config("16"), steps=1, subjects=2)
    >>> result = train(config, folder, n_test=1, device="cpu", log=lambda line: None)
    >>> list(result["losses"]), result["world_size"]
    (['autoencoder', 'unet', 'controlnet', 'segmenter'], 1)
    >>> sorted(os.listdir(folder))  # doctest: +NORMALIZE_WHITESPACE
    ['checkpoints', 'cohort.npz', 'model.pt', 'progress.json', 'segmenter', 'test_cohort.npz',
     'timings.json', 'train_log.csv']
    >>> shutil.rmtree(folder)
    """
    output = Path(output)
    ctx = _start(device)
    say = log if ctx.main else (lambda _: None)
    try:
        progress = _progress(output, config, resume, n_test)
        stages = _check_stages(stages, progress["finished"])
        ctx.barrier()
        if ctx.main:
            output.mkdir(parents=True, exist_ok=True)
            _write_json(progress, output / "progress.json")
        data = _Batches(_cohort(config, output, progress["n_test"], n_jobs, ctx, say), ctx.device)
        torch.manual_seed(0)
        model = (MaskGuidedDiffusion.load(output / "model.pt") if (output / "model.pt").is_file()
                 else MaskGuidedDiffusion(config)).to(ctx.device)
        for name in stages:
            if name in progress["finished"]:
                say(f"{name}: finished earlier, skipped")
                continue
            module, parameters, loss_fn, filename = _stage(name, model, config, ctx.device)
            if name == "controlnet" and not (output / "checkpoints" / "controlnet.pt").is_file():
                model.init_controlnet()
            seconds, loss = _run_stage(name, module, parameters, loss_fn, getattr(config, name), data=data,
                                       ctx=ctx, output=output, bf16=bf16, log=say)
            if name == "autoencoder":
                say(f"latent scale factor {model.fit_scale_factor(data.image):.4g}")
            progress["finished"].append(name)
            progress["seconds"][name], progress["losses"][name] = seconds, loss
            if ctx.main:
                module.save(output / filename)
                _write_json(progress, output / "progress.json")
                _write_json({"config": config.name, "device": _device_name(ctx.device), "world_size": ctx.world,
                             "bf16": bf16, "seconds": progress["seconds"],
                             "total_seconds": sum(progress["seconds"].values())}, output / "timings.json")
            ctx.barrier()
        return {"seconds": dict(progress["seconds"]), "losses": dict(progress["losses"]),
                "device": _device_name(ctx.device), "world_size": ctx.world, "output": str(output)}
    finally:
        ctx.close()


def _stage(name: str, model: MaskGuidedDiffusion, config: DiffusionConfig, device: torch.device):
    """(module, its parameters trained in stage ``name``, loss(batch, generator), file to save it to)."""
    if name == "segmenter":
        torch.manual_seed(0)
        segmenter = Segmenter(config).to(device)
        return segmenter, list(segmenter.parameters()), lambda batch, _: segmenter.loss(batch), "segmenter"
    if name == "autoencoder":
        loss = lambda batch, _: model.autoencoder_loss(batch["image"])[0]  # noqa: E731
    else:
        masks = name == "controlnet"
        loss = lambda batch, g: model.denoising_loss(  # noqa: E731
            batch["image"], batch["condition"], batch["masks"] if masks else None, generator=g)
    return model, model.trainable(name), loss, "model.pt"


# -- evaluation ----------------------------------------------------------------------------
def load_run(output, device: str | None = None) -> tuple[MaskGuidedDiffusion, Segmenter, PhantomCohort]:
    """The trained model, segmenter and held-out cohort of a :func:`train` folder.

    Parameters
    ----------
    output : str or path-like
        A folder written by :func:`train` with every stage of :data:`STAGES` finished: a
        folder without ``progress.json`` is a ``FileNotFoundError``, one with unfinished stages
        a ``ValueError``.
    device : {"cpu", "cuda"} or None, default=None
        Where the networks go, as in :func:`resolve_device`.

    Returns
    -------
    model : MaskGuidedDiffusion
        From ``model.pt``, in eval mode.
    segmenter : Segmenter
        From ``segmenter/``, in eval mode.
    test : PhantomCohort
        The held-out subjects (``test_cohort.npz``), never trained on.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.training import load_run, smoke_config, train
    >>> folder = tempfile.mkdtemp()
    >>> _ = train(smoke_config(get_config("16"), steps=1, subjects=2), folder, n_test=1, device="cpu",
    ...           log=lambda line: None)
    >>> model, segmenter, test = load_run(folder, device="cpu")
    >>> model.config.name, model.training, segmenter.training, len(test)
    ('16', False, False, 1)
    >>> shutil.rmtree(folder)
    """
    output = Path(output)
    if not (output / "progress.json").is_file():
        raise FileNotFoundError(f"{output} is not a training folder (no progress.json); "
                                "make one with `roisynth imaging train -o DIR`")
    missing = [s for s in STAGES if s not in json.loads((output / "progress.json").read_text())["finished"]]
    if missing:
        raise ValueError(f"{output}: stages {missing} are not trained yet (continue with --resume)")
    target = resolve_device(device)
    return (MaskGuidedDiffusion.load(output / "model.pt").to(target),
            Segmenter.load(output / "segmenter").to(target).eval(), PhantomCohort.load(output / "test_cohort.npz"))


def evaluate(output, *, n_subjects: int | None = None, steps: int | None = None, change: float = -0.15,
             calibration_subjects: int = 8, device: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Score counterfactuals of a :func:`train` folder's held-out subjects.

    Loads the run (:func:`load_run`) and calls
    :func:`~roisynth.imaging.verification.evaluate_counterfactuals` on the first
    ``n_subjects`` held-out subjects: each of the hippocampi and amygdalae edited to
    (1 + ``change``) × its volume, diagnosis set to AD. The segmenter's measured volume changes
    are divided by its calibration slopes k (m ≈ k t), fitted on ``calibration_subjects``
    ground-truth phantom pairs (:func:`~roisynth.imaging.verification.calibrate_segmenter`,
    ``random_state=1``); a ROI that no pair changed takes the pooled slope. Writes
    ``evaluation.json`` (the summary and these settings) and ``evaluation_subjects.csv`` (the
    table) into ``output``.

    The ROIs must exist in the phantoms: not at 16³, where the hippocampi and amygdalae vanish
    (use the ``"32"`` preset for smoke runs).

    Parameters
    ----------
    output : str or path-like
        A finished :func:`train` folder.
    n_subjects : int, default=None
        Held-out subjects to evaluate, the first ones (at most all); None: all.
    steps : int, default=None
        DDIM steps of inversion and sampling; None: ``config.ddim_steps``.
    change : float, default=-0.15
        Relative volume change of each edited ROI.
    calibration_subjects : int, default=8
        Phantom pairs for the calibration; 0: uncalibrated (k = 1).
    device : {"cpu", "cuda"} or None, default=None
        As in :func:`resolve_device`.

    Returns
    -------
    per_subject : DataFrame
        One row per subject, the columns of ``evaluate_counterfactuals``.
    summary : dict
        ``evaluate_counterfactuals``' summary, with ``"config"`` (preset name), ``"steps"``,
        ``"change"`` and ``"calibration"`` ({ROI: slope, "pooled": slope}, or None).

    Examples
    --------
    A one-step smoke run of the ``"32"`` preset (two training phantoms, one held out) and its
    evaluation, a few seconds on one CPU core; the scores of so short a training mean nothing:

    >>> import shutil, tempfile
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.training import evaluate, smoke_config, train
    >>> folder = tempfile.mkdtemp()
    >>> _ = train(smoke_config(get_config("32"), steps=1, subjects=2), folder, n_test=1, device="cpu",
    ...           log=lambda line: None)
    >>> table, summary = evaluate(folder, steps=1, calibration_subjects=0, device="cpu")
    >>> len(table), summary["n_subjects"], summary["steps"], summary["calibration"]
    (1, 1, 1, None)
    >>> list(table.columns[:3])
    ['subject', 'Hippocampus_L_intended', 'Hippocampus_L_measured']
    >>> shutil.rmtree(folder)
    """
    model, segmenter, test = load_run(output, device)
    calibration = None
    if calibration_subjects:
        slopes = calibrate_segmenter(segmenter, model.config.shape, n=calibration_subjects, change=change,
                                     random_state=1)
        calibration = slopes.where(np.isfinite(slopes), slopes["pooled"])
    n = len(test) if n_subjects is None else min(n_subjects, len(test))
    per_subject, summary = evaluate_counterfactuals(model, segmenter, test, change=change, calibration=calibration,
                                                    n_subjects=n, steps=steps)
    summary = {"config": model.config.name, "steps": steps or model.config.ddim_steps, "change": change,
               "calibration": None if calibration is None else calibration.to_dict(), **summary}
    per_subject.to_csv(Path(output) / "evaluation_subjects.csv", index=False)
    _write_json(summary, Path(output) / "evaluation.json")
    return per_subject, summary


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()})"
