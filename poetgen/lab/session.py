"""The whole RNN-vs-LSTM lab in one call (`poetgen lab`): the assignment's classifiers trained side
by side, a controlled long-range test, a names generator, a tiny poem model, and the report with
every figure the lab asks for.

One budget in seconds, for the whole lab, is shared out by ``lab.schedule``'s clock, phase by
phase, each stopping on its deadline: the six classifiers (the tutorial RNN, a tanh ``nn.RNN``,
``nn.LSTM``, the hand-written LSTM, ``nn.GRU`` and the hand-written GRU, all with the same seed and
training time) take turns under ``compare_models``; then the long-range test (``lab.longrange``),
the tutorial's conditional names generator and a small Tang-poem LSTM (when the data folder has
the poems); the rest is the report's. The lab's networks are the assignment's: one layer of 128
units reading the name left to right, no character n-grams, no spelling variants — the shipped
classifier's extras would let the models win without their recurrence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from poetgen.errors import PoetgenError
from poetgen.lab.schedule import Clock, check_budget, duration

CLASSIFIERS = ("tutorial-rnn", "rnn", "lstm", "lstm:custom", "gru", "gru:custom")
DEFAULT_SECONDS = 600.0  # the whole lab, on a 2-core CPU
TRAINING = 0.9  # the share of a training phase's wall time that is training (0.93 measured; evaluations, checkpoints)
# Epochs enough that the time budget, not the epoch count, ends the runs, so the models get the
# same time; the best checkpoint (lowest validation loss) is the one scored, so the extra epochs
# cannot overfit the scores.
EPOCHS = 100


def classifier_seconds(phase: float) -> float:
    """Training seconds of each classifier when their phase has ``phase`` seconds of wall time."""
    return check_budget(phase) * TRAINING / len(CLASSIFIERS)


def classifier_config():
    """The names-classification preset with the assignment's network (see the module docstring)."""
    from poetgen.config import preset

    cfg = preset("names", "classify")
    cfg.model = replace(cfg.model, embed=64, hidden=128, layers=1, bidirectional=False, ngram=0,
                        generative=0)
    cfg.augment, cfg.epochs = False, EPOCHS
    return cfg


def generator_config(seconds: float, seed: int, data_dir: Path | str | None, threads: int = 0):
    """The tutorial's conditional names generator (one-hot language and letter, 128 hidden units,
    dropout 0.1 as in the tutorial) on the names preset's optimiser, for ``seconds``."""
    from poetgen.config import preset

    cfg = preset("names", "lm")
    cfg.model = replace(cfg.model, model="tutorial-rnn", hidden=128, layers=1, dropout=0.1)
    cfg.epochs = EPOCHS
    return _budgeted(cfg, seconds, seed, data_dir, threads)


def poems_config(seconds: float, seed: int, data_dir: Path | str | None, threads: int = 0):
    """A small Tang-poem LSTM (one layer of 256 units, adaptive softmax, batches of 32) for ``seconds``."""
    from poetgen.config import preset

    cfg = preset("tang", "lm")
    cfg.model = replace(cfg.model, embed=128, hidden=256, layers=1, dropout=0.1)
    cfg.warmup, cfg.batch_size = 50, 32  # twice the updates of the preset's batch in a short budget
    return _budgeted(cfg, seconds, seed, data_dir, threads)


def _budgeted(cfg, seconds: float, seed: int, data_dir: Path | str | None, threads: int = 0):
    cfg.max_time, cfg.seed, cfg.eval_every, cfg.patience = seconds, seed, 0, 0  # 20 evaluations, no early stop
    cfg.data_dir = str(data_dir) if data_dir is not None else None
    cfg.threads = threads
    return cfg.validate()


def _lines(clock: Clock) -> Callable[[dict], None]:
    """compare's progress events as lines: each model when ready and done, every few rounds."""
    def say(event: dict) -> None:
        if event["event"] == "start":
            clock.say(f"    {event['label']} ready ({event['index']}/{event['total']})")
        elif event["event"] == "round" and event["round"] % 4 == 1 and event["round"] > 1:
            clock.progress(f"round {event['round']}/{event['total']} of turns")
        elif event["event"] == "done":
            r = event["row"]
            clock.say(f"    {r['label']}: {r['steps']:,} steps ({r.get('epochs', 0)} epochs), {r['wall_s']:.0f} s, "
                      f"test accuracy {r['test_accuracy']:.3f}")
    return say


