"""`poetgen corpus …` and `poetgen train`: the data and the training run, with a progress bar."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

import poetgen.cli.base as base
from poetgen.cli.base import DATA, MODEL, OPTIM, CorpusScript, DataDir, Json, app, corpus_app, handled, path_value, show
from poetgen.corpora import CORPORA
from poetgen.errors import PoetgenError

NAMED = ", ".join(CORPORA)  # the corpora poetgen knows by name: "tang, songci, names"
ONE_OF = f"{', '.join(list(CORPORA)[:-1])} or {list(CORPORA)[-1]}"  # "tang, songci or names"

# ---------------------------------------------------------------------------------------------
# corpus


@corpus_app.command("list")
@handled
def corpus_list(data_dir: DataDir = None) -> None:
    """Corpora poetgen knows, and whether they are in the data folder."""
    from rich.table import Table

    from poetgen import download, paths

    root = paths.data_dir(data_dir)
    table = Table(title=f"corpora in {escape(str(root))}")
    for col in ("corpus", "status", "description"):
        table.add_column(col)
    for name in download.corpus_names():
        problems = download.verify_corpus(name, root)
        status = "[green]ready[/]" if not problems else f"[yellow]{len(problems)} file(s) missing or changed[/]"
        table.add_row(name, status, download.manifest(name).get("description", ""))
    base.out.print(table)
    base.out.print("Any UTF-8 text file (one sample per line) also works: [bold]--corpus path/to/file.txt[/]")


@corpus_app.command("info")
@handled
def corpus_info(
    name: Annotated[str, typer.Argument(help=f"{NAMED}, or a path to a text file.")],
    data_dir: DataDir = None,
    script: CorpusScript = "simplified",
    as_json: Json = False,
) -> None:
    """Counts per form / language and split, vocabulary size, length histogram."""
    from poetgen.corpora import corpus_info as info_of
    from poetgen.corpora import load_corpus
    from poetgen.render import corpus_info_tables

    info = info_of(load_corpus(name, data_dir, script=script))
    show(info, as_json, corpus_info_tables)


@corpus_app.command("prepare")
@handled
def corpus_prepare(
    name: Annotated[str, typer.Argument(help=f"{ONE_OF}.")],
    data_dir: DataDir = None,
    script: CorpusScript = "simplified",
) -> None:
    """Clean, de-duplicate and split a corpus once (cached; training does this on demand too)."""
    from poetgen.corpora import load_corpus

    corpus = load_corpus(name, data_dir, script=script)
    counts = {k: len(corpus.split(k)) for k in ("train", "val", "test")}
    base.out.print(f"[green]prepared[/] {escape(name)}: {len(corpus.samples)} samples {counts}, "
              f"fingerprint {corpus.fingerprint}")


@corpus_app.command("download")
@handled
def corpus_download(
    name: Annotated[str, typer.Argument(help=f"{ONE_OF}.")],
    data_dir: DataDir = None,
    url: Annotated[str | None, typer.Option(help="Download from this mirror instead.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the archive.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download a corpus (needs internet), check its SHA-256 and unpack it into the data folder."""
    from poetgen import download, paths

    if url is not None and not url.strip():
        raise PoetgenError("--url is empty (leave it out to download from the manifest's address)")
    parts = urllib.parse.urlsplit(url.strip()) if url is not None else None
    if parts is not None and (parts.scheme.lower() not in ("http", "https", "ftp", "file") or
                              not (parts.netloc or parts.path)):
        raise PoetgenError(f"--url must be an http://, https://, ftp:// or file:// address, got '{url}'")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise PoetgenError("--sha256 must be 64 hexadecimal digits")
    root = Path(data_dir).expanduser() if data_dir else paths.data_dir(None)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PoetgenError(f"cannot create data folder {root}: {e.strerror}", code=1) from None
    where = download.download_corpus(name, root, url=url, sha256=sha256, progress=not quiet)
    base.out.print(f"[green]downloaded[/] {escape(name)} into {escape(str(where))}")


# ---------------------------------------------------------------------------------------------
# train


