"""The whole RNN-vs-LSTM lab in one call (`poetgen lab`): the assignment's classifiers trained side
by side, a names generator, a tiny poem model, and the report with every figure the lab asks for.

One budget in seconds, for the whole lab, is shared out: first to the four classifiers, which take
turns under ``compare_models`` (tutorial RNN, nn.LSTM, the hand-written LSTM, GRU, all with the
same seed and training time), then, from what is left, to the tutorial's conditional names
generator and a small Tang-poem LSTM (when the data folder has the poems), keeping back enough for
the report and its evidence measurements. The lab's networks are the
assignment's: one layer of 128 units reading the name left to right, no character n-grams, no
spelling variants — the shipped classifier's extras would let the models win without their
recurrence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from poetgen.errors import PoetgenError

CLASSIFIERS = ("tutorial-rnn", "lstm", "lstm:custom", "gru")
DEFAULT_SECONDS = 600.0  # the whole lab, on a 2-core CPU
# How the budget is spent. The classifiers come first and get fixed shares (the comparison must
# give each the same time); the generator and the poem model share what is left once the report's
# reserve is set aside, so a slow or busy machine shortens them rather than the deadline. Training
# time is ~80% of a run's wall time (start-up, evaluations and checkpoints are the rest).
CLASSIFIERS_SHARE = 0.45  # the four classifiers' training time together
REPORT_SHARE = 0.12  # kept for the report: test evaluations, the evidence, sample names and poems
GENERATOR_SHARE = 0.35  # of the time left for the generator and the poem model
TRAINING = 0.8
# Epochs enough that the time budget, not the epoch count, ends the runs (100 epochs are 22.6k
# steps: in the default 68 s the LSTMs and the GRU reach 11-15k, only the tutorial RNN, at ~2.7 ms
# a step, may finish a little early), so the models get the same time; the best checkpoint (lowest
# validation loss) is the one scored, so the extra epochs cannot overfit the scores.
EPOCHS = 100


def check_budget(seconds: float) -> float:
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise PoetgenError(f"the lab's time budget must be a positive number of seconds, got {seconds}")
    return float(seconds)


def classifier_seconds(seconds: float) -> float:
    """Training seconds of each classifier in a lab of ``seconds``."""
    return check_budget(seconds) * CLASSIFIERS_SHARE / len(CLASSIFIERS)


def later_seconds(seconds: float, left: float) -> tuple[float, float]:
    """Training seconds of the generator and of the poem model, when ``left`` seconds of the lab's
    ``seconds`` remain after the classifiers (each gets at least 2% of the budget)."""
    usable = max(left - check_budget(seconds) * REPORT_SHARE, 0.0) * TRAINING
    floor = 0.02 * seconds
    return max(usable * GENERATOR_SHARE, floor), max(usable * (1 - GENERATOR_SHARE), floor)


def classifier_config():
    """The names-classification preset with the assignment's network (see the module docstring)."""
    from poetgen.config import preset

    cfg = preset("names", "classify")
    cfg.model = replace(cfg.model, embed=64, hidden=128, layers=1, bidirectional=False, ngram=0,
                        generative=0)
    cfg.augment, cfg.epochs = False, EPOCHS
    return cfg


def generator_config(seconds: float, seed: int, data_dir: Path | str | None):
    """The tutorial's conditional names generator (one-hot language and letter, 128 hidden units,
    dropout 0.1 as in the tutorial) on the names preset's optimiser, for ``seconds``."""
    from poetgen.config import preset

    cfg = preset("names", "lm")
    cfg.model = replace(cfg.model, model="tutorial-rnn", hidden=128, layers=1, dropout=0.1)
    cfg.epochs = EPOCHS
    return _budgeted(cfg, seconds, seed, data_dir)


def poems_config(seconds: float, seed: int, data_dir: Path | str | None):
    """A small Tang-poem LSTM (one layer of 256 units, adaptive softmax, batches of 32) for ``seconds``."""
    from poetgen.config import preset

    cfg = preset("tang", "lm")
    cfg.model = replace(cfg.model, embed=128, hidden=256, layers=1, dropout=0.1)
    cfg.warmup, cfg.batch_size = 50, 32  # twice the updates of the preset's batch in a short budget
    return _budgeted(cfg, seconds, seed, data_dir)