def train_in_turns(cfg, folder: Path, clock: Clock | None = None) -> Path:
    """Train one run in ``TURNS`` slices of its time budget, each ending in an evaluation, as
    compare's models do (at least 20 validation points however long an evaluation takes), and
    stop at the clock's phase deadline if that comes first."""
    from poetgen.lab.compare import TURNS
    from poetgen.train import Trainer

    trainer = Trainer(cfg, folder)
    turns, begun = 0, time.perf_counter()
    while not trainer.finished:
        now = time.perf_counter()
        if clock is not None and turns and now + (now - begun) / turns > clock.deadline:
            break  # the next turn would end past the phase's deadline
        trainer.fit(slice_seconds=cfg.max_time / TURNS)
        turns += 1
        if clock is not None and turns % 5 == 0 and not trainer.finished:
            clock.progress(f"turn {turns}/{TURNS}, {trainer.state.step:,} steps")
    return folder


def run_lab(out: Path, *, seconds: float = DEFAULT_SECONDS, seed: int = 0, data_dir: Path | str | None = None,
            threads: int = 0, log: Callable[[str], None] | None = None) -> Path:
    """Train the lab's models into ``out`` and write ``out/report/report.md`` (and ``.html``) within
    ``seconds`` (see ``lab.schedule``); returns the path of ``report.md``. ``log`` receives
    progress lines; ``threads``: torch threads (0: ``config.training_threads``'s default)."""
    import json

    import torch

    from poetgen.config import check_seed, max_threads, training_threads
    from poetgen.corpora import load_corpus
    from poetgen.lab.blocks import Details, Para, Table
    from poetgen.lab.compare import compare_models, fairness_note
    from poetgen.lab.longrange import LongRangeConfig, run_longrange
    from poetgen.lab.report import write_report

    check_budget(seconds)
    check_seed(seed)
    if not 0 <= threads <= max_threads():
        raise PoetgenError(f"--threads must be a whole number from 1 to {max_threads()} (4 per core; 0 = the default)")
    threads = training_threads(threads)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PoetgenError(f"{out} is {'a file' if not out.is_dir() else 'not empty'}; "
                           "the lab needs a new or empty folder")
    load_corpus("names", data_dir)  # a missing corpus fails here, before any folder is made
    clock = Clock(seconds, log or (lambda _line: None))
    clock.say(f"the lab: {duration(seconds)} in all, {threads} torch thread{'s' if threads > 1 else ''}")

    phase = clock.phase("classifiers", f"{len(CLASSIFIERS)} names classifiers taking turns")
    per_classifier = classifier_seconds(phase)
    rows = compare_models("names", "classify", CLASSIFIERS, data_dir=data_dir, out=out / "classify",
                          budget_seconds=per_classifier, seed=seed, base=classifier_config(), log=_lines(clock),
                          threads=threads, deadline=clock.deadline)
    runs = [Path(r["run"]) for r in rows]

    phase = clock.phase("long-range test", "tanh RNN, LSTM and GRU, one network per gap")
    torch.set_num_threads(threads)
    longrange = run_longrange(LongRangeConfig(seed=seed), seconds=phase * 0.95, log=clock.say)
    (out / "longrange").mkdir(parents=True, exist_ok=True)
    (out / "longrange" / "longrange.json").write_text(json.dumps(longrange.to_dict(), indent=2), encoding="utf-8")

    generator = clock.phase("names generator", "the tutorial's conditional RNN") * TRAINING
    runs.append(train_in_turns(generator_config(generator, seed, data_dir, threads), out / "names-generator", clock))
    left_out = []
    poems = clock.phase("poem model", "a one-layer LSTM") * TRAINING
    try:
        cfg = poems_config(poems, seed, data_dir, threads)
        runs.append(train_in_turns(cfg, out / "poems", clock))
    except PoetgenError as e:  # the names lab stands without poems: say why they are missing
        if (out / "poems" / "best.safetensors").exists():
            raise
        left_out.append(f"The poem model was left out: {e}.")
        clock.say(f"    poems left out: {e}")

    clock.phase("report", "test evaluations, the evidence, samples")
    preface = [Para(
        f"`poetgen lab --seconds {seconds:g} --seed {seed}`, {threads} torch thread{'s' if threads > 1 else ''}: "
        f"{len(runs)} runs and the long-range test in {clock.elapsed():.0f} s, then this report. Training time: "
        f"{per_classifier:.0f} s per classifier, {generator:.0f} s for the names generator"
        + (f", {poems:.0f} s for the poem model. " if not left_out else ". ")
        + f"Classifiers ({', '.join(CLASSIFIERS)}): one layer of 128 units reading each name left to right, "
        "no character n-grams, no spelling variants."),
        *(Para(line) for line in left_out),
        Details("How the time was spent, and how the classifiers were compared",
                [Table(["phase", "planned (s)", "took (s)"], clock.table()),
                 Para(fairness_note(None, per_classifier, seed))])]
    md = write_report(runs, out / "report", data_dir=data_dir, preface=preface, longrange=longrange)
    clock.finish()
    clock.say(f"done in {clock.elapsed():.0f} s (budget {seconds:g} s)")
    return md
