"""The report's conclusion and its warnings, written from the measured numbers.

Warnings flag every run whose numbers should not be read as a finished model's: too few epochs,
a training loss that diverged, a validation loss still falling fast when time ran out, a
perplexity still in the thousands, a run the lab's deadline cut short. The conclusion compares
the classifiers on the test split with a paired 95% interval (each name scored by both models),
states a difference only when the interval excludes zero, adds the controlled long-range
experiment's verdict, and says what the run cannot show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetgen.lab.blocks import Block, Heading, Para, Table

if TYPE_CHECKING:
    import torch

    from poetgen.lab.longrange import LongRangeResult

MIN_EPOCHS = 5  # a classifier's scores settle after a few passes over the names
Z = 1.96  # 95% intervals
PLAIN = ("rnn", "tutorial-rnn")
NAMES = {"tutorial-rnn": "the tutorial RNN", "rnn": "the tanh RNN", "lstm": "the LSTM", "gru": "the GRU"}


# ---------------------------------------------------------------------------------------------
# Warnings


def run_warnings(label: str, kind: str, records: list[dict], row: dict | None) -> list[str]:
    """Why the numbers of one run (its metrics records and comparison row) are not a finished
    model's; empty when nothing says so."""
    said: list[str] = []
    if not records:
        return [f"{label}: no evaluations recorded."]
    last = records[-1]
    epochs = float(last.get("epoch") or 0)
    if kind == "classify" and epochs < MIN_EPOCHS:
        said.append(f"{label} trained for {epochs:.0f} full epochs ({last['step']:,} steps), fewer than the "
                    f"{MIN_EPOCHS} its scores need to settle.")
    elif kind != "classify" and epochs < 1:
        said.append(f"{label} did not finish one pass over its training data ({last['step']:,} steps).")
    losses = [r.get("train_loss") for r in records]
    if any(x is not None and not _finite(x) for x in losses):
        said.append(f"{label}: the training loss became infinite or NaN.")
    losses = [x for x in losses if _finite(x)]
    if len(losses) >= 8:  # each record's training loss is a mean over a few steps: compare quarters, not points
        q = len(losses) // 4
        means = [sum(losses[i * q:(i + 1) * q]) / q for i in range(3)] + [sum(losses[3 * q:]) / len(losses[3 * q:])]
        if means[-1] > 1.3 * min(means[:-1]):
            said.append(f"{label}: the training loss diverged (mean {min(means[:-1]):.3f} in an earlier quarter of "
                        f"the run, {means[-1]:.3f} in the last).")
    val = [r["val_loss"] for r in records if _finite(r.get("val_loss"))]
    if len(val) >= 8:
        quarter = val[-(len(val) // 4) - 1]
        if val[-1] < 0.95 * quarter:
            said.append(f"{label}: the validation loss was still falling fast when its time ran out ({quarter:.3f} → "
                        f"{val[-1]:.3f} over the last quarter of the run): more training would change its scores.")
    ppl = (row or {}).get("test_ppl")
    if _finite(ppl) and ppl >= 1000:
        said.append(f"{label}: test perplexity {ppl:,.0f}, still in the thousands: it has barely started to learn.")
    if (row or {}).get("stopped_early"):
        said.append(f"{label}: the lab's deadline stopped it after {row.get('turns')} turns.")
    return said


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def warning_blocks(warnings: list[str]) -> list[Block]:
    if not warnings:
        return [Para("Every run trained long enough by the checks this report makes (≥ 5 epochs for a classifier, "
                     "a loss that fell and settled, a perplexity below 1,000).")]
    return [Heading(2, "Read first: under-trained runs"),
            Para("These runs had too little time: read their numbers as a snapshot of training, not as what the "
                 "model can do."), Table(["", "warning"], [["⚠", w] for w in warnings])]


# ---------------------------------------------------------------------------------------------
# Paired differences on the test split


@dataclass
class Difference:
    a: str
    b: str
    diff: float  # accuracy of a minus accuracy of b
    half: float  # half-width of the 95% interval

    @property
    def real(self) -> bool:
        return abs(self.diff) > self.half

    def text(self) -> str:
        lead = f"{self.a} − {self.b}: {100 * self.diff:+.1f} ± {100 * self.half:.1f} points"
        return lead + (" (a real difference)" if self.real else " (within the noise)")


def paired(label_a: str, a: torch.Tensor, label_b: str, b: torch.Tensor) -> Difference:
    """The accuracy difference of two models scored on the same names (``a``, ``b``: 1 where each
    was right), with the half-width of its 95% interval from the per-name differences."""
    d = a.float() - b.float()
    n = len(d)
    half = Z * float(d.std()) / math.sqrt(n) if n > 1 else math.inf
    return Difference(label_a, label_b, float(d.mean()), half)


def correctness(runs: dict[str, Path], data_dir: Path | str | None) -> dict[str, torch.Tensor]:
    """label → 1/0 per test name (the best checkpoint's prediction right or not)."""
    from poetgen.checkpoint import load_checkpoint
    from poetgen.data import encode
    from poetgen.evaluate import classifier_predictions, split_samples

    right = {}
    for label, run in runs.items():
        ck = load_checkpoint(run)
        _, samples, _ = split_samples(ck, data_dir, "test", trained_folder=True)
        preds, labels, _ = classifier_predictions(ck.model, encode(samples, ck.tokenizer, ck.categories))
        right[label] = preds == labels
    return right


# ---------------------------------------------------------------------------------------------
# The conclusion


def conclusion_blocks(rows: list[dict], right: dict[str, torch.Tensor], *, warned: set[str],
                      longrange: LongRangeResult | None = None) -> list[Block]:
    """The conclusion from the classifiers' rows (``compare.run_row``), their per-name
    correctness, the labels of runs with warnings, and the long-range result."""
    said: list[str] = []
    rows = [r for r in rows if r["label"] in right]
    if rows:
        n = len(next(iter(right.values())))
        ranked = sorted(rows, key=lambda r: -float(right[r["label"]].float().mean()))
        intervals = []
        for r in ranked:
            p = float(right[r["label"]].float().mean())
            intervals.append(f"{r['label']} {p:.3f} ± {Z * math.sqrt(p * (1 - p) / n):.3f}")
        said.append(f"Test accuracy on {n:,} held-out names, with 95% intervals: " + ", ".join(intervals) + ".")
        said += _group_sentences(ranked, right, warned)
    if longrange is not None:
        said += _longrange_sentences(longrange)
    said.append(_limits(rows, right, longrange))
    return [Heading(2, "Conclusion"), *(Para(s) for s in said)]


def _group_sentences(ranked: list[dict], right: dict[str, torch.Tensor], warned: set[str]) -> list[str]:
    said = []
    gated = [r for r in ranked if r["model"] not in PLAIN]
    plain = [r for r in ranked if r["model"] in PLAIN]
    if gated and plain:
        best = gated[0]
        diffs = [paired(best["label"], right[best["label"]], p["label"], right[p["label"]]) for p in plain]
        real = [d for d in diffs if d.real and d.diff > 0]
        said.append("Gated against plain cells, paired on the same names (best gated model minus each plain one; "
                    "the interval is 95%): " + "; ".join(d.text() for d in diffs) + ". "
                    + (f"So on names {best['label']} does beat {', '.join(d.b for d in real)}."
                       if real else "So on names this run cannot tell the gated cells from the plain ones."))
    torch_rows = {r["model"]: r for r in ranked if r["cell"] == "torch"}
    for r in ranked:
        twin = torch_rows.get(r["model"])
        if r["cell"] == "custom" and twin is not None:
            d = paired(r["label"], right[r["label"]], twin["label"], right[twin["label"]])
            cost = r["ms_per_step"] / twin["ms_per_step"] if twin.get("ms_per_step") else math.nan
            said.append(f"The hand-written {r['model'].upper()} computes the same function as torch's: "
                        f"{d.text()}, after {r['steps']:,} against {twin['steps']:,} steps; a step cost "
                        f"{cost:.2f}× torch's here.")
    if warned & {r["label"] for r in ranked}:
        said.append("Runs flagged at the top as under-trained may move when trained longer; differences involving "
                    "them say where training stood, not which cell is better.")
    return said


def _longrange_sentences(result: LongRangeResult) -> list[str]:
    from poetgen.lab.longrange_section import HOLDS, verdict

    v = verdict(result)
    if v.textbook is not None:
        return [f"Why the gated cells can win: in the controlled test the tanh RNN learned the key only over short "
                f"gaps ({', '.join(map(str, v.rnn_holds)) or 'none'} at ≥ {HOLDS}) and was at chance from gap "
                f"{v.textbook} on, while the LSTM and GRU held the key at every gap; the gradient reaching the key "
                "vanished for the tanh RNN and stayed for the gated cells. That is the vanishing-gradient story, "
                "measured."]
    return ["The controlled test did not show the tanh RNN at chance while every gated cell held (see its "
            "section): this run gives no measured support for the vanishing-gradient story."]


def _limits(rows: list[dict], right: dict[str, torch.Tensor], longrange: LongRangeResult | None) -> str:
    parts = ["What this run cannot show: every model was trained once, with one seed, so how much the scores "
             "move from seed to seed is not measured here (the intervals above cover only the choice of test "
             "names)"]
    if right:
        n = len(next(iter(right.values())))
        parts.append(f"differences under about {100 * Z * math.sqrt(2 * 0.8 * 0.2 / n):.0f} points cannot be told "
                     f"apart on {n:,} test names")
    parts.append("the models were trained for a fixed time, not to convergence, so the ranking is of what each "
                 "reached in that time")
    if rows:
        parts.append("surnames are short (most under 8 letters), so the names task barely needs long memory: "
                     + ("the controlled test is where that shows" if longrange is not None else
                        "a long-range test would be needed to show it"))
    return "; ".join(parts) + "."
