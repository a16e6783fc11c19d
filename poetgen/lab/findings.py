"""The report's evidence section — "why does the LSTM beat the RNN?" — answered from the runs.

Each run is measured with ``lab.evidence`` on its validation split; the figures come from
``lab.plots``; every sentence is computed from the numbers, and says so when they do not show the
textbook story (gates keep the gradient and the memory alive over long sequences, so gated cells
win most on long names). ``evidence.json`` beside the report keeps the numbers.

Models count as *gated* (LSTM, GRU) or *plain* (``rnn``, the tutorial's RNN); the comparisons
between the two groups are made only when the report holds both.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetgen.errors import PoetgenError
from poetgen.lab.blocks import KINDS, Block, Details, Heading, Image, Para, Table
from poetgen.lab.evidence import Evidence, GateSummary, GradientFlow, LengthBucket, Recurrence

if TYPE_CHECKING:
    from poetgen.checkpoint import Checkpoint
    from poetgen.data import Example

GATED = ("lstm", "gru")
FAR = 10  # the distance the comparisons quote (less when the names are shorter)
MAX_EXAMPLES = {"classify": 2000, "names": 2000, "poems": 500}  # validation examples measured per run
# (the names split has ~1,800; 500 poems of 20-60 characters are plenty, and their backward pass costs)


# ---------------------------------------------------------------------------------------------
# Numbers as text


def num(x: float | None) -> str:
    """A share or gradient in few characters: 0.42, 3.1e-04; – when unknown."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.2f}" if 0.01 <= abs(x) < 1000 or x == 0 else f"{x:.1e}"


def units(n: int, unit: str) -> str:
    """3 letters, 1 letter."""
    return f"{n} {unit}{'' if n == 1 else 's'}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "–"


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


# ---------------------------------------------------------------------------------------------
# Measuring the runs


@dataclass
class Measured:
    ck: Checkpoint
    examples: list[Example]  # the validation examples measured
    evidence: Evidence


def measure_runs(runs: list[tuple[str, Path]], data_dir: Path | str | None = None
                 ) -> tuple[dict[str, Measured], list[str]]:
    """label → its measurements for every run whose validation split can be read, and one note
    per run left out."""
    from poetgen.checkpoint import load_checkpoint
    from poetgen.data import encode
    from poetgen.evaluate import split_samples
    from poetgen.lab.evidence import measure

    measured, notes = {}, []
    for label, run in runs:
        ck = load_checkpoint(run)
        try:
            _, samples, _ = split_samples(ck, data_dir, "val", trained_folder=True)
        except PoetgenError as e:
            notes.append(f"{label} left out: {e}")
            continue
        examples = encode(samples, ck.tokenizer, ck.categories)[: MAX_EXAMPLES[ck.kind]]
        if not examples:
            notes.append(f"{label} left out: its validation split is empty")
            continue
        measured[label] = Measured(ck, examples, measure(ck.model, examples))
    return measured, notes


def initial_gates(m: Measured) -> GateSummary:
    """The forget gates of the same network before training (same seed, so the same initial
    weights as the run), on the same examples: what training changed."""
    import torch

    from poetgen.lab.evidence import forget_gates, summarise_gates
    from poetgen.networks import build_model

    torch.manual_seed(int(m.ck.meta.get("train", {}).get("seed", 0)))  # as the trainer does before building
    return summarise_gates(forget_gates(build_model(m.ck.config), m.examples))


# ---------------------------------------------------------------------------------------------
# Gradient flow


def falls_below(flow: GradientFlow, share: float = 0.01) -> int | None:
    """The first distance at which the relative gradient is under ``share`` (None: never)."""
    return next((d for d, r in zip(flow.distances, flow.relative(), strict=True) if r < share), None)


def gradient_table(flows: dict[str, GradientFlow], unit: str) -> Table:
    shown = [d for d in (1, 2, 5, FAR) if any(d < len(f.distances) for f in flows.values())]
    rows = []
    for label, flow in flows.items():
        below = falls_below(flow)
        rows.append([label, num(flow.mean_norm[0]), *(num(flow.at(d)) for d in shown),
                     str(below) if below is not None else f"> {len(flow.distances) - 1}"])
    return Table(["model", f"‖∂loss/∂x‖ at the last {unit}", *(f"share at {d} back" for d in shown),
                  "share < 1% from distance"], rows)


