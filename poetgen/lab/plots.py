"""Figures for lab reports: training curves of a run, several runs overlaid, a confusion matrix,
and the evidence figures (gradient flow, accuracy by name length, forget gates; ``lab.evidence``).

Everything draws on a bare ``matplotlib.figure.Figure`` (the Agg canvas), never through
``pyplot``: no window ever opens, no global backend is switched, nothing leaks between figures,
and it works on a server without a display. Every function returns the PNG path it wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from poetgen.errors import PoetgenError
from poetgen.paths import atomic_path, read_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poetgen.lab.evidence import GateSummary, GradientFlow, LengthBucket

METRICS = "metrics.jsonl"
DPI = 120


# ---------------------------------------------------------------------------------------------
# Reading a run's metrics


def metrics_path(run: Path | str) -> Path:
    """``run/metrics.jsonl`` (``run`` may also be the file itself)."""
    path = Path(run).expanduser()
    if path.is_dir():
        path = path / METRICS
    if not path.is_file():
        where = path.parent if path.name == METRICS else path
        raise PoetgenError(f"{where} is not a training run: no {METRICS} (train one with `poetgen train --out ...`)")
    return path


def read_metrics(run: Path | str) -> list[dict]:
    """The evaluation records of a run, in order (one JSON object per line of ``metrics.jsonl``).

    A torn last line (the trainer killed mid-write) is skipped; a corrupt line anywhere else is an
    error, as the file was then edited or damaged and the curves would silently lie.
    """
    return _read_records(metrics_path(run))


def read_train_log(run: Path | str) -> list[dict]:
    """The dense training-loss points of a run folder (``train.jsonl``; [] for runs without one)."""
    path = Path(run).expanduser() / "train.jsonl"
    return _read_records(path) if path.is_file() else []


def _read_records(path: Path) -> list[dict]:
    text = read_text(path)
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        last = all(not rest.strip() for rest in lines[number:])
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if last and not text.endswith("\n"):  # torn write: the line never got its newline
                break
            raise PoetgenError(f"{path} line {number} is not JSON ({e.msg}); the file is damaged") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise PoetgenError(f"{path} line {number} is not an evaluation record (no integer 'step')")
        records.append(record)
    return records


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that have a finite number under ``key``."""
    pairs = [(r["step"], float(r[key])) for r in records if _finite(r.get(key))]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _run_title(run: Path) -> str:
    """"lstm (torch) · names/classify" from ``config.json`` when it is there, else the folder name."""
    try:
        cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
        model = cfg.get("model", {})
        return f"{run.name}: {model.get('model')} ({model.get('cell')}) · {cfg.get('corpus')}/{cfg.get('task')}"
    except (OSError, ValueError, AttributeError):
        return run.name


# ---------------------------------------------------------------------------------------------
# Drawing


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, out: Path) -> Path:
    """Write the PNG atomically (a half-written image is never left behind)."""
    out = Path(out)
    try:
        with atomic_path(out, ".png") as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
    except OSError as e:
        raise PoetgenError(f"cannot write {out}: {e.strerror or e}", code=1) from None
    return out


def _panel(ax, records: list[dict], series: tuple[tuple[str, str, str], ...], title: str, ylabel: str,
           legend: str = "best"):
    """One panel of curves against step: ``series`` holds (metrics key, legend label, line style)."""
    for key, label, style in series:
        xs, ys = _series(records, key)
        if xs:
            ax.plot(xs, ys, style, marker="o", markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend)
    return ax


def _clip_spikes(ax, validation: list[float], training: list[float]) -> None:
    """Cap the loss axis where a few training points spike far above the rest (a logged window of
    one or two steps, on a busy machine): above every validation point and 95% of the training
    points, so the curves keep the height of the figure."""
    import numpy as np

    finite = [v for v in training if math.isfinite(v)]
    if not finite or not validation:
        return
    top = 1.1 * max(max(validation), float(np.percentile(finite, 95)))
    if max(finite) > top:
        ax.set_ylim(top=top)


