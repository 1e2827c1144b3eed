"""Speed of the ContrastiveVAE against the public MM-cVAE reference, sampling, streaming and scaling (issue 18).

Run:  bash benchmarks/envs/make_mmcvae_env.sh GIT_DIR      # once: the reference's environment
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_speed.py [--repeats 2] [--pairs 10000000] [--no-record]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_speed.py --only sampling,streaming   # those, printed

Prints and records in benchmarks/RESULTS.md (section "Speed (issue 18)"):
1. fit on the semi-synthetic benchmark data (1050 subjects per cohort, 139 ROIs, one thread): our
   ContrastiveVAE (defaults: at most 500 epochs, early stopping) against MM-cVAE (Weinberger et al.
   2022, github.com/suinleelab/MM-cVAE, run unchanged from its repository by its own PyTorch Lightning
   ``training_step``, in benchmarks/envs/.mmcvae-venv, 500 epochs, batch 128, latent sizes 5 + 5, the
   penalties of its run_experiment.py) on the same rows standardized as ours are internally. The two
   sides alternate, ``--repeats`` times, best of each; each side's imports are paid before its clock;
2. ``sample_paired(1_000_000)`` on one thread (best of 5, wall and CPU seconds), with the CPU cost of its
   parts, and on two (``n_threads=2``, wall seconds);
3. ``roisynth.io.write_samples`` of ``--pairs`` pairs to Parquet in a fresh process under
   ``/usr/bin/time -v``, drawn on one and on two threads: pairs per second, user and system CPU seconds
   and peak resident memory, on disk and (``--memory-pairs``) to a file in /dev/shm, the rate without
   the disk; and the same bytes written bare (no drawing, no Parquet), the ceiling of the machine's writes;
4. fit time of the ContrastiveVAE at 500, 5 000 and 50 000 subjects in all (half per cohort).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE_PYTHON = HERE / "envs" / ".mmcvae-venv" / "bin" / "python"
REFERENCE_SOURCE = HERE / "envs" / ".mmcvae-src"
REFERENCE_EPOCHS = 500


def reference_fit(data_path: str, epochs: int) -> None:
    """Run inside the reference's venv: train MM-cVAE on the saved rows, print the seconds as JSON."""
    import torch

    torch.set_num_threads(1)
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    sys.path.insert(0, str(REFERENCE_SOURCE))
    from models.MM_cVAE import MM_cVAE

    saved = np.load(data_path)
    x = torch.from_numpy(np.concatenate([saved["background"], saved["target"]]))
    labels = torch.cat([torch.zeros(len(saved["background"])), torch.ones(len(saved["target"]))])

    def trainer_and_model(max_epochs: int):
        model = MM_cVAE(input_dim=x.shape[1], background_latent_size=5, salient_latent_size=5,
                        background_disentanglement_penalty=10e3, salient_disentanglement_penalty=10e2)
        trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        return trainer, model

    loader = DataLoader(TensorDataset(x, labels), batch_size=128, shuffle=True)
    pl.seed_everything(0, verbose=False)
    trainer, model = trainer_and_model(1)  # warm-up: Lightning's lazy imports and set-up
    trainer.fit(model, loader)
    trainer, model = trainer_and_model(epochs)
    start = time.perf_counter()
    trainer.fit(model, loader)
    print(json.dumps({"seconds": time.perf_counter() - start, "epochs": trainer.current_epoch}))


def training_rows(n_per_cohort: int, n_simulated: int = 3000, seed: int = 0):
    """``n_per_cohort`` rows of each cohort of the semi-synthetic data (ROI columns), as the fidelity
    benchmark draws them."""
    from roisynth.evaluation import semisynthetic_data

    data = semisynthetic_data(n=n_simulated)
    rng = np.random.default_rng(seed)
    return [table[data.rois].iloc[rng.permutation(len(table))[:n_per_cohort]] for table in (data.background,
                                                                                                data.target)]