def recurrence_sentence(label: str, r: Recurrence, unit: str) -> str:
    """Why a plain RNN's gradient falls (or not) as it does, from its recurrent matrix W."""
    if r.linear:
        return (f"{label} has no nonlinearity between steps (hidden = i2h(letter, hidden)), so each {unit} back "
                f"multiplies the gradient by its recurrent matrix; the largest eigenvalue has modulus "
                f"{num(r.radius)}, so over {units(FAR, unit)} the longest-lived direction scales by "
                f"{num(r.radius**FAR)}.")
    return (f"{label}: through tanh each {unit} back scales the gradient by at most the recurrent matrix's "
            f"largest singular value, {num(r.norm)} ({num(r.norm**FAR)} over {units(FAR, unit)}: a bound, "
            "and tanh′ ≤ 1 shrinks it).")


def gradient_sentences(flows: dict[str, GradientFlow], gated: set[str], unit: str,
                       recurrences: dict[str, Recurrence] | None = None) -> list[str]:
    """What the gradient-flow figure shows, in numbers (``recurrences``: the plain RNNs')."""
    recurrences = recurrences or {}
    far = min(FAR, *(len(f.distances) - 1 for f in flows.values()))
    if far < 1:
        return [f"Too few examples reach back more than one {unit}: no comparison over distance."]
    shares = {label: f.at(far) for label, f in flows.items()}
    said = [f"{units(far, unit)} before the end the gradient is "
            + _names([f"{num(share)} of its value at the last {unit} for {label}" if i == 0 else
                      f"{num(share)} for {label}" for i, (label, share) in enumerate(shares.items())]) + "."]
    if len(flows) > 1:
        top, low = max(shares, key=shares.get), min(shares, key=shares.get)
        ratio = shares[top] / shares[low] if shares[low] > 0 else math.inf
        said.append(f"{top} keeps {ratio:,.0f} times the share {low} keeps." if ratio >= 2 else
                    f"The models keep similar shares (within a factor {ratio:.1f}).")
    for label, f in flows.items():
        rel = f.relative()
        peak = max(range(1, far + 1), key=lambda d: rel[d])
        # "explodes" only when the growth lasts: still at least twice the last letter's gradient at
        # the far end; a bump that falls back is called a bump
        if rel[far] >= 2:
            said.append(f"In {label} the gradient grows going back, to {num(rel[far])} times its value at the last "
                        f"{unit} {units(far, unit)} back: it grows rather than vanishes over these distances.")
        elif rel[peak] >= 1.2:
            said.append(f"In {label} the gradient first rises going back ({num(rel[peak])} times its value at the "
                        f"last {unit}, {units(peak, unit)} back), then falls to {num(rel[far])} by "
                        f"{units(far, unit)} back.")
    said += [recurrence_sentence(label, r, unit) for label, r in recurrences.items()]
    verdict = _group_verdict(shares, gated)
    if verdict == "textbook":
        said.append(f"This is the textbook picture: {units(far, unit)} back every gated model keeps more of its "
                    "gradient than every plain RNN, so early inputs still shape what the gated models learn.")
    elif verdict == "reversed":
        said.append(f"This is not the textbook picture: {units(far, unit)} back the plain RNNs keep more of their "
                    "gradient than the gated models (a linear recurrence such as the tutorial RNN's does not squash "
                    "it; the controlled long-range test, where present, compares the cells alone).")
    elif verdict == "mixed":
        said.append(f"The picture is mixed: {units(far, unit)} back some plain RNN keeps more of its gradient than "
                    "some gated model, so vanishing gradients alone do not order these runs (the controlled "
                    "long-range test, where present, compares the cells alone).")
    return said


def _group_verdict(values: dict[str, float | None], gated: set[str]) -> str | None:
    """'textbook' when every gated model's value beats every plain one's, 'reversed' for the
    opposite, 'mixed' otherwise; None without both groups."""
    g = [v for k, v in values.items() if k in gated and v is not None]
    p = [v for k, v in values.items() if k not in gated and v is not None]
    if not g or not p:
        return None
    if min(g) > max(p):
        return "textbook"
    return "reversed" if max(g) < min(p) else "mixed"


# ---------------------------------------------------------------------------------------------
# Accuracy by length


def length_table(buckets: dict[str, list[LengthBucket]]) -> Table:
    first = next(iter(buckets.values()))
    rows = [[f"{b.label} letters", str(b.count), *(pct(buckets[label][i].accuracy) for label in buckets)]
            for i, b in enumerate(first)]
    return Table(["name length", "names", *buckets], rows)