def _budgeted(cfg, seconds: float, seed: int, data_dir: Path | str | None):
    cfg.max_time, cfg.seed, cfg.eval_every, cfg.patience = seconds, seed, 0, 0  # 20 evaluations, no early stop
    cfg.data_dir = str(data_dir) if data_dir is not None else None
    return cfg.validate()


def _lines(log: Callable[[str], None]) -> Callable[[dict], None]:
    """compare's progress events as lines."""
    def say(event: dict) -> None:
        if event["event"] == "start":
            log(f"[{event['index']}/{event['total']}] {event['label']} ready")
        elif event["event"] == "done":
            r = event["row"]
            log(f"    {r['label']}: {r['steps']} steps, {r['wall_s']:.0f} s, test accuracy {r['test_accuracy']:.3f}")
    return say


def train_in_turns(cfg, folder: Path) -> Path:
    """Train one run in ``TURNS`` slices of its time budget, each ending in an evaluation, as
    compare's models do: at least 20 validation points however long an evaluation takes."""
    from poetgen.lab.compare import TURNS
    from poetgen.train import Trainer

    trainer = Trainer(cfg, folder)
    while not trainer.finished:
        trainer.fit(slice_seconds=cfg.max_time / TURNS)
    return folder


def run_lab(out: Path, *, seconds: float = DEFAULT_SECONDS, seed: int = 0, data_dir: Path | str | None = None,
            log: Callable[[str], None] | None = None) -> Path:
    """Train the lab's models into ``out`` and write ``out/report/report.md`` (and ``.html``);
    returns the path of ``report.md``. ``log`` receives progress lines."""
    from poetgen.config import check_seed
    from poetgen.corpora import load_corpus
    from poetgen.lab.blocks import Para
    from poetgen.lab.compare import compare_models, fairness_note
    from poetgen.lab.report import write_report

    say = log or (lambda _line: None)
    per_classifier = classifier_seconds(seconds)
    check_seed(seed)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PoetgenError(f"{out} is {'a file' if not out.is_dir() else 'not empty'}; "
                           "the lab needs a new or empty folder")
    load_corpus("names", data_dir)  # a missing corpus fails here, before any folder is made
    start = time.perf_counter()
    say(f"{len(CLASSIFIERS)} names classifiers, {per_classifier:.0f} s of training each, taking turns")
    rows = compare_models("names", "classify", CLASSIFIERS, data_dir=data_dir, out=out / "classify",
                          budget_seconds=per_classifier, seed=seed, base=classifier_config(), log=_lines(say))
    runs = [Path(r["run"]) for r in rows]

    generator, poems = later_seconds(seconds, seconds - (time.perf_counter() - start))
    say(f"names generator (tutorial RNN), {generator:.0f} s")
    runs.append(train_in_turns(generator_config(generator, seed, data_dir), out / "names-generator"))
    left_out = []
    try:
        cfg = poems_config(poems, seed, data_dir)
        say(f"poem model (LSTM), {poems:.0f} s")
        runs.append(train_in_turns(cfg, out / "poems"))
    except PoetgenError as e:  # the names lab stands without poems: say why they are missing
        if (out / "poems" / "best.safetensors").exists():
            raise
        left_out.append(f"The poem model was left out: {e}.")
        say(f"    poems left out: {e}")

    say("report: evaluations, evidence, samples")
    trained = time.perf_counter() - start
    preface = [Para(
        f"`poetgen lab --seconds {seconds:g} --seed {seed}`: {len(runs)} runs trained in {trained:.0f} s "
        f"(training time: {per_classifier:.0f} s per classifier, {generator:.0f} s for the names generator"
        + (f", {poems:.0f} s for the poem model). " if not left_out else "). ")
        + f"Classifiers ({', '.join(CLASSIFIERS)}): one layer of 128 units reading each name left to right, "
        "no character n-grams, no spelling variants. " + fairness_note(None, per_classifier, seed)),
        *(Para(line) for line in left_out)]
    md = write_report(runs, out / "report", data_dir=data_dir, preface=preface)
    say(f"done in {time.perf_counter() - start:.0f} s")
    return md
