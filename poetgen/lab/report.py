"""A lab report from training runs: ``report.md`` (PNG files beside it) and ``report.html`` (one
self-contained file, the figures embedded as data URIs), holding what the RNN lab asks for.

For each run: the network as ``print(model)`` shows it, its parameter count, the training settings,
the loss (and accuracy / macro-F1) curves; for a classifier the test-set scores, a per-language
precision/recall table, the confusion matrix and top-3 predictions for Dovesky, Jackson, Hou ...;
for a names generator sample names per language marked new / in the training data; for a poem
model a few sample poems. Runs of one kind are compared first (a table and the curves overlaid),
then the evidence section (``findings``: gradient flow, accuracy by name length, forget gates).

The report is built as a list of blocks (``lab.blocks``: heading, paragraph, code, table, image)
rendered twice, once as Markdown and once as HTML, so the two files always say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from poetgen.defaults import NAME_TEMPERATURE, POEM_CANDIDATES, POEM_TEMPERATURE
from poetgen.errors import PoetgenError
from poetgen.lab.blocks import KINDS, Block, Code, Details, Heading, Image, Para, Row, Table, to_html, to_markdown
from poetgen.lab.findings import evidence_section
from poetgen.paths import fresh_folders

PROBE_NAMES = ("Dovesky", "Jackson", "Hou", "Satoshi", "Nguyen", "Schmidt", "Rossi", "O'Neal")
LANGUAGES = ("Russian", "German", "Spanish", "Chinese", "Japanese", "Italian", "English", "Arabic")
POEM_PROMPTS = (("", "五绝"), ("明月", "五绝"), ("春风", "七绝"), ("", "五律"))
NAMES_PER_LANGUAGE = 8


# ---------------------------------------------------------------------------------------------
# Runs


def check_run(run: Path) -> Path:
    """A run folder has ``metrics.jsonl`` and a ``best.safetensors`` checkpoint."""
    run = Path(run).expanduser()
    if not run.is_dir():
        raise PoetgenError(f"{run} is not a folder (give training run folders, as written by `poetgen train --out`)")
    missing = [name for name in ("best.safetensors", "metrics.jsonl") if not (run / name).is_file()]
    if missing:
        raise PoetgenError(f"{run} is not a training run: no {' or '.join(missing)}")
    return run


def _labels(runs: list[Path]) -> list[str]:
    """Folder names, made longer (parent/name, then a number) only where two would clash."""
    names = [r.name or str(r) for r in runs]
    labels = [f"{r.parent.name}/{r.name}" if names.count(name) > 1 else name for r, name in zip(runs, names,
                                                                                              strict=True)]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if labels.count(label) > 1:
            labels[i] = f"{label} ({seen[label]})"
    return labels


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _module_parameters(model) -> list[list[str]]:
    from poetgen.model import count_parameters

    return [[name, type(child).__name__, f"{count_parameters(child):,}"] for name, child in model.named_children()
            if count_parameters(child)]


@dataclass
class Section:
    """One run in the report: its folded blocks, comparison row (None without a test set), kind
    (``Checkpoint.kind``), what the report shows outside the fold, and what the summaries read."""
    label: str
    run: Path
    blocks: list[Block]
    row: dict | None
    kind: str
    meta: dict
    records: list[dict]
    samples: list[Block] = field(default_factory=list)  # sample names or poems
    top: Table | None = None  # a classifier's top-3 predictions
    confusion: Path | None = None


def _classifier_blocks(ck, evaluation: dict, out: Path, slug: str) -> list[Block]:
    from poetgen.lab.plots import plot_confusion

    labels = evaluation["labels"]
    blocks: list[Block] = [
        Heading(3, f"Test set ({evaluation['samples']} samples)"),
        Table(["metric", "value"], [["accuracy", _pct(evaluation["accuracy"])],
                                    ["macro-F1", _pct(evaluation["macro_f1"])],
                                    ["balanced accuracy", _pct(evaluation["balanced_accuracy"])],
                                    ["loss (cross-entropy)", f"{evaluation['loss']:.4f}"]]),
    ]
    if ck.meta.get("corpus", {}).get("name") == "names":
        blocks.append(Para("The names corpus is split by distinct name string (no name on both sides, "
                           "stratified by language), so these are held-out scores; macro-F1 and balanced "
                           "accuracy weigh every language alike, where accuracy is dominated by Russian."))
    if evaluation.get("note"):
        blocks.append(Para(f"Note: {evaluation['note']}."))
    rows = [[lang, _pct(p), _pct(r), _pct(f), str(n)] for lang, p, r, f, n in zip(
        labels, evaluation["precision"], evaluation["recall"], evaluation["f1"], evaluation["support"], strict=True)]
    blocks += [
        Para("Per language (precision: of the names predicted as this language, the share right; recall: of "
             "this language's names, the share found):"),
        Table(["language", "precision", "recall", "F1", "support"], rows),
    ]
    png = plot_confusion(labels, evaluation["confusion"], out / f"{slug}-confusion.png",
                         title=f"{slug}: test confusion matrix (rows: true, columns: predicted)")
    blocks += [Heading(3, "Confusion matrix"), Image(png, f"confusion matrix of {slug}")]
    top = top_predictions(ck)
    if top is None:
        return [*blocks, Para("Top-3 predictions left out: poetgen.names is not available.")]
    return [*blocks, Heading(3, f"Top-{len(top.headers) - 1} predictions"), top]


def top_predictions(ck) -> Table | None:
    """The classifier's top-3 languages, with probabilities, for PROBE_NAMES."""
    try:
        from poetgen.names.classify import classify
    except ImportError:
        return None
    top = min(3, len(ck.categories))
    rows = []
    for pred in classify(ck, PROBE_NAMES, top=top):
        ranked = [f"{lang} {_pct(p)}" for lang, p in pred.top] + [""] * (top - len(pred.top))
        note = f" (unknown letters: {' '.join(pred.unknown_chars)})" if pred.unknown_chars else ""
        rows.append([pred.name + note, *ranked])
    return Table(["name", *["1st", "2nd", "3rd"][:top]], rows)