@app.command()
@handled
def train(
    corpus: Annotated[str, typer.Option(help=f"{NAMED}, or a UTF-8 text file.", rich_help_panel=DATA)]
    = "tang",
    task: Annotated[str, typer.Option(help="lm (language model) or classify (names → language).",
                                      rich_help_panel=DATA)] = "lm",
    form: Annotated[list[str] | None, typer.Option(help="Poem forms to train on (repeatable; default the four "
                                                   "regulated forms; 'other' for 古体).", rich_help_panel=DATA)] = None,
    script: Annotated[str, typer.Option(help="simplified or traditional.", rich_help_panel=DATA)] = "simplified",
    tokenizer: Annotated[str, typer.Option(help="char, jieba or sentencepiece.", rich_help_panel=DATA)] = "char",
    data_dir: DataDir = None,
    model: Annotated[str | None, typer.Option(help="rnn, lstm or gru.", rich_help_panel=MODEL)] = None,
    cell: Annotated[str | None, typer.Option(help="torch (fast kernels) or custom (hand-written gates).",
                                             rich_help_panel=MODEL)] = None,
    layers: Annotated[int | None, typer.Option(rich_help_panel=MODEL)] = None,
    hidden: Annotated[int | None, typer.Option(rich_help_panel=MODEL)] = None,
    embed: Annotated[int | None, typer.Option(rich_help_panel=MODEL)] = None,
    dropout: Annotated[float | None, typer.Option(rich_help_panel=MODEL)] = None,
    adaptive: Annotated[bool | None, typer.Option("--adaptive/--full-softmax", help="Adaptive softmax output.",
                                                  rich_help_panel=MODEL)] = None,
    tie: Annotated[bool | None, typer.Option("--tie/--no-tie", help="Tie input and output embeddings.",
                                             rich_help_panel=MODEL)] = None,
    ngram: Annotated[int | None, typer.Option(help="Classifier: hashed character n-grams up to this length "
                                              "beside the RNN (0 = off).", rich_help_panel=MODEL)] = None,
    generative: Annotated[int | None, typer.Option(help="Classifier: a language model of this hidden size "
                                                   "per layer beside it, deciding with it (0 = off).",
                                                   rich_help_panel=MODEL)] = None,
    styles: Annotated[int | None, typer.Option(help="Poems: condition on the N most prolific poets too "
                                               "(write --style; 0 = no poets).", rich_help_panel=DATA)] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Names: add spelling variants "
                                                 "(feminine forms, no diacritics) to the training names.",
                                                 rich_help_panel=DATA)] = None,
    bidirectional: Annotated[bool | None, typer.Option("--bidirectional/--unidirectional",
                                                       help="Classifier reads names both ways.",
                                                       rich_help_panel=MODEL)] = None,
    epochs: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.", rich_help_panel=OPTIM)] = None,
    max_time: Annotated[float | None, typer.Option(help="Stop after this many seconds.", rich_help_panel=OPTIM)]
    = None,
    batch_size: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.", rich_help_panel=OPTIM)] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or adam.", rich_help_panel=OPTIM)] = None,
    weight_decay: Annotated[float | None, typer.Option(rich_help_panel=OPTIM)] = None,
    class_weight_power: Annotated[float | None, typer.Option(
        help="Weight each sample's loss by (N / count of its class)^P: 0 plain, 1 balanced.",
        rich_help_panel=OPTIM)] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Classifier label smoothing.",
                                                          rich_help_panel=OPTIM)] = None,
    schedule: Annotated[str | None, typer.Option(help="cosine, plateau or constant (after warmup).",
                                                 rich_help_panel=OPTIM)] = None,
    clip: Annotated[float | None, typer.Option(help="Max gradient norm (0 = off).", rich_help_panel=OPTIM)] = None,
    patience: Annotated[int | None, typer.Option(help="Early stopping after N evaluations without improvement.",
                                                 rich_help_panel=OPTIM)] = None,
    eval_every: Annotated[int | None, typer.Option(help="Evaluate every N steps.", rich_help_panel=OPTIM)] = None,
    seed: Annotated[int, typer.Option(rich_help_panel=OPTIM)] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32, bf16 or fp16 (autocast).")] = "fp32",
    threads: base.Threads = None,
    out_dir: Annotated[Path | None, typer.Option("--out", parser=path_value,
                                                 help="Run folder (default runs/CORPUS-TASK-MODEL).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a language model or a classifier; writes best/last checkpoints and metrics.jsonl."""
    from poetgen.config import preset
    from poetgen.model import with_model
    from poetgen.train import Trainer, describe

    cfg = preset(corpus, task)
    if model is not None:
        cfg.model = with_model(cfg.model, model)
    overrides = {"cell": cell, "layers": layers, "hidden": hidden, "embed": embed,
                 "dropout": dropout, "adaptive": adaptive, "tie": tie, "bidirectional": bidirectional,
                 "ngram": ngram, "generative": generative}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg.model, key, value)
    settings = {"epochs": epochs, "max_steps": max_steps, "max_time": max_time, "batch_size": batch_size, "lr": lr,
                "optimizer": optimizer, "schedule": schedule, "clip": clip, "patience": patience,
                "eval_every": eval_every, "weight_decay": weight_decay, "class_weight_power": class_weight_power,
                "label_smoothing": label_smoothing, "augment": augment, "styles": styles}
    for key, value in settings.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.forms, cfg.script, cfg.tokenizer = list(form or []), script, tokenizer
    cfg.data_dir = str(data_dir) if data_dir else None
    cfg.seed, cfg.device, cfg.precision, cfg.threads = seed, device, precision, threads or 0
    out_path = out_dir or Path("runs") / f"{Path(corpus).stem}-{task}-{cfg.model.model}"
    trainer = Trainer(cfg, out_path, resume=resume)
    # --quiet: no facts and no progress bar; nor from the other processes of a torchrun job
    report = not quiet and trainer.rank == 0
    if resume and trainer.done():
        base.err.print(f"{escape(str(out_path))}: the run is already complete ({trainer.done()}); nothing to train. "
                       "To continue it, resume with a larger --max-steps, --max-time or --epochs.", soft_wrap=True)
        return
    if report:
        facts = describe(trainer)
        base.err.print(f"{'resuming' if resume else 'training'} {cfg.model.model}/{cfg.model.cell} on {escape(corpus)} "
                  f"({facts['parameters']:,} parameters, vocab {facts['vocab']}, {facts['train']} samples, "
                  f"{facts['steps']} steps on {facts['device']}) → {escape(str(out_path))}")
        if cfg.class_weight_power or cfg.label_smoothing:
            base.err.print(f"loss: class-weight power {cfg.class_weight_power:g}, "
                           f"label smoothing {cfg.label_smoothing:g}", style="dim")
        base.err.print(str(trainer.model), style="dim", markup=False)
    with progress_bar() if report else contextlib.nullcontext() as log:
        try:
            record = trainer.fit(log=log)
        except KeyboardInterrupt:
            _interrupted(trainer)
    if trainer.rank == 0:
        try:
            _plot_quietly(out_path)
        except KeyboardInterrupt:
            _interrupted(trainer)
        summary = {k: v for k, v in record.items() if k in ("step", "epoch", "wall_s", "train_loss", "val_loss",
                                                             "val_accuracy", "val_macro_f1", "useful_chars_per_s")}
        base.out.print(f"[green]done[/] {escape(str(out_path / 'best.safetensors'))}  " + escape(json.dumps(summary)))


def _interrupted(trainer) -> None:
    """Ctrl-C: say what is on disk, and whether there is anything left to resume."""
    if trainer.done():
        best = escape(str(trainer.out / "best.safetensors"))
        base.err.print(f"[yellow]interrupted:[/] the run is complete ({trainer.done()}); its model is {best}",
                       soft_wrap=True)
    else:
        last = escape(str(trainer.out / "last.safetensors"))
        base.err.print(f"[yellow]interrupted:[/] saved {last}; continue with --resume", soft_wrap=True)
    raise typer.Exit(130)


def _plot_quietly(run: Path) -> None:
    try:
        from poetgen.lab.plots import plot_run

        plot_run(run)
    except (ImportError, PoetgenError):
        pass  # curves are a bonus: a missing plot never fails a finished training run


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[dict], None]]:
    """A Rich progress bar on stderr, and the callback that feeds it the trainer's steps."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.3f} · {task.fields[cps]:,.0f} chars/s"),
                        TimeRemainingColumn(), console=base.err, transient=False)
    progress.start()
    task = progress.add_task("train", total=None, loss=float("nan"), cps=0.0)

    def log(event: dict) -> None:
        progress.update(task, completed=event["step"], total=event["total"], loss=event["loss"],
                        cps=event["chars_per_s"])

    try:
        yield log
    finally:
        progress.stop()
