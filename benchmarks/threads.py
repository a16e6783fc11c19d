"""Torch threads for training: steps/s of a short LSTM training with 1 and with 2 threads, on a
quiet machine and with a second training process running beside it.

    python benchmarks/threads.py --data-dir ../shared/corpora          # 3 rounds x 10 s per measurement

The job is the lab's nn.LSTM classifier (names, one layer of 128 units, batch 64). Each
measurement is a fresh process (``--child N``) that builds the trainer, takes a few warm-up steps
and then counts training steps for ``--seconds``; "loaded" measurements run while a neighbour — the
same training with ``--neighbour-threads`` threads, in its own process — trains beside them. Rounds
interleave the four cases (and alternate which thread count goes first), so a drift in the
machine's speed lands on all of them; the script prints every round, the medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

CASES = ("quiet", "loaded")


def child(threads: int, seconds: float, data_dir: str | None) -> None:
    """Train for ``seconds`` after a short warm-up; print one JSON line (steps, seconds)."""
    from poetgen.data import batch_order
    from poetgen.lab.session import classifier_config
    from poetgen.train import Trainer

    cfg = classifier_config()
    cfg = replace(cfg, data_dir=data_dir, threads=threads, model=replace(cfg.model, model="lstm"))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        order = batch_order([len(e.ids) for e in trainer.train_set], cfg.batch_size, 0, 0)
        for idx in order[:5]:  # warm-up: the first steps allocate
            trainer.train_step(idx)
        print(json.dumps({"event": "training"}), flush=True)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            trainer.train_step(order[(5 + steps) % len(order)])
            steps += 1
        print(json.dumps({"threads": threads, "steps": steps, "seconds": time.perf_counter() - start}), flush=True)


def spawn(threads: int, seconds: float, data_dir: str | None) -> subprocess.Popen:
    command = [sys.executable, __file__, "--child", str(threads), "--seconds", str(seconds)]
    if data_dir:
        command += ["--data-dir", data_dir]
    # OMP_NUM_THREADS unset: the thread count is the trainer's (torch.set_num_threads), as in poetgen train
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "POETGEN_THREADS")}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def measure(threads: int, seconds: float, data_dir: str | None) -> float:
    """Steps per second of one child."""
    proc = spawn(threads, seconds, data_dir)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"the measurement with {threads} thread(s) failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return result["steps"] / result["seconds"]


def start_neighbour(threads: int, data_dir: str | None) -> subprocess.Popen:
    """A second training process, returned once it is training (its first line)."""
    proc = spawn(threads, 1e9, data_dir)
    assert proc.stdout is not None
    if "training" not in proc.stdout.readline():
        proc.kill()
        raise SystemExit("the neighbouring training did not start")
    return proc


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import torch

    from poetgen.config import usable_cores

    return (f"{model}; {os.cpu_count()} cores, {usable_cores()} usable; torch {torch.__version__}; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before the run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("POETGEN_DATA"))
    parser.add_argument("--seconds", type=float, default=10.0, help="Training time of each measurement.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="Thread counts to compare (the first is the baseline).")
    parser.add_argument("--neighbour-threads", type=int, default=1, help="Threads of the training beside it.")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds, args.data_dir)
        return
    counts = [int(t) for t in args.threads.split(",")]
    print(machine())
    print(f"job: the lab's nn.LSTM classifier, {args.seconds:g} s per measurement; neighbour: the same "
          f"training with {args.neighbour_threads} thread(s)")
    rates: dict[tuple[str, int], list[float]] = {(case, n): [] for case in CASES for n in counts}
    for r in range(args.rounds):
        order = counts if r % 2 == 0 else counts[::-1]
        for case in CASES:
            neighbour = start_neighbour(args.neighbour_threads, args.data_dir) if case == "loaded" else None
            try:
                for n in order:
                    rates[case, n].append(measure(n, args.seconds, args.data_dir))
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
        print(f"round {r + 1}: " + ", ".join(f"{case} {n} thread(s) {rates[case, n][-1]:.1f} steps/s"
                                             for case in CASES for n in counts), flush=True)
    base = counts[0]
    for case in CASES:
        line = ", ".join(f"{n} thread(s) {statistics.median(rates[case, n]):.1f} steps/s" for n in counts)
        ratios = [f"{n}/{base} threads {ratio(rates[case, n], rates[case, base]):.2f}x" for n in counts if n != base]
        print(f"{case}: {line}; " + "; ".join(ratios) + " (median of the per-round ratios)")
    for n in counts:
        print(f"{n} thread(s): loaded/quiet {ratio(rates['loaded', n], rates['quiet', n]):.2f}x")


def ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a/b."""
    return statistics.median([x / y for x, y in zip(a, b, strict=True)])


if __name__ == "__main__":
    main()