def _names_blocks(ck, sampling_seed: int = 0) -> list[Block]:
    try:
        from poetgen.names.generate import generate_names
        from poetgen.sample import Sampling
    except ImportError:
        return [Para("Sample names left out: poetgen.names is not available.")]
    if not ck.categories:
        return [Para("Sample names left out: this model is not conditioned on a language.")]
    languages = [lang for lang in LANGUAGES if lang in ck.categories] or ck.categories[:6]
    rows = []
    for i, lang in enumerate(languages):
        try:
            names = generate_names(ck, lang, NAMES_PER_LANGUAGE,
                                   sampling=Sampling(seed=sampling_seed * 1009 + i))
        except PoetgenError as e:
            rows.append([lang, f"(failed: {e})", ""])
            continue
        rows.append([lang, ", ".join(n for n in names if not ck.has_seen(n)) or "–",
                     ", ".join(n for n in names if ck.has_seen(n)) or "–"])
    return [Heading(3, f"Generated names (temperature {NAME_TEMPERATURE:g}, the library's default; "
                       f"{NAMES_PER_LANGUAGE} distinct per language)"),
            Table(["language", "new names", "names from the training data"], rows)]


def _poem_blocks(ck, sampling_seed: int = 0) -> list[Block]:
    try:
        from poetgen.poems.write import write_poems
        from poetgen.sample import Sampling
    except ImportError:
        return [Para("Sample poems left out: poetgen.poems is not available.")]
    blocks: list[Block] = [Heading(3, f"Sample poems (temperature {POEM_TEMPERATURE:g}, the most fluent of "
                                      f"{POEM_CANDIDATES} candidates: the library's defaults)")]
    for i, (prefix, form) in enumerate(POEM_PROMPTS):
        what = f"{form}, starting with {prefix}" if prefix else form
        try:
            poems = list(write_poems(ck, prefix, form=form, n=1,
                                     sampling=Sampling(seed=sampling_seed + i)))
        except PoetgenError as e:
            blocks.append(Para(f"{what}: failed ({e})"))
            continue
        for poem in poems:
            text = re.sub(r"([。？！])", "\\1\n", str(getattr(poem, "text", poem))).strip()  # a couplet per row
            group = getattr(poem, "rhyme_group", None)
            blocks += [Para(f"{what} (rhyme group found: {group or 'none'}):"), Code(text)]
    return blocks


