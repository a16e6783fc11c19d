"""Train several recurrent cells under one budget and compare them: the lab's "RNN vs LSTM" table.

``compare_models`` trains each model spec (``rnn``, ``lstm``, ``gru``, ``lstm:custom`` ...) with the
same preset, data, seed and budget into ``out/<spec>``, evaluates each best checkpoint on the test
split and writes ``compare.json``, ``compare.md`` (a Markdown table) and ``compare.png`` (curves
overlaid).

Fairness: every model gets the same number of optimiser steps on the same batches (same seed) and
early stopping is switched off, so quality is compared at equal work. The hand-written cells
(``:custom``, a Python loop over time steps, see ``cells.py``) cost more per step than torch's
fused kernels, by a factor that depends on the model and the machine (1.04-1.5x in
BENCHMARKS.md); the ms/step column and ``cell_cost`` state the measured price.
A budget in seconds instead compares what each cell reaches in the same time (step counts differ).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from poetgen.errors import PoetgenError, unknown
from poetgen.model import CELLS, MODELS, with_model
from poetgen.paths import check_writable, fresh_folders

DEFAULT_MODELS = ("rnn", "lstm", "gru", "lstm:custom")
SPECS = [*MODELS, *(f"{m}:custom" for m in MODELS), *(f"{m}:torch" for m in MODELS)]
TURNS = 20  # the models take turns: each gets a 20th of its budget per round, and is evaluated then


# ---------------------------------------------------------------------------------------------
# Model specs: "lstm", "lstm:custom", "gru:torch"


def parse_spec(spec: str) -> tuple[str, str]:
    """``"lstm:custom"`` → ``("lstm", "custom")``; no cell means torch. Anything else is refused."""
    text = str(spec).strip().lower()
    model, sep, cell = text.partition(":")
    cell = cell if sep else "torch"
    if model not in MODELS or cell not in CELLS:
        raise unknown("model spec", str(spec), SPECS[:6])
    return model, cell


def spec_label(model: str, cell: str) -> str:
    return model if cell == "torch" else f"{model}:{cell}"


def folder_name(label: str) -> str:
    """Run folder of a spec: ``lstm:custom`` → ``lstm-custom`` (':' is not allowed in Windows paths)."""
    return label.replace(":", "-")


# ---------------------------------------------------------------------------------------------
# A finished run as a table row


def write_timing(run: Path, stamps: list[float]) -> None:
    """``run/timing.json``: the median time of one training step, evaluations excluded.

    ``wall_s / steps`` would count the periodic evaluations in, which cost differently per cell.
    The median of the gaps between consecutive steps skips the few gaps that hold an evaluation;
    a NaN stamp marks the end of a turn (the other models ran in that gap).
    """
    gaps = [b - a for a, b in itertools.pairwise(stamps) if not (math.isnan(a) or math.isnan(b))]
    if gaps:
        median = statistics.median(gaps)
        (run / "timing.json").write_text(json.dumps({"median_step_ms": 1000 * median, "steps_timed": len(gaps)}),
                                         encoding="utf-8")


def _step_ms(run: Path, wall: float, steps: int) -> float:
    """Median step time from ``timing.json`` (written by compare), else wall time / steps."""
    try:
        return float(json.loads((run / "timing.json").read_text(encoding="utf-8"))["median_step_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1000 * wall / steps if steps else float("nan")


def run_row(run: Path, label: str | None = None, data_dir: Path | str | None = None,
            evaluation: dict | None = None) -> dict:
    """One comparison row for a finished run folder (its best checkpoint, evaluated on test)."""
    from poetgen.checkpoint import load_checkpoint
    from poetgen.evaluate import evaluate_split
    from poetgen.lab.plots import read_metrics
    from poetgen.model import count_parameters

    run = Path(run)
    records = read_metrics(run)
    if not records:
        raise PoetgenError(f"{run} has no evaluations in metrics.jsonl yet")
    ck = load_checkpoint(run)
    last = records[-1]
    if evaluation is None:
        evaluation = evaluate_split(ck, data_dir, "test", allow_empty=True, trained_folder=True)
    steps = int(last["step"])
    wall = float(last.get("wall_s", float("nan")))
    row = {
        "label": label or run.name,
        "model": ck.config.model,
        "cell": ck.config.cell,
        "params": count_parameters(ck.model),
        "steps": steps,
        "epochs": last.get("epoch"),
        "wall_s": wall,
        "ms_per_step": _step_ms(run, wall, steps),
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "best_val_loss": min(r["val_loss"] for r in records if isinstance(r.get("val_loss"), int | float)),
        "run": str(run),
    }
    if ck.config.task == "classify":
        row |= {"val_accuracy": last.get("val_accuracy"), "test_accuracy": evaluation.get("accuracy"),
                "test_macro_f1": evaluation.get("macro_f1"),
                "test_balanced_accuracy": evaluation.get("balanced_accuracy")}
    else:  # None (shown as "–") when the corpus has no test split
        row |= {"test_nll": evaluation.get("nll"), "test_ppl": evaluation.get("ppl")}
    return row


# ---------------------------------------------------------------------------------------------
# Tables


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def table_of(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the comparison table (classifier or language-model columns)."""
    classify = any("test_accuracy" in r for r in rows)
    headers = ["model", "cell", "params", "steps", "wall time (s)", "epochs", "ms/step", "final train loss",
               "final val loss"]
    headers += ["test accuracy", "test macro-F1"] if classify else ["test NLL/char", "test perplexity"]
    cells = []
    for r in rows:
        epochs = r.get("epochs")
        line = [r["label"], r["cell"], f"{r['params']:,}", str(r["steps"]), _fmt(r["wall_s"], 1),
                _fmt(float(epochs), 1) if isinstance(epochs, int | float) else "–",
                _fmt(r["ms_per_step"], 1), _fmt(r["train_loss"]), _fmt(r["val_loss"])]
        if classify:
            line += [_fmt(r.get("test_accuracy")), _fmt(r.get("test_macro_f1"))]
        else:
            line += [_fmt(r.get("test_nll")), _fmt(r.get("test_ppl"), 2)]
        cells.append(line)
    return headers, cells


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    numeric = [bool(rows) and all(_looks_numeric(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("%", "").replace("–", "").lstrip("-").isdigit() or text == "–"


def _slice(budget_steps: int | None, budget_seconds: float | None, total_steps: int) -> dict:
    """One model's turn: a ``TURNS``-th of its budget (of the preset's schedule without one)."""
    if budget_seconds and not budget_steps:
        return {"slice_seconds": budget_seconds / TURNS}
    return {"slice_steps": max(1, (budget_steps or total_steps) // TURNS)}


def fairness_note(budget_steps: int | None, budget_seconds: float | None, seed: int) -> str:
    if budget_steps:
        budget = f"{budget_steps} optimiser steps each"
        if budget_seconds:
            budget += f" (or {budget_seconds:g} s, whichever came first)"
    elif budget_seconds:
        budget = f"{budget_seconds:.3g} seconds of training each (so the step counts differ)"
    else:
        budget = "the preset's full schedule each"
    return (f"Same preset, data, batch order (seed {seed}) and budget for every model: {budget}; early "
            f"stopping off. The models took turns, one {TURNS}th of the budget each per round, so they shared "
            "the machine's conditions, and a time budget counted only each model's own training time. "
            "Scores are of each run's best checkpoint (lowest validation loss) on the test "
            "split. The hand-written cells (`:custom`) loop over time steps in Python where torch's kernels "
            "run the loop in C++; the ms/step column shows what that costs on this machine. Wall time "
            "includes the periodic evaluations; ms/step is the median time of one training step, evaluations "
            "excluded.")


def cell_cost(rows: list[dict]) -> str:
    """What the hand-written cells cost per step against torch's kernel of the same model, as
    measured in ``rows`` ("" when no pair is there)."""
    torch_ms = {r["model"]: r["ms_per_step"] for r in rows if r.get("cell") == "torch"}
    said = []
    for r in rows:
        base = torch_ms.get(r["model"])
        if r.get("cell") == "custom" and base and math.isfinite(base) and math.isfinite(r["ms_per_step"]):
            said.append(f"{r['label']} {r['ms_per_step']:.1f} ms against {base:.1f} "
                        f"({r['ms_per_step'] / base:.2f}×)")
    return ("Hand-written cells per step, against torch's kernel of the same model: " + "; ".join(said) + "."
            if said else "")


# ---------------------------------------------------------------------------------------------
# The comparison


def compare_models(
    corpus: str = "names",
    task: str = "classify",
    models: list[str] | tuple[str, ...] = DEFAULT_MODELS,
    *,
    data_dir: Path | str | None = None,
    out: Path,
    budget_steps: int | None = None,
    budget_seconds: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    base=None,
    log: Callable[[dict], None] | None = None,
    threads: int = 0,
    deadline: float | None = None,
) -> list[dict]:
    """Train each model spec under the same budget into ``out/<spec>`` and compare them.

    ``threads``: torch threads (0: ``config.training_threads``'s default). ``deadline`` (a
    ``time.perf_counter()`` value): no round of turns starts that would end after it, so the
    models stop early, all after the same number of turns, and their rows say so.

    ``base`` (a TrainConfig) replaces ``train.preset(corpus, task)`` as the template, e.g. to shrink
    the models; its corpus, task, data_dir, seed and budget (and ``batch_size`` when given) are
    overridden by the arguments.
    ``log`` receives ``{"event": "start"|"step"|"done", ...}`` dicts (progress bars, lines); None:
    the models train silently.
    Returns one row per model (see :func:`run_row`) and writes ``compare.{json,md,png}``.
    """
    from poetgen.config import TrainConfig, preset
    from poetgen.lab.plots import plot_run
    from poetgen.train import Trainer

    specs = [parse_spec(m) for m in models]
    if not specs:
        raise PoetgenError("give at least one model to compare (e.g. rnn,lstm,gru,lstm:custom)")
    labels = [spec_label(*s) for s in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise PoetgenError(f"model {repeated[0]} is listed twice")
    if budget_steps is not None and budget_steps < 1:
        raise PoetgenError(f"the step budget must be at least 1, got {budget_steps}")
    if budget_seconds is not None and not (budget_seconds > 0 and math.isfinite(budget_seconds)):
        raise PoetgenError(f"the time budget must be a positive number of seconds, got {budget_seconds}")
    out = Path(out).expanduser()
    check_writable(out)  # before minutes of training, not after
    for label in labels:
        folder = out / folder_name(label)
        if (folder / "metrics.jsonl").exists() or (folder / "last.safetensors").exists():
            raise PoetgenError(f"{folder} already holds a run; choose another output folder")

    template = TrainConfig.from_dict((base or preset(corpus, task)).to_dict())
    template.corpus, template.task, template.seed = corpus, task, seed
    # A generative classifier's language model is an LSTM whatever the spec: it would blur the comparison
    template.model = replace(template.model, generative=0)
    template.data_dir = str(data_dir) if data_dir is not None else template.data_dir
    template.max_steps = budget_steps or 0
    template.max_time = float(budget_seconds or 0.0)
    template.patience = 0  # early stopping would hand the models different budgets
    if batch_size is not None:
        template.batch_size = batch_size
    template.threads = threads
    template.validate()

    def say(event: dict) -> None:
        if log is not None:
            log(event)

    configs = [replace(template, model=with_model(template.model, model, cell)).validate() for model, cell in specs]
    trainers: dict[str, Trainer] = {}
    progress: dict[str, Callable[[dict], None]] = {}
    stamps: dict[str, list[float]] = {label: [] for label in labels}
    # every spec is checked before any folder is made; one that fails to start takes back the folders made
    with fresh_folders(*(out / folder_name(label) for label in labels)):
        for i, (cfg, label) in enumerate(zip(configs, labels, strict=True), start=1):
            def stamp(event: dict, label: str = label) -> None:
                stamps[label].append(time.perf_counter())
                say({"event": "step", "label": label, **event})

            trainers[label], progress[label] = Trainer(cfg, out / folder_name(label)), stamp
            say({"event": "start", "label": label, "index": i, "total": len(specs),
                 "run": str(out / folder_name(label))})
    # The models take turns, a slice each, round after round: whatever else the machine does lands
    # on all of them alike, and a time budget counts only each model's own training time.
    turn = _slice(budget_steps, budget_seconds, next(iter(trainers.values())).total_steps())
    rounds, cut = 0, False
    round_start = time.perf_counter()
    while not all(t.finished for t in trainers.values()):
        now = time.perf_counter()
        if deadline is not None and rounds and now + (now - round_start) / rounds > deadline:
            cut = True  # the next round would end past the deadline
            break
        rounds += 1
        say({"event": "round", "round": rounds, "total": TURNS})
        for label, trainer in trainers.items():
            if not trainer.finished:
                stamps[label].append(math.nan)  # a turn ends: the gap to the next step is not a step
                trainer.fit(**turn, log=progress[label])

    rows, folders = [], {}
    for label, trainer in trainers.items():
        folder = trainer.out
        write_timing(folder, stamps[label])
        try:
            plot_run(folder)
        except PoetgenError:
            pass  # the curves are a bonus; the row below still reports the run
        row = run_row(folder, label, data_dir)
        row["turns"], row["stopped_early"] = rounds, cut and not trainer.finished
        rows.append(row)
        folders[label] = folder
        say({"event": "done", "label": label, "row": row})

    write_comparison(rows, folders, out, meta={
        "corpus": corpus, "task": task, "budget_steps": budget_steps, "budget_seconds": budget_seconds,
        "seed": seed, "config": template.to_dict(),
    })
    return rows


def write_comparison(rows: list[dict], folders: dict[str, Path], out: Path, meta: dict) -> dict[str, Path]:
    """``compare.json``, ``compare.md`` and ``compare.png`` in ``out``."""
    from poetgen.lab.plots import plot_compare

    out.mkdir(parents=True, exist_ok=True)
    png = plot_compare(folders, out / "compare.png")
    (out / "compare.json").write_text(json.dumps({**meta, "rows": rows}, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    headers, cells = table_of(rows)
    note = fairness_note(meta.get("budget_steps"), meta.get("budget_seconds"), meta.get("seed", 0))
    cost = cell_cost(rows)
    md = (f"# Comparison: {meta.get('corpus')} / {meta.get('task')}\n\n{markdown_table(headers, cells)}\n\n"
          f"{note}{' ' + cost if cost else ''}\n\n![loss and accuracy curves, overlaid](compare.png)\n")
    (out / "compare.md").write_text(md, encoding="utf-8")
    return {"json": out / "compare.json", "md": out / "compare.md", "png": png}