def length_sentences(buckets: dict[str, list[LengthBucket]], gated: set[str]) -> list[str]:
    first = next(iter(buckets.values()))
    filled = [i for i, b in enumerate(first) if b.count]
    if len(filled) < 2:
        return ["All names fall in one length bucket: nothing to compare across lengths."]
    short, long = filled[0], filled[-1]
    said = [f"From the shortest names ({first[short].label} letters, {first[short].count}) to the longest "
            f"({first[long].label}, {first[long].count}) accuracy goes "
            + _names([f"{pct(rows[short].accuracy)} → {pct(rows[long].accuracy)} for {label}"
                      for label, rows in buckets.items()]) + "."]
    g = [label for label in buckets if label in gated]
    p = [label for label in buckets if label not in gated]
    if not g or not p:
        return said

    def lead(i: int) -> tuple[float, float]:
        """Best gated minus best plain accuracy in bucket i, and the standard error of that gap."""
        best_g = max((buckets[label][i] for label in g), key=lambda b: b.accuracy)
        best_p = max((buckets[label][i] for label in p), key=lambda b: b.accuracy)
        se = math.sqrt(sum(b.accuracy * (1 - b.accuracy) / b.count for b in (best_g, best_p)))
        return best_g.accuracy - best_p.accuracy, se

    (lead_short, se_short), (lead_long, se_long) = lead(short), lead(long)
    change, noise = lead_long - lead_short, 2 * math.hypot(se_short, se_long)
    gap = (f"The best gated model leads the best plain RNN by {100 * lead_short:+.1f} points on the shortest "
           f"names and by {100 * lead_long:+.1f} on the longest ({first[long].count} names, so differences under "
           f"about {100 * noise:.0f} points are noise)")
    if change > noise:
        said.append(gap + ": the lead grows with length, as the vanishing-gradient story predicts.")
    elif change < -noise:
        said.append(gap + ": the lead shrinks with length, which is not what the textbook story predicts.")
    else:
        said.append(gap + ": within that noise the lead does not change with length, so these runs do not show "
                    "long names as the place where the gated models win.")
    return said


# ---------------------------------------------------------------------------------------------
# Forget gates


def gate_table(summaries: dict[str, GateSummary], initial: dict[str, GateSummary]) -> Table:
    rows = [[label, num(s.mean), num(s.median), pct(s.above), pct(s.below), num(initial[label].mean),
             pct(initial[label].above), f"{s.count:,}"] for label, s in summaries.items()]
    return Table(["model", "mean σ(f)", "median", "share > 0.9", "share < 0.1", "mean before training",
                  "share > 0.9 before training", "gate values"], rows)


def gate_sentences(summaries: dict[str, GateSummary], initial: dict[str, GateSummary], unit: str) -> list[str]:
    said = []
    for label, s in summaries.items():
        before = initial[label]
        change = (f"raised the mean forget gate from {num(before.mean)} to {num(s.mean)}" if s.mean > before.mean + 0.02
                  else f"lowered the mean forget gate from {num(before.mean)} to {num(s.mean)}"
                  if s.mean < before.mean - 0.02 else
                  f"left the mean forget gate where it started ({num(before.mean)} → {num(s.mean)})")
        said.append(f"{label}: training {change}; {pct(s.above)} of the gate values are above 0.9 (before "
                    f"training {pct(before.above)}) and {pct(s.below)} below 0.1.")
    said.append(f"A unit whose gate stays above 0.9 keeps at least {pct(0.9**FAR)} of its cell state over {FAR} "
                f"{unit}s; one at the mean gate of {_names(list(summaries))} about "
                + _names([pct(s.mean**FAR) for s in summaries.values()]) + ".")
    if len(summaries) > 1:
        means = sorted(s.mean for s in summaries.values())
        said.append(f"The LSTMs' mean gates lie within {num(means[-1] - means[0])} of each other.")
    return said


# ---------------------------------------------------------------------------------------------
# The section