def run_section(run: Path, label: str, out: Path, *, data_dir=None, samples: bool = True) -> Section:
    """One run's part of the report (see ``Section``)."""
    from poetgen.checkpoint import load_checkpoint
    from poetgen.evaluate import evaluate_split
    from poetgen.lab.compare import run_row
    from poetgen.lab.plots import plot_curves, read_metrics, read_train_log
    from poetgen.model import count_parameters

    ck = load_checkpoint(run)
    records = read_metrics(run)
    slug = _slug(label)
    train = ck.meta.get("train", {})
    what = {"classify": "names classifier", "names": "names generator", "poems": "poem language model"}[ck.kind]
    params = count_parameters(ck.model)
    blocks: list[Block] = [
        Para(f"`{run}` — {what}: {ck.config.model.upper()} ({ck.config.cell} cells) on corpus "
             f"`{train.get('corpus', '?')}`, {params:,} trainable parameters."),
        Heading(3, "Network structure (print(model))"),
        Code(str(ck.model)),
        Table(["module", "type", "parameters"], [*_module_parameters(ck.model), ["total", "", f"{params:,}"]]),
        Heading(3, "Training"),
    ]
    if records:
        last = records[-1]
        facts = [["steps", str(last["step"])], ["epochs", _fmt(last.get("epoch"))],
                 ["wall time (s)", _fmt(last.get("wall_s"))], ["final train loss", _fmt(last.get("train_loss"))],
                 ["final validation loss", _fmt(last.get("val_loss"))]]
        if "val_accuracy" in last:
            facts += [["final validation accuracy", _pct(last["val_accuracy"])],
                      ["final validation macro-F1", _pct(last.get("val_macro_f1", float("nan")))]]
        blocks.append(Table(["after training", "value"], facts))
        png = plot_curves(records, out / f"{slug}-curves.png", title=f"{label}: training curves",
                          train_log=read_train_log(run))
        blocks.append(Image(png, f"training curves of {label}"))
    else:
        blocks.append(Para("No evaluations recorded yet: no curves."))

    try:
        evaluation = evaluate_split(ck, data_dir, "test", trained_folder=True)
    except PoetgenError as e:
        evaluation = None
        blocks.append(Para(f"Test-set evaluation left out: {e}"))
    if evaluation is not None and ck.kind == "classify":
        blocks += _classifier_blocks(ck, evaluation, out, slug)
    elif evaluation is not None:
        blocks.append(Para(f"Held-out test NLL: {evaluation['nll']:.4f} nats per character "
                           f"(perplexity {evaluation['ppl']:.2f}) over {evaluation['tokens']:,} characters."))
    shown = ([] if not samples else _names_blocks(ck) if ck.kind == "names" else
             _poem_blocks(ck) if ck.kind == "poems" else [])
    row = run_row(run, label, data_dir, evaluation) if evaluation is not None and records else None
    section = Section(label, run, blocks, row, ck.kind, ck.meta, records, shown)
    if evaluation is not None and ck.kind == "classify":
        last = blocks[-1]
        section.top = last if isinstance(last, Table) and last.headers[0] == "name" else None
        section.confusion = out / f"{slug}-confusion.png"
    return section


def comparison_blocks(labels: list[str], runs: list[Path], rows: list[dict], png: Path, kind: str) -> list[Block]:
    """A comparison table and the overlaid curves of runs of one kind (a classifier's curves do
    not belong on a language model's axes)."""
    from poetgen.lab.compare import cell_cost, table_of
    from poetgen.lab.plots import plot_compare

    blocks: list[Block] = [Heading(2, f"Comparison of the {KINDS[kind]}")]
    if rows:
        headers, cells = table_of(rows)
        blocks.append(Table(headers, cells))
    steps = {r["steps"] for r in rows}
    cost = cell_cost(rows)
    blocks.append(Para(
        (f"All runs trained for {steps.pop()} steps. " if len(steps) == 1 else
         "The runs trained for different numbers of steps (a time budget: a faster step gets more of them). ")
        + "Scores are of each run's best checkpoint (lowest validation loss) on the test split. "
        + (cost + " " if cost else "")
        + "ms/step is the median step time when the runs came from `poetgen compare` (evaluations excluded), "
        "else wall time / steps."))
    plot_compare(dict(zip(labels, runs, strict=True)), png)
    return [*blocks, Image(png, f"loss and accuracy curves of the {KINDS[kind]}, overlaid")]


def write_report(runs: list[Path], out: Path, *, data_dir: Path | str | None = None, samples: bool = True,
                 evidence: bool = True, preface: list[Block] | None = None, longrange=None) -> Path:
    """Write ``out/report.md`` (figures as PNG files beside it) and ``out/report.html`` (one file).

    In order: the title and ``preface``; warnings about under-trained runs; the comparison of the
    runs of each kind (classifiers, names generators, poem models) with their settings folded;
    the confusion matrices and top-3 predictions of the tutorial RNN and the best gated
    classifier; ``longrange`` (a ``lab.longrange.LongRangeResult``: the controlled test);
    ``evidence`` (why the LSTM beats the RNN, measured on the runs, ``lab.findings``); the
    hand-written cells' equations and code; the conclusion; sample names and poems; and every run
    in detail, folded. Returns the path of ``report.md``; ``report.html`` lies beside it. A report
    that fails leaves no folder behind where there was none.
    """
    with fresh_folders(Path(out), whole=True):
        return _write_report(runs, out, data_dir=data_dir, samples=samples, evidence=evidence, preface=preface,
                             longrange=longrange)


