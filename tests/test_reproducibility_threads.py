"""Seeded fits must give the same result when two run at once in threads of one process (issue 17, item 6).

Torch's CPU generator, thread count and denormal mode are process-wide: ``seeded``,
``threads`` and ``flush_denormal`` in roisynth/nn/training.py hold one process-wide re-entrant
lock, so concurrent fits in one process run one at a time and each gets the same draws as when
run alone.
"""

from __future__ import annotations

import threading

from roisynth import ContrastiveVAE, datasets


def _fit_and_sample(cn, ad, seed: int):
    model = ContrastiveVAE(epochs=4, verbose=False, random_state=seed).fit(cn, ad)
    return model.sample(50, random_state=0)


def test_seeded_fits_are_identical_when_run_in_threads():
    cohort = datasets.load_example()
    rois = datasets.roi_names()[:8]
    cn = cohort.loc[cohort.diagnosis == "CN", rois].iloc[:300]
    ad = cohort.loc[cohort.diagnosis == "AD", rois].iloc[:300]
    expected = {seed: _fit_and_sample(cn, ad, seed) for seed in (0, 1)}
    for _ in range(3):
        results, start = {}, threading.Barrier(2)

        def run(seed, results=results, start=start):
            start.wait()
            results[seed] = _fit_and_sample(cn, ad, seed)

        threads = [threading.Thread(target=run, args=(seed,)) for seed in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for seed in (0, 1):
            assert results[seed].equals(expected[seed]), f"seed {seed}: the concurrent fit differs"