def plot_curves(records: list[dict], out: Path, title: str = "", train_log: list[dict] | None = None) -> Path:
    """Loss (train and validation) against step; a second panel with accuracy and macro-F1 when
    the run is a classifier."""
    if not records:
        raise PoetgenError("no evaluations recorded yet: nothing to plot")
    classifier = any("val_accuracy" in r for r in records)
    fig = _figure(11 if classifier else 6.5, 4.2)
    axes = fig.subplots(1, 2 if classifier else 1, squeeze=False)[0]
    ylabel = "loss (nats per character)" if not classifier else "loss (cross-entropy per name)"
    # train and validation on one definition (plain cross-entropy); the regularised objective the
    # optimiser sees (label smoothing, class weights) beside them, dotted, where it differs
    # Both training curves come from the dense log where the run has one: an evaluation record's
    # train loss averages the steps since the evaluation before, a single step where two came close.
    dense = train_log or []  # the training curve at ~1% of the run, where the run logged it
    losses = [] if dense else [("train_loss", "train", "--")]
    losses.append(("val_loss", "validation", "-"))
    objective = "training objective (smoothing, class weights)"
    regularised = any(abs(r.get("train_objective", r.get("train_loss", 0)) - r.get("train_loss", 0)) > 1e-6
                      for r in records)
    if regularised and not dense:
        losses.append(("train_objective", objective, ":"))
    ax = _panel(axes[0], records, tuple(losses), "loss", ylabel)
    if dense:
        xs, ys = _series(dense, "train_loss")
        ax.plot(xs, ys, "-", alpha=0.6, linewidth=1, label="train", zorder=1)
        if regularised:
            xs, ys = _series(dense, "train_objective")
            ax.plot(xs, ys, ":", alpha=0.8, linewidth=1.2, label=objective, zorder=1)
        ax.legend(loc="best")
    training = [y for key in ("train_loss", "train_objective") for y in _series(dense or records, key)[1]]
    _clip_spikes(ax, _series(records, "val_loss")[1], training)
    if classifier:
        acc = _panel(axes[1], records, (("val_accuracy", "accuracy", "-"), ("val_macro_f1", "macro-F1", "--")),
                     "validation accuracy and macro-F1", "validation score", legend="lower right")
        acc.set_ylim(0, 1)
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_run(run: Path) -> Path:
    """Write ``run/curves.png``: the loss curves (and accuracy / macro-F1 for classifiers)."""
    run = Path(run).expanduser()
    records = read_metrics(run)
    return plot_curves(records, run / "curves.png", _run_title(run), read_train_log(run))


def plot_compare(runs: dict[str, Path], out: Path) -> Path:
    """Several runs in one figure: loss on the left (validation solid, training dashed, one colour
    per run); on the right validation accuracy when the runs are classifiers, else validation loss
    against wall-clock time (what a step costs differs between cells)."""
    if not runs:
        raise PoetgenError("plot_compare needs at least one run")
    data = {label: read_metrics(path) for label, path in runs.items()}
    classifier = any("val_accuracy" in r for records in data.values() for r in records)
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(data))]
    validation, training = [], []
    for (label, records), colour in zip(data.items(), colours, strict=True):
        xs, ys = _series(records, "val_loss")
        left.plot(xs, ys, "-", color=colour, marker="o", markersize=3, label=f"{label} val")
        validation += ys
        xs, ys = _series(read_train_log(runs[label]) or records, "train_loss")  # the dense curve where logged
        left.plot(xs, ys, "--", color=colour, alpha=0.6, linewidth=1, label=f"{label} train")
        training += ys
        if classifier:
            xs, ys = _series(records, "val_accuracy")
            right.plot(xs, ys, "-", color=colour, marker="o", markersize=3, label=label)
        else:
            timed = [r for r in records if _finite(r.get("wall_s")) and _finite(r.get("val_loss"))]
            right.plot([r["wall_s"] for r in timed], [r["val_loss"] for r in timed], "-", color=colour,
                       marker="o", markersize=3, label=label)
    _clip_spikes(left, validation, training)
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_title("loss (solid: validation, dashed: training)")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    if classifier:
        right.set_xlabel("step")
        right.set_ylabel("validation accuracy")
        right.set_ylim(0, 1)
        right.set_title("validation accuracy")
    else:
        right.set_xlabel("wall-clock seconds")
        right.set_ylabel("validation loss")
        right.set_title("validation loss against training time")
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    return _save(fig, out)