def fit_comparison(repeats: int) -> tuple[dict, object]:
    """Best-of-``repeats`` fit seconds of both sides, alternating; returns the figures and our last model."""
    import warnings

    from roisynth import ContrastiveVAE

    background, target = training_rows(1050)
    mean, scale = background.to_numpy().mean(0), background.to_numpy().std(0, ddof=1)
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "rows.npz")
        np.savez(data_path, **{name: ((t.to_numpy() - mean) / scale).astype(np.float32)
                               for name, t in (("background", background), ("target", target))})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ContrastiveVAE(epochs=2, verbose=False, random_state=0).fit(background, target)  # imports paid
        ours, theirs = [], []
        for _ in range(repeats):
            model = ContrastiveVAE(verbose=False, random_state=0)
            start = time.perf_counter()
            model.fit(background, target)
            ours.append(time.perf_counter() - start)
            run = subprocess.run([str(REFERENCE_PYTHON), __file__, "--reference-fit", data_path, str(REFERENCE_EPOCHS)],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
            theirs.append(json.loads(run.stdout.strip().splitlines()[-1])["seconds"])
            print(f"fit: ours {ours[-1]:.1f} s ({model.n_epochs_} epochs kept, {len(model.history_.loss)} run), "
                  f"MM-cVAE {theirs[-1]:.1f} s", flush=True)
    figures = {"ours_s": min(ours), "reference_s": min(theirs), "ratio": min(theirs) / min(ours),
               "ours_epochs_run": len(model.history_.loss), "ours_all_s": ours, "reference_all_s": theirs}
    return figures, model


def sampling(model, n: int = 1_000_000, repeats: int = 5) -> dict:
    """``sample_paired(n)`` on one thread, best of ``repeats`` (wall and CPU seconds), the same with
    ``n_threads=2`` (wall seconds; the same rows), and its parts
    timed alone on the same machine (CPU seconds, for the same n rows in the sampler's chunks):
    the codes, the n × p normal draws, the noise εA (BLAS trmm, A lower-triangular p × p), the
    last layer added into both outputs (two BLAS gemm, β = 1) and the writes of εA + bias into
    two fresh n × p arrays (their page faults included)."""
    import numpy as np
    import torch
    from scipy.linalg.blas import sgemm, strmm

    from roisynth.nn.decoder import blas_threads
    from roisynth.synthesizers._neural import _CHUNK

    wall, cpu, two = [], [], []
    for _ in range(repeats):
        model.set_params(n_threads=1)
        start, start_cpu = time.perf_counter(), time.process_time()
        model.sample_paired(n)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        model.set_params(n_threads=2)
        start = time.perf_counter()
        model.sample_paired(n)
        two.append(time.perf_counter() - start)
    model.set_params(n_threads=1)
    p, hidden = model.n_features_in_, model.n_hidden
    generator = torch.Generator().manual_seed(0)
    eps = torch.empty(_CHUNK, p)
    noise = np.random.default_rng(0).standard_normal((_CHUNK, p)).astype(np.float32)
    with torch.no_grad():
        factor = np.asfortranarray(model.module_.decoder.noise_factor().numpy())
    h = np.random.default_rng(1).standard_normal((_CHUNK, hidden)).astype(np.float32)
    weight = np.random.default_rng(2).standard_normal((hidden, p)).astype(np.float32)
    out, bias = np.zeros((_CHUNK, p), dtype=np.float32), np.zeros(p, dtype=np.float32)

    def seconds(step) -> float:
        with torch.no_grad(), blas_threads(1):
            start = time.process_time()
            for i in range(0, n, _CHUNK):
                step(i)
            return time.process_time() - start

    def fresh_writes(i: int) -> None:
        if i == 0:
            fresh[:] = [np.empty((n, p), dtype=np.float32) for _ in range(2)]
        for array in fresh:
            rows = array[i:i + _CHUNK]
            np.add(noise[:len(rows)], bias, out=rows)

    fresh = []
    torch.set_num_threads(1)
    parts = {
        "codes (mixture draws)": seconds(lambda i: model.target_latents_.sample(_CHUNK, generator)),
        "normal draws (torch.randn)": seconds(lambda i: torch.randn(_CHUNK, p, generator=generator, out=eps)),
        "noise εA (trmm, p × p triangular)": seconds(
            lambda i: strmm(1.0, factor, noise.T, side=0, lower=1, trans_a=1, overwrite_b=0)),
        "last layer into both outputs (2 gemm, hidden × p)": 2 * seconds(
            lambda i: sgemm(1.0, weight.T, h.T, beta=1.0, c=out.T, overwrite_c=1)),
        "εA + bias into two fresh n × p arrays": seconds(fresh_writes),
    }
    return {"seconds": min(wall), "all_s": wall, "cpu_s": min(cpu), "all_cpu_s": cpu, "two_threads_s": min(two),
            "all_two_threads_s": two, "parts": parts}


def streaming(model, pairs: int, directory: str | None = None, code: str | None = None, threads: int = 1) -> dict:
    """``write_samples(model, pairs, path)`` in a fresh process under /usr/bin/time -v, the file in
    ``directory`` (None: the temporary directory, on disk), roisynth imported from ``code`` (None:
    this checkout), the model's chunks drawn on ``threads`` threads (``n_threads``)."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=directory) as target:
        model_path, out = os.path.join(tmp, "m.roisynth"), os.path.join(target, "pairs.parquet")
        model.save(model_path)
        script = ("import json, time, torch; torch.set_num_threads(1); import roisynth; from roisynth.io import "
                  f"write_samples; m = roisynth.load({model_path!r}).set_params(n_threads={threads}); "
                  "s = time.perf_counter(); "
                  f"rows = write_samples(m, {pairs}, {out!r}, random_state=0); "
                  "print(json.dumps({'seconds': time.perf_counter() - s, 'rows': rows}))")
        run = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, env=_environment(code), cwd=tmp)  # not this checkout's folder: code's roisynth
        inner = json.loads(run.stdout.strip().splitlines()[-1])
        field = lambda name: float(re.search(rf"{name}: ([\d.]+)", run.stderr).group(1))  # noqa: E731
        size = os.path.getsize(out)
    return {"pairs": pairs, "seconds": inner["seconds"], "pairs_per_s": pairs / inner["seconds"],
            "peak_MB": field(r"Maximum resident set size \(kbytes\)") / 1024, "file_GB": size / 1e9,
            "user_s": field(r"User time \(seconds\)"), "system_s": field(r"System time \(seconds\)"),
            "where": directory or tempfile.gettempdir(), "threads": threads}


def bare_writes(pairs: int, p: int, directory: str | None = None) -> dict:
    """The ceiling the machine's file writes put on streaming: ``pairs`` pairs' float columns
    (2 × pairs × p float32) written to a fresh file in ``directory`` (None: the temporary directory)
    as one 73 MB buffer (a block's worth) again and again, with no drawing, no Parquet and no
    second thread; the same bytes as the Parquet file's columns."""
    from roisynth.io import BLOCK

    buffer = np.random.default_rng(0).standard_normal(2 * BLOCK * p).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=directory) as target:
        start, start_cpu = time.perf_counter(), time.process_time()
        with open(os.path.join(target, "bare.bin"), "wb", buffering=0) as out:
            for first in range(0, pairs, BLOCK):
                out.write(memoryview(buffer)[:2 * min(BLOCK, pairs - first) * p])
        seconds = time.perf_counter() - start
        cpu = time.process_time() - start_cpu
    return {"pairs": pairs, "seconds": seconds, "cpu_s": cpu, "GB_per_s": 8 * pairs * p / seconds / 1e9,
            "pairs_per_s": pairs / seconds, "where": directory or tempfile.gettempdir()}


def _environment(code: str | None) -> dict:
    """One thread, and roisynth imported from ``code`` (a folder holding another revision's package) if given."""
    return {**os.environ, "OMP_NUM_THREADS": "1"} | ({"PYTHONPATH": code} if code else {})


def paired_seconds(model, code: str | None, n: int = 1_000_000, repeats: int = 5) -> dict:
    """Wall and CPU seconds of ``sample_paired(n)`` (one thread, ``repeats`` calls) in a fresh process
    importing roisynth from ``code`` (None: this checkout)."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "m.roisynth")
        model.save(model_path)
        script = f"""import json, time, torch
torch.set_num_threads(1)
import roisynth
m = roisynth.load({model_path!r}).set_params(n_threads=1)
wall, cpu = [], []
for _ in range({repeats}):
    s, c = time.perf_counter(), time.process_time()
    m.sample_paired({n})
    wall.append(time.perf_counter() - s)
    cpu.append(time.process_time() - c)
print(json.dumps({{"wall": wall, "cpu": cpu}}))"""
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env=_environment(code), cwd=tmp)
    return json.loads(run.stdout.strip().splitlines()[-1])


def before_and_after(model, revision: str, pairs: int, rounds: int = 2) -> dict:
    """``sample_paired(1M)`` and streaming ``pairs`` pairs to disk with the roisynth of git ``revision``
    and with this checkout, alternating in one run (``rounds`` sampling processes each, one stream each)."""
    with tempfile.TemporaryDirectory() as old:
        subprocess.run(f"git -C {HERE.parent} archive {revision} roisynth | tar -x -C {old}", shell=True, check=True)
        sides = {"before": old, "after": None}
        sampled = {side: {"wall": [], "cpu": []} for side in sides}
        for _ in range(rounds):
            for side, code in sides.items():
                times = paired_seconds(model, code)
                for key in ("wall", "cpu"):
                    sampled[side][key] += times[key]
                print(side, "sample_paired(1M)", times, flush=True)
        streamed = {}
        for side, code in sides.items():
            streamed[side] = streaming(model, pairs, code=code)
            print(side, streamed[side], flush=True)
    return {"revision": revision, "sampled": sampled, "streamed": streamed}


def scaling(sizes=(500, 5000, 50_000)) -> list[dict]:
    """Fit seconds of the default ContrastiveVAE on ``n`` semi-synthetic subjects in all (n/2 per cohort)."""
    import warnings

    from roisynth import ContrastiveVAE
    from roisynth.evaluation import semisynthetic_data

    rows = []
    for n in sizes:
        data = semisynthetic_data(n=max(n, 3000))
        background, target = (t[data.rois].iloc[: n // 2] for t in (data.background, data.target))
        model = ContrastiveVAE(verbose=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            model.fit(background, target)
        rows.append({"subjects (all)": n, "per cohort": n // 2, "fit (s)": time.perf_counter() - start,
                     "epochs run": len(model.history_.loss), "epoch kept": model.n_epochs_})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating fits of each side (best kept)")
    parser.add_argument("--pairs", type=int, default=10_000_000, help="pairs streamed to Parquet on disk")
    parser.add_argument("--memory-pairs", type=int, default=2_000_000,
                        help="pairs streamed to a file in /dev/shm (memory), if any: the rate without the disk")
    parser.add_argument("--only", default=None, help="comma-separated parts among fit, sampling, streaming, scaling: "
                        "run these only (the model of the others is fitted with the defaults), print, record nothing")
    parser.add_argument("--baseline", default=None, metavar="REV", help="also time sampling and streaming with the "
                        "roisynth of this git revision, alternating with this checkout (before/after, one machine)")
    parser.add_argument("--no-record", action="store_true", help="print only, do not write RESULTS.md")
    parser.add_argument("--reference-fit", nargs=2, metavar=("NPZ", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_fit:
        reference_fit(args.reference_fit[0], int(args.reference_fit[1]))
        return
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    parts_run = {"fit", "sampling", "streaming", "scaling"} if args.only is None else set(args.only.split(","))
    load_start = os.getloadavg()[0]
    if "fit" in parts_run:
        fit, model = fit_comparison(args.repeats)
    else:
        from roisynth import ContrastiveVAE

        model = ContrastiveVAE(verbose=False, random_state=0).fit(*training_rows(1050))
    if "sampling" in parts_run:
        sample = sampling(model)
        print(sample, flush=True)
    if "streaming" in parts_run:
        places = [(None, args.pairs)] + ([("/dev/shm", args.memory_pairs)] if os.path.isdir("/dev/shm") else [])
        streams = []
        for directory, pairs in places:
            for threads in (1, 2):
                streams.append(streaming(model, pairs, directory, threads=threads))
                print(streams[-1], flush=True)
            streams.append(bare_writes(pairs, model.n_features_in_, directory))
            print(streams[-1], flush=True)
    compared = before_and_after(model, args.baseline, args.pairs) if args.baseline else None
    if "scaling" in parts_run:
        scale = pd.DataFrame(scaling()).set_index("subjects (all)")
    if args.only is not None:
        return
    parts = pd.Series(sample["parts"], name="CPU seconds alone").to_frame()
    load = os.getloadavg()[0]
    stream_rows = [{
        "where": "disk" if s["where"] != "/dev/shm" else "/dev/shm (memory)", "pairs": f"{s['pairs']:,}",
        "what": (f"write_samples, n_threads={s['threads']}" if "threads" in s
                 else "bare writes of the same bytes (no drawing, no Parquet)"),
        "million pairs/s": s["pairs_per_s"] / 1e6, "seconds": s["seconds"],
        "CPU s (user + system)": s["user_s"] + s["system_s"] if "threads" in s else s["cpu_s"],
        "peak resident MB": s.get("peak_MB", float("nan")), "file GB": s.get("file_GB", float("nan")),
    } for s in streams]
    streamed = pd.DataFrame(stream_rows)
    streamed = streamed.astype(object).where(streamed.notna(), None)  # bare writes have no file or peak: "–"
    on_disk = [s for s in streams if s["where"] != "/dev/shm"]
    per_million = min((s["user_s"] + s["system_s"]) / (s["pairs"] / 1e6) for s in on_disk if "threads" in s)
    bare_per_million = next(s["cpu_s"] / (s["pairs"] / 1e6) for s in on_disk if "threads" not in s)
    comparison = ""
    if compared is not None:
        s, t = compared["sampled"], compared["streamed"]
        rows = [("sample_paired(1M), best wall s", min(s["before"]["wall"]), min(s["after"]["wall"])),
                ("sample_paired(1M), best CPU s", min(s["before"]["cpu"]), min(s["after"]["cpu"])),
                (f"{args.pairs:,} pairs to Parquet on disk, million pairs/s", t["before"]["pairs_per_s"] / 1e6,
                 t["after"]["pairs_per_s"] / 1e6),
                ("the same, CPU s (user + system)", t["before"]["user_s"] + t["before"]["system_s"],
                 t["after"]["user_s"] + t["after"]["system_s"]),
                ("the same, peak resident MB", t["before"]["peak_MB"], t["after"]["peak_MB"])]
        table = pd.DataFrame(rows, columns=["", f"before ({compared['revision']})", "after"]).set_index("")
        comparison = f"""
### Before and after, alternating in this run (`--baseline {compared['revision']}`)
The roisynth of `{compared['revision']}` and this checkout on the same machine at the same time, in fresh processes
({len(s['before']['wall'])} `sample_paired` calls each, best kept; one stream each). Wall seconds follow the load of
the other users' jobs on the 2 cores; the CPU seconds of the process are the steadier comparison:

{table.to_markdown(floatfmt='.2f')}
"""
    body = f"""## Speed (issue 18, `benchmarks/bench_speed.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()} ({os.cpu_count()} cores
shared with other users: load average {load_start:.1f} at the start, {load:.1f} at the end, so absolute seconds are
noisy; the two sides of each comparison alternate in one run), one torch thread, torch {torch.__version__},
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_speed.py --repeats {args.repeats} --pairs {args.pairs}{
' --baseline ' + args.baseline if args.baseline else ''}`.

### Fit: ContrastiveVAE against the MM-cVAE reference (2 × 1050 × 139 semi-synthetic rows)
MM-cVAE: its repository's `MM_cVAE` and Lightning `training_step`, unchanged, {REFERENCE_EPOCHS} epochs (it has no
early stopping), batch 128, 5 + 5 latents. Ours: defaults (at most 500 epochs, early stopping on 15% held out;
{fit['ours_epochs_run']} epochs run). Best of {args.repeats} alternating runs each.

| | seconds | all runs |
|:--|--:|:--|
| ContrastiveVAE | {fit['ours_s']:.1f} | {', '.join(f'{s:.1f}' for s in fit['ours_all_s'])} |
| MM-cVAE (reference) | {fit['reference_s']:.1f} | {', '.join(f'{s:.1f}' for s in fit['reference_all_s'])} |
| **ratio** | **{fit['ratio']:.1f}×** (target ≥ 10×) | |

### Sampling 1,000,000 pairs (`sample_paired`, 2 × 10⁶ × 139 float32)
One thread, best of 5: **{sample['seconds']:.2f} s** wall, {sample['cpu_s']:.2f} s CPU (target ≤ 1 s; wall
{', '.join(f'{s:.2f}' for s in sample['all_s'])}; CPU {', '.join(f'{s:.2f}' for s in sample['all_cpu_s'])}).
With `n_threads=2` (the same rows): **{sample['two_threads_s']:.2f} s** wall (best of 5;
{', '.join(f'{s:.2f}' for s in sample['all_two_threads_s'])}).
Its parts timed alone on one thread for the same rows (CPU seconds; the first layer, the hidden activations
and Python make the rest):

{parts.to_markdown(floatfmt='.2f')}

### Streaming pairs to Parquet (`roisynth.io.write_samples`, fresh process, `/usr/bin/time -v`)
Targets: 10 million pairs at ≥ 1 million pairs per second in ≤ 1536 MB. A second thread writes each block
while the next is drawn, on `n_threads` threads. The bare writes, the same bytes written from one buffer
with nothing else, are the ceiling this machine's file writes put on any writer (CPU s: this process's).

{streamed.to_markdown(index=False, floatfmt='.2f', missingval='–')}

Per million pairs, the stream to disk costs {per_million:.1f} CPU seconds (imports included), of which the
bare writes of its bytes alone cost {bare_per_million:.1f}: a million pairs per second would keep
{per_million:.1f} cores busy, and this machine has {os.cpu_count()}.
{comparison}
### Scaling: ContrastiveVAE fit time (defaults, one thread; subjects in all, half per cohort)

{scale.to_markdown(floatfmt='.1f')}
"""
    print(body)
    if not args.no_record:
        sys.path.insert(0, str(HERE))
        from _results import record

        record("Speed (issue 18)", body)


if __name__ == "__main__":
    main()
