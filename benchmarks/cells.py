"""Hand-written cells against torch's kernels: ms per training step, side by side in one run.

    python benchmarks/cells.py --data-dir ../shared/corpora            # 5 rounds x 5 steps per model

Two jobs, each at its preset: names classification (bi-GRU 128 + n-grams, batch 64) and the Tang LM
at the textbook size (embed 128, LSTM 2x256, batch 64), with ``--cell torch`` and ``--cell custom``
(cells.py). Within a round the two take turns on the same batches, so a slow spell on a shared
machine slows both; the script prints the median ms/step of each and the ratio per round.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from poetgen.config import preset
from poetgen.data import batch_order
from poetgen.train import Trainer


def trainer(corpus: str, task: str, cell: str, data_dir: str, out: Path, **size) -> Trainer:
    cfg = preset(corpus, task)
    cfg = replace(cfg, data_dir=data_dir, threads=torch.get_num_threads(), model=replace(cfg.model, cell=cell, **size))
    return Trainer(cfg, out)


def timed(tr: Trainer, batches) -> float:
    start = time.perf_counter()
    for idx in batches:
        tr.train_step(idx)
    return time.perf_counter() - start


def job(name: str, corpus: str, task: str, args, **size) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pair = {cell: trainer(corpus, task, cell, args.data_dir, Path(tmp) / cell, **size)
                for cell in ("torch", "custom")}
        first = pair["torch"]
        order = batch_order([len(e.ids) for e in first.train_set], first.cfg.batch_size, 0, 0)
        batches = list(itertools.islice(itertools.cycle(order), (args.rounds + 1) * args.steps))
        for tr in pair.values():
            timed(tr, batches[: args.steps])  # warm-up
        ms = {cell: [] for cell in pair}
        for r in range(1, args.rounds + 1):
            chunk = batches[r * args.steps : (r + 1) * args.steps]
            for cell, tr in pair.items():
                ms[cell].append(1000 * timed(tr, chunk) / args.steps)
        ratios = [c / t for c, t in zip(ms["custom"], ms["torch"], strict=True)]
        print(f"{name}: torch {statistics.median(ms['torch']):.1f} ms/step, custom "
              f"{statistics.median(ms['custom']):.1f} ms/step; custom/torch {statistics.median(ratios):.2f}x "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("POETGEN_DATA", "../shared/corpora"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds x {args.steps} steps per model, "
          f"load average {os.getloadavg()[0]:.2f}")
    job("names classification (bi-GRU 128)", "names", "classify", args)
    job("Tang LM (embed 128, LSTM 2x256)", "tang", "lm", args, embed=128, hidden=256)


if __name__ == "__main__":
    main()