def plot_confusion(labels: list[str], matrix: list[list[int]], out: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), counts annotated.

    Colour is the share of each true class (so a rare language is as visible as Russian); the
    number in a cell is the raw count. Sized so an 18×18 matrix stays readable.
    """
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n) or n == 0:
        raise PoetgenError(f"confusion matrix is {counts.shape}, expected {n}×{n} for {n} labels")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.48 * n + 2.2)
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fontsize = 9 if n <= 12 else 7
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                colour = "white" if share[i, j] > 0.55 else "black"
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=fontsize, color=colour)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=fontsize + 1)
    ax.set_yticks(range(n), labels, fontsize=fontsize + 1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (colour: share of the true class; numbers: counts)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    return _save(fig, out)


# ---------------------------------------------------------------------------------------------
# Evidence: why the LSTM beats the RNN


def colours_of(labels: Sequence[str]) -> dict[str, str]:
    """One colour per model, so that a model looks the same in every evidence figure."""
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


def plot_gradient_flow(flows: dict[str, GradientFlow], out: Path, unit: str = "letter",
                       colours: dict[str, str] | None = None) -> Path:
    """‖∂loss/∂x_t‖ against the distance from the sequence's end, one line per model, log y: on
    the left as measured, on the right as a share of each model's gradient at distance 0 (the
    models' scales differ; the share is what vanishes or not)."""
    if not flows:
        raise PoetgenError("plot_gradient_flow needs at least one model")
    colours = colours or colours_of(list(flows))
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2)
    for label, flow in flows.items():
        for ax, ys in ((left, flow.mean_norm), (right, flow.relative())):
            pairs = [(d, y) for d, y in zip(flow.distances, ys, strict=True) if _finite(y) and y > 0]
            ax.plot([d for d, _ in pairs], [y for _, y in pairs], "-", color=colours[label], marker="o",
                    markersize=3, label=label)
    for ax, ylabel, title in (
        (left, "mean ‖∂loss/∂x_t‖", "gradient reaching each input"),
        (right, "share of the gradient at distance 0", "the same, relative to the last input"),
    ):
        ax.set_yscale("log")
        ax.set_xlabel(f"distance from the end ({unit}s back; 0 = the last {unit})")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return _save(fig, out)


def plot_accuracy_by_length(buckets: dict[str, list[LengthBucket]], out: Path,
                            colours: dict[str, str] | None = None) -> Path:
    """Grouped bars: accuracy per name-length bucket (x: letters, with each bucket's count), one
    colour per model."""
    if not buckets:
        raise PoetgenError("plot_accuracy_by_length needs at least one model")
    colours = colours or colours_of(list(buckets))
    first = next(iter(buckets.values()))
    fig = _figure(max(7.0, 1.3 * len(first) + 2), 4.6)
    ax = fig.subplots()
    width = 0.8 / len(buckets)
    for i, (label, rows) in enumerate(buckets.items()):
        xs = [j + (i - (len(buckets) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [b.accuracy if b.count else 0 for b in rows], width, color=colours[label], label=label)
    ax.set_xticks(range(len(first)), [f"{b.label}\n({b.count} names)" for b in first])
    ax.set_xlabel("name length (letters)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("accuracy by name length (validation split)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", loc="upper left")
    return _save(fig, out)


def plot_forget_gates(values: dict[str, Sequence[float]], summaries: dict[str, GateSummary], out: Path,
                      colours: dict[str, str] | None = None) -> Path:
    """Left: the distribution of forget-gate activations σ(f_t) per LSTM (share of values per bin);
    right: their mean, the share above 0.9 (memory kept) and below 0.1 (memory wiped)."""
    import numpy as np

    if not values:
        raise PoetgenError("plot_forget_gates needs at least one LSTM")
    colours = colours or colours_of(list(values))
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2)
    edges = np.linspace(0, 1, 41)
    for label, gates in values.items():
        counts, _ = np.histogram(np.asarray(gates, dtype=float), bins=edges)
        left.stairs(counts / max(counts.sum(), 1), edges, color=colours[label], linewidth=1.6, label=label)
    left.set_xlabel("forget gate σ(f_t) (1: keep the cell state, 0: wipe it)")
    left.set_ylabel("share of gate values")
    left.set_title("forget-gate activations over validation inputs")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    names = ("mean", "share > 0.9", "share < 0.1")
    width = 0.8 / len(summaries)
    for i, (label, s) in enumerate(summaries.items()):
        xs = [j + (i - (len(summaries) - 1) / 2) * width for j in range(len(names))]
        bars = right.bar(xs, [s.mean, s.above, s.below], width, color=colours[label], label=label)
        right.bar_label(bars, fmt="%.2f", fontsize=8)
    right.set_xticks(range(len(names)), names)
    right.set_ylim(0, 1.05)
    right.set_title("summary")
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize="small")
    return _save(fig, out)