def _write_report(runs: list[Path], out: Path, *, data_dir: Path | str | None, samples: bool, evidence: bool,
                  preface: list[Block] | None, longrange) -> Path:
    from poetgen import __version__
    from poetgen.lab.cellcode import cell_blocks
    from poetgen.lab.conclusion import conclusion_blocks, correctness, run_warnings, warning_blocks
    from poetgen.lab.settings import settings_blocks

    runs = [check_run(r) for r in runs]
    if not runs:
        raise PoetgenError("give at least one training run folder")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise PoetgenError(f"{out} is a file; the report needs a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PoetgenError(f"cannot create {out}: {e.strerror or e}", code=1) from None
    labels = _labels(runs)
    sections = [run_section(run, label, out, data_dir=data_dir, samples=samples)
                for run, label in zip(runs, labels, strict=True)]
    groups: dict[str, list[Section]] = {}
    for section in sections:
        groups.setdefault(section.kind, []).append(section)

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = "poetgen training report"
    blocks: list[Block] = [Heading(1, title),
                           Para(f"Generated {stamp} by poetgen {__version__} from {len(runs)} run(s): "
                                + ", ".join(f"`{r}`" for r in runs) + "."), *(preface or [])]
    warnings = {s.label: run_warnings(s.label, s.kind, s.records, s.row) for s in sections}
    blocks += warning_blocks([w for said in warnings.values() for w in said])
    for kind, members in groups.items():
        if len(members) > 1:
            png = out / ("compare.png" if sum(len(m) > 1 for m in groups.values()) == 1 else f"compare-{kind}.png")
            blocks += comparison_blocks([m.label for m in members], [m.run for m in members],
                                        [m.row for m in members if m.row is not None], png, kind)
        blocks += settings_blocks({m.label: m.meta for m in members}, kind)
    classifiers = [s for s in groups.get("classify", []) if s.row is not None]
    blocks += _highlights(classifiers)
    if longrange is not None:
        from poetgen.lab.longrange_section import longrange_blocks

        blocks += longrange_blocks(longrange, out)
    if evidence:
        blocks += evidence_section(list(zip(labels, runs, strict=True)), out, data_dir=data_dir)
    blocks += cell_blocks(sorted({s.meta.get("train", {}).get("model", {}).get("model", "") for s in sections
                                  if s.meta.get("train", {}).get("model", {}).get("cell") == "custom"}))
    if classifiers:
        right = correctness({s.label: s.run for s in classifiers}, data_dir)
        blocks += conclusion_blocks([s.row for s in classifiers], right, longrange=longrange,
                                    warned={label for label, said in warnings.items() if said})
    for s in sections:
        if s.samples:
            blocks += [Heading(2, f"{s.label}: samples"), *s.samples]
    blocks.append(Heading(2, "Every run in detail"))
    blocks += [Details(f"{s.label} — {s.kind}: print(model), curves"
                       + (", per-language scores, confusion matrix, top-3" if s.kind == "classify" else
                          ", test NLL"), s.blocks) for s in sections]
    md = out / "report.md"
    try:
        md.write_text(to_markdown(blocks), encoding="utf-8")
        (out / "report.html").write_text(to_html(blocks, title), encoding="utf-8")
    except OSError as e:
        raise PoetgenError(f"cannot write the report in {out}: {e.strerror or e}", code=1) from None
    return md


def _highlights(classifiers: list[Section]) -> list[Block]:
    """The confusion matrices and top-3 predictions of the tutorial RNN (the assignment's own) and
    of the best gated classifier by test accuracy; the others' are in the folded details."""
    gated = [s for s in classifiers if s.row["model"] in ("lstm", "gru")]
    chosen = [s for s in classifiers if s.row["model"] == "tutorial-rnn"][:1]
    if gated:
        chosen.append(max(gated, key=lambda s: s.row.get("test_accuracy") or 0.0))
    if not chosen:
        return []
    figures = [Image(s.confusion, f"confusion matrix of {s.label}") for s in chosen
               if s.confusion is not None and s.confusion.is_file()]
    tops = [Details(f"{s.label}: top-3 predictions", [s.top]) for s in chosen if s.top is not None]
    return [Heading(2, f"Confusion matrices and top-3 predictions: {' and '.join(s.label for s in chosen)}"),
            Para("On the test split (rows: the true language, columns: the predicted one); the other models' are "
                 "in their details at the end."), Row(figures), Row(tops)]