def evidence_section(runs: list[tuple[str, Path]], out: Path, *, data_dir: Path | str | None = None
                     ) -> list[Block]:
    """The blocks of the evidence section for ``runs`` (label, run folder), figures written into
    ``out`` beside ``evidence.json``; classifiers first, then language models."""
    from poetgen.lab.plots import colours_of

    measured, notes = measure_runs(runs, data_dir)
    colours = colours_of([label for label, _ in runs])
    blocks: list[Block] = [
        Heading(2, "Why does the LSTM beat the RNN? Evidence from these runs"),
        Para("Measured on each run's best checkpoint over its validation split (at most "
             f"{MAX_EXAMPLES['classify']:,} names or {MAX_EXAMPLES['poems']:,} poems), in eval mode. Gated "
             "models: LSTM and GRU; plain: `rnn` and the tutorial's RNN."),
        *(Para(f"Note: {n}.") for n in notes),
    ]
    record: dict = {}
    for kind in KINDS:  # models are compared only with models of their own kind and corpus
        group = {label: m for label, m in measured.items() if m.ck.kind == kind}
        if group:
            found = _group_blocks(kind, group, out, colours, record)
            # the language models' evidence is a bonus beside the classifiers': folded away
            blocks += found if kind == "classify" else [Details(f"Evidence from the {KINDS[kind]}", found)]
    try:
        (out / "evidence.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    except OSError as e:
        raise PoetgenError(f"cannot write {out / 'evidence.json'}: {e.strerror or e}", code=1) from None
    return blocks


def _group_blocks(kind: str, group: dict[str, Measured], out: Path, colours: dict[str, str], record: dict
                  ) -> list[Block]:
    """The evidence of the runs of one kind (``Checkpoint.kind``)."""
    from poetgen.lab.evidence import summarise_gates
    from poetgen.lab.plots import plot_accuracy_by_length, plot_forget_gates, plot_gradient_flow

    classify = kind == "classify"
    unit = "character" if kind == "poems" else "letter"
    prefix = "evidence" if classify else f"evidence-{kind}"
    gated = {label for label, m in group.items() if m.ck.config.model in GATED}
    flows = {label: m.evidence.gradient for label, m in group.items()}
    recurrences = {label: m.evidence.recurrence for label, m in group.items() if m.evidence.recurrence}
    loss = ("the cross-entropy of the name's language" if classify else
            f"the NLL of the last prediction, <eos> after the {'poem' if kind == 'poems' else 'name'}")
    png = plot_gradient_flow(flows, out / f"{prefix}-gradient.png", unit, colours)
    blocks: list[Block] = [
        Heading(3, f"Gradient flow ({KINDS[kind]})"),
        Para(f"‖∂loss/∂x_t‖, the size of the gradient at the input of step t, against the distance from the "
             f"end, averaged over the examples that reach back that far (loss: {loss}; x_t is the embedded "
             f"{unit}, or the tutorial RNN's one-hot {unit})."),
        Image(png, f"gradient norm against distance from the end ({KINDS[kind]})"),
        Details("The numbers", [gradient_table(flows, unit)]),
        *(Para(s) for s in gradient_sentences(flows, gated, unit, recurrences)),
    ]
    entry = record.setdefault(kind, {})
    entry["gradient"] = {label: {**asdict(f), "relative": f.relative()} for label, f in flows.items()}
    entry["recurrence"] = {label: asdict(r) for label, r in recurrences.items()}
    if classify:
        buckets = {label: m.evidence.lengths for label, m in group.items()}
        png = plot_accuracy_by_length(buckets, out / f"{prefix}-length.png", colours)
        blocks += [Heading(3, "Accuracy by name length"), Image(png, "accuracy by name length"),
                   Details("The numbers", [length_table(buckets)]),
                   *(Para(s) for s in length_sentences(buckets, gated))]
        entry["length"] = {label: [{**asdict(b), "label": b.label, "accuracy": b.accuracy} for b in rows]
                           for label, rows in buckets.items()}
    lstms = {label: m for label, m in group.items() if m.evidence.gates is not None}
    if lstms:
        summaries = {label: summarise_gates(m.evidence.gates) for label, m in lstms.items()}
        initial = {label: initial_gates(m) for label, m in lstms.items()}
        png = plot_forget_gates({label: m.evidence.gates.numpy() for label, m in lstms.items()}, summaries,
                                out / f"{prefix}-gates.png", colours)
        blocks += [Heading(3, f"Forget gates ({KINDS[kind]}: {_names(list(lstms))})"),
                   Para("σ(f_t) of every unit at every real step of the validation inputs, recomputed from each "
                        "LSTM's weights (c_t = f_t · c_{t−1} + i_t · g_t: the gate is the share of the cell state "
                        "kept from one step to the next)."),
                   Image(png, "forget-gate activations"), Details("The numbers", [gate_table(summaries, initial)]),
                   *(Para(s) for s in gate_sentences(summaries, initial, unit))]
        entry["gates"] = {label: {"trained": asdict(s), "initial": asdict(initial[label])}
                          for label, s in summaries.items()}
    return blocks
