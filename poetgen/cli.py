"""The `poetgen` command: parse options, call the library, render the result. No logic lives here.

Errors from the library (:class:`PoetgenError`) become one red line on stderr and an exit code
(2 usage, 1 runtime); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from poetgen import __version__
from poetgen.errors import PoetgenError

# click's base exception (typer vendors click in recent versions, so find it through typer)
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """Usage errors found while parsing (unknown option, missing argument, a value that is not a
    number) are reported like every other error: one line on stderr, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _CLICK_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `poetgen corpus`: help was asked for, in effect
                ctx = getattr(e, "ctx", None)
                if ctx is not None:
                    out.print(ctx.get_help(), markup=False, highlight=False)
                sys.exit(e.exit_code)
            ctx = getattr(e, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            err.print(f"[bold red]error:[/] {escape(one_line(e.format_message()))}{escape(hint)}", soft_wrap=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            err.print("[bold red]error:[/] aborted", soft_wrap=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="poetgen",
    help="Train recurrent language models and write Tang poems and names with them.",
    rich_markup_mode="rich",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="List, inspect, prepare and download corpora.", rich_markup_mode="rich",
                         no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])

SAMPLING = "Sampling"
FORM = "Form and rhyme"
MODEL = "Model"
OPTIM = "Optimisation"
DATA = "Data"


def _path(value: Any) -> Path:
    """Parse a path option: an empty string (an unset shell variable, say) is an error, not '.'."""
    if isinstance(value, Path):
        return value
    if not str(value).strip():
        raise typer.BadParameter("the path is empty")
    return Path(value)


DataDir = Annotated[Path | None, typer.Option("--data-dir", parser=_path, help="Raw-data folder (else $POETGEN_DATA, "
                                              "else ~/.cache/poetgen).", rich_help_panel=DATA)]
CorpusScript = Annotated[str, typer.Option(help="simplified or traditional (poems).")]
CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", "-c", parser=_path,
                                                    help="A checkpoint file or run folder "
                                                    "(default: the model shipped with poetgen).")]
Temp = Annotated[float, typer.Option("--temp", "--temperature", help="Sampling temperature (> 0).",
                                     rich_help_panel=SAMPLING)]
TopK = Annotated[int, typer.Option("--top-k", help="Keep the k most likely tokens (0 = off).",
                                   rich_help_panel=SAMPLING)]
TopP = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass in (0, 1] (1 = off).",
                                     rich_help_panel=SAMPLING)]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed: the same seed gives the same output.",
                                          rich_help_panel=SAMPLING)]
Greedy = Annotated[bool, typer.Option("--greedy", help="Always take the most likely token (ignores --temp).",
                                      rich_help_panel=SAMPLING)]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


MAX_MESSAGE = 400  # characters; a 10k-character argument echoed back helps nobody


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """Newlines folded into spaces and the middle of an over-long message cut out."""
    message = re.sub(r"\s*\n\s*", " ", message.strip())
    if len(message) > limit:
        head, tail = limit * 2 // 3, limit // 3
        message = f"{message[:head]} … {message[-tail:]}"
    return message


def fail(message: str, code: int = 2) -> typer.Exit:
    # escape(): a message may quote user input such as "[/]", which Rich would read as markup
    err.print(f"[bold red]error:[/] {escape(one_line(message))}", soft_wrap=True)
    return typer.Exit(code)


# An OSError on a path the user typed is a usage error (2); anything else (I/O error, disk full,
# permission denied) is a runtime failure (1).
_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP}


def os_error_message(e: OSError) -> str:
    where = f" {e.filename}" if e.filename else ""
    return f"cannot access{where}: {e.strerror or e}"


def _has_surrogates(value: Any) -> bool:
    """Command-line bytes that are not UTF-8 reach Python as lone surrogates (PEP 383)."""
    if isinstance(value, str):
        return re.search("[\ud800-\udfff]", value) is not None
    if isinstance(value, list | tuple):
        return any(_has_surrogates(v) for v in value)
    return False


def handled(fn: F) -> F:
    """Turn library errors into one line + exit code; keep tracebacks for --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bad = [name for name, value in kwargs.items() if _has_surrogates(value)]  # Path values may be any bytes
            if bad:
                raise PoetgenError(f"the {bad[0].rstrip('_').replace('_', ' ')} given is not valid UTF-8 text")
            return fn(*args, **kwargs)
        except PoetgenError as e:
            if DEBUG["on"]:
                raise
            raise fail(str(e), e.code) from None
        except KeyboardInterrupt:
            if DEBUG["on"]:
                raise
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except OSError as e:  # a path the user typed, or the environment (disk full, I/O error)
            if DEBUG["on"] or e.errno == errno.EPIPE:  # `poetgen classify - | head`: typer exits quietly
                raise
            raise fail(os_error_message(e), 2 if e.errno in _PATH_ERRNOS else 1) from None
        except Exception as e:  # a bug or an environment failure: still one line
            if DEBUG["on"]:
                raise
            raise fail(f"{type(e).__name__}: {e} (run with --debug for the traceback)", 1) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False))


def show(data: Any, as_json: bool, render: Callable[[Any], Any]) -> None:
    """``--json``: the data as JSON; otherwise the Rich rendering of it."""
    emit_json(data) if as_json else out.print(render(data))


MAX_SEED = 2**63 - 1


def check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise PoetgenError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")


def sampling_of(temp: float, top_k: int, top_p: float, seed: int | None, greedy: bool = False):
    from poetgen.sample import Sampling

    check_seed(seed)
    if not greedy and temp <= 0:
        raise PoetgenError(f"--temp must be > 0, got {temp} (use --greedy for greedy decoding)")
    return Sampling(0.0 if greedy else temp, top_k, top_p, seed).validate()


def _version(value: bool) -> None:
    if value:
        out.print(f"poetgen {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Train recurrent language models and write Tang poems and names with them.

    Run [bold]poetgen[/] with no command for the interactive shell.
    """
    DEBUG["on"] = debug
    if ctx.invoked_subcommand is None:
        from poetgen.repl import run_repl

        raise typer.Exit(run_repl())


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
    out.print(table)
    out.print("Any UTF-8 text file (one sample per line) also works: [bold]--corpus path/to/file.txt[/]")


@corpus_app.command("info")
@handled
def corpus_info(
    name: Annotated[str, typer.Argument(help="tang, songci, names, or a path to a text file.")],
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
    name: Annotated[str, typer.Argument(help="tang, songci or names.")],
    data_dir: DataDir = None,
    script: CorpusScript = "simplified",
) -> None:
    """Clean, de-duplicate and split a corpus once (cached; training does this on demand too)."""
    from poetgen.corpora import load_corpus

    corpus = load_corpus(name, data_dir, script=script)
    counts = {k: len(corpus.split(k)) for k in ("train", "val", "test")}
    out.print(f"[green]prepared[/] {escape(name)}: {len(corpus.samples)} samples {counts}, "
              f"fingerprint {corpus.fingerprint}")


@corpus_app.command("download")
@handled
def corpus_download(
    name: Annotated[str, typer.Argument(help="tang, songci or names.")],
    data_dir: DataDir = None,
    url: Annotated[str | None, typer.Option(help="Download from this mirror instead.")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the archive.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download a corpus (needs internet), check its SHA-256 and unpack it into the data folder."""
    from poetgen import download, paths

    if url is not None and not url.strip():
        raise PoetgenError("--url is empty (leave it out to download from the manifest's address)")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise PoetgenError("--sha256 must be 64 hexadecimal digits")
    root = Path(data_dir).expanduser() if data_dir else paths.data_dir(None)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PoetgenError(f"cannot create data folder {root}: {e.strerror}", code=1) from None
    where = download.download_corpus(name, root, url=url, sha256=sha256, progress=not quiet)
    out.print(f"[green]downloaded[/] {escape(name)} into {escape(str(where))}")


# ---------------------------------------------------------------------------------------------
# train


@app.command()
@handled
def train(
    corpus: Annotated[str, typer.Option(help="tang, songci, names, or a UTF-8 text file.", rich_help_panel=DATA)]
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
    out_dir: Annotated[Path | None, typer.Option("--out", parser=_path,
                                                 help="Run folder (default runs/CORPUS-TASK-MODEL).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a language model or a classifier; writes best/last checkpoints and metrics.jsonl."""
    from poetgen.train import Trainer, describe, preset

    cfg = preset(corpus, task)
    overrides = {"model": model, "cell": cell, "layers": layers, "hidden": hidden, "embed": embed,
                 "dropout": dropout, "adaptive": adaptive, "tie": tie, "bidirectional": bidirectional}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg.model, key, value)
    settings = {"epochs": epochs, "max_steps": max_steps, "max_time": max_time, "batch_size": batch_size, "lr": lr,
                "optimizer": optimizer, "schedule": schedule, "clip": clip, "patience": patience,
                "eval_every": eval_every, "weight_decay": weight_decay, "class_weight_power": class_weight_power,
                "label_smoothing": label_smoothing}
    for key, value in settings.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.forms, cfg.script, cfg.tokenizer = list(form or []), script, tokenizer
    cfg.data_dir = str(data_dir) if data_dir else None
    cfg.seed, cfg.device, cfg.precision = seed, device, precision
    out_path = out_dir or Path("runs") / f"{Path(corpus).stem}-{task}-{cfg.model.model}"
    trainer = Trainer(cfg, out_path, resume=resume, quiet=quiet)
    quiet = quiet or trainer.rank != 0
    if not quiet:
        facts = describe(trainer)
        err.print(f"{'resuming' if resume else 'training'} {cfg.model.model}/{cfg.model.cell} on {escape(corpus)} "
                  f"({facts['parameters']:,} parameters, vocab {facts['vocab']}, {facts['train']} samples, "
                  f"{facts['steps']} steps on {facts['device']}) → {escape(str(out_path))}")
        if cfg.class_weight_power or cfg.label_smoothing:
            err.print(f"loss: class-weight power {cfg.class_weight_power:g}, label smoothing {cfg.label_smoothing:g}",
                      style="dim")
        err.print(str(trainer.model), style="dim", markup=False)
    with TrainingProgress(quiet) as log:
        trainer.log = log
        try:
            record = trainer.fit()
        except KeyboardInterrupt:
            last = escape(str(out_path / "last.safetensors"))
            err.print(f"[yellow]interrupted:[/] saved {last}; continue with --resume", soft_wrap=True)
            raise typer.Exit(130) from None
    if trainer.rank == 0:
        _plot_quietly(out_path)
        summary = {k: v for k, v in record.items() if k in ("step", "epoch", "wall_s", "train_loss", "val_loss",
                                                             "val_accuracy", "val_macro_f1", "useful_chars_per_s")}
        out.print(f"[green]done[/] {escape(str(out_path / 'best.safetensors'))}  " + escape(json.dumps(summary)))


def _plot_quietly(run: Path) -> None:
    try:
        from poetgen.plots import plot_run

        plot_run(run)
    except (ImportError, PoetgenError):
        pass  # curves are a bonus: a missing plot never fails a finished training run


class TrainingProgress:
    """A Rich progress bar fed by the trainer's per-step callback (or nothing with --quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = None
        self.task = None

    def __enter__(self) -> Callable[[dict], None] | None:
        if self.quiet:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]:.3f} · {task.fields[cps]:,.0f} chars/s"),
                                 TimeRemainingColumn(), console=err, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=None, loss=float("nan"), cps=0.0)

        def log(event: dict) -> None:
            self.progress.update(self.task, completed=event["step"], total=event["total"], loss=event["loss"],
                                 cps=event["chars_per_s"])

        return log

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# ---------------------------------------------------------------------------------------------
# poems


@app.command()
@handled
def write(
    prefix: Annotated[str, typer.Argument(help="Opening characters (or acrostic heads with --acrostic).")] = "",
    acrostic: Annotated[bool, typer.Option("--acrostic", help="One head character per line (藏头诗).",
                                           rich_help_panel=FORM)] = False,
    form: Annotated[str, typer.Option(help="五绝, 七绝, 五律, 七律 or auto.", rich_help_panel=FORM)] = "auto",
    mood: Annotated[str, typer.Option(help="Text fed to the model first to set the mood (not printed).",
                                      rich_help_panel=FORM)] = "",
    rhyme: Annotated[bool, typer.Option("--rhyme/--no-rhyme", help="Force a 平 rhyme on the even lines.",
                                        rich_help_panel=FORM)] = True,
    rhyme_scheme: Annotated[str, typer.Option(help="pingshui (平水韵) or xinyun (中华新韵).", rich_help_panel=FORM)]
    = "pingshui",
    allow_repeats: Annotated[bool, typer.Option("--allow-repeats", help="Allow a character twice in a line.",
                                                rich_help_panel=FORM)] = False,
    allow_copies: Annotated[bool, typer.Option("--allow-copies", help="Allow lines copied from the corpus.",
                                               rich_help_panel=FORM)] = False,
    num: Annotated[int, typer.Option("--num", "-n", help="How many poems (sampled as one batch).")] = 1,
    temp: Temp = 0.8,
    top_k: TopK = 0,
    top_p: TopP = 1.0,
    seed: Seed = None,
    greedy: Greedy = False,
    script: Annotated[str | None, typer.Option(help="Output script: simplified or traditional.")] = None,
    checkpoint: CheckpointOpt = None,
    as_json: Json = False,
) -> None:
    """Write a poem that continues PREFIX — [bold]poetgen write 青山 --temp 0.8[/]."""
    from poetgen.checkpoint import load_for
    from poetgen.poems import write_poems
    from poetgen.render import poem_panel

    sampling = sampling_of(temp, top_k, top_p, seed, greedy)
    ck = load_for("poems", checkpoint)
    poems = write_poems(ck, prefix, form=form, acrostic=acrostic, n=num, sampling=sampling, rhyme=rhyme,
                        rhyme_scheme=rhyme_scheme, allow_repeats=allow_repeats, allow_copies=allow_copies,
                        mood=mood, script=script)
    if as_json:
        emit_json([p.to_dict() for p in poems])
        return
    for poem in poems:
        out.print(poem_panel(poem.to_dict()))


@app.command()
@handled
def check(
    poem: Annotated[str, typer.Argument(help="The poem, lines ending in ，。？！；")],
    scheme: Annotated[str, typer.Option(help="pingshui (平水韵) or xinyun (中华新韵).")] = "pingshui",
    as_json: Json = False,
) -> None:
    """Form, per-character 平/仄, rhyme group and which rules a poem keeps."""
    from poetgen.prosody import check_poem
    from poetgen.render import check_table

    if not poem.strip():
        raise PoetgenError("the poem is empty")
    result = check_poem(poem, scheme).to_dict()
    show(result, as_json, check_table)


@app.command("eval")
@handled
def evaluate(
    checkpoint: CheckpointOpt = None,
    samples: Annotated[int, typer.Option(help="Poems per form.")] = 200,
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Json = False,
) -> None:
    """Evaluate a model: poems (form, rhyme, copies, perplexity) or a names classifier / generator."""
    from poetgen.checkpoint import load_checkpoint, load_for

    check_seed(seed)
    ck = load_checkpoint(checkpoint) if checkpoint else load_for("poems", None)
    if ck.kind == "poems":
        from poetgen.poem_eval import evaluate_poems

        result = evaluate_poems(ck, samples=samples, seed=seed, data_dir=data_dir)
    elif ck.kind == "classify":
        from poetgen.names import evaluate_classifier

        result = evaluate_classifier(ck, data_dir)
    else:
        from poetgen.names import evaluate_generator

        result = evaluate_generator(ck, None, data_dir)
    if as_json:
        emit_json(result)
        return
    _render_eval(result)


def _render_eval(result: dict) -> None:
    from poetgen.render import confusion_table, key_values

    flat = {k: v for k, v in result.items() if isinstance(v, int | float | str)}
    out.print(key_values(flat, title="evaluation"))
    for key, value in result.items():
        if isinstance(value, dict) and all(isinstance(v, int | float | str) for v in value.values()):
            out.print(key_values(value, title=key))
    if "confusion" in result and "labels" in result:
        out.print(confusion_table(result["labels"], result["confusion"]))


# ---------------------------------------------------------------------------------------------
# names


@app.command()
@handled
def names(
    lang: Annotated[str, typer.Option("--lang", "-l", help="Language (case-insensitive, prefix ok) or 'all'.")]
    = "all",
    num: Annotated[int | None, typer.Option("--num", "-n", help="How many names (default 10; 3 per language "
                                            "with --lang all).")] = None,
    start: Annotated[str, typer.Option(help="Force the first letters.")] = "",
    novel: Annotated[bool, typer.Option("--novel", help="Only names not in the training data.")] = False,
    temp: Temp = 0.9,  # names.DEFAULT_TEMPERATURE: the setting BENCHMARKS.md measures
    top_k: TopK = 0,
    top_p: TopP = 1.0,
    seed: Seed = None,
    greedy: Greedy = False,
    guidance: Annotated[float | None, typer.Option(
        help="Push each letter towards the language (0 = plain sampling; default 3).")] = None,
    rerank: Annotated[float | None, typer.Option(
        help="Prefer whole names that read as the language (0 = off; default 4).")] = None,
    checkpoint: CheckpointOpt = None,
    as_json: Json = False,
) -> None:
    """Names that sound like a language — [bold]poetgen names --lang Russian -n 10[/]."""
    from poetgen.checkpoint import load_for
    from poetgen.names import generate_all, generate_names, resolve_language
    from poetgen.render import names_by_language, names_columns

    sampling = sampling_of(temp, top_k, top_p, seed, greedy)
    ck = load_for("names", checkpoint)
    if lang.lower() == "all":
        table = generate_all(ck, 3 if num is None else num, start=start, sampling=sampling, novel=novel,
                             guidance=guidance, rerank=rerank)
        show(table, as_json, names_by_language)
        return
    language = resolve_language(ck, lang)
    num = 10 if num is None else num
    result = generate_names(ck, language, num, start=start, sampling=sampling, novel=novel, guidance=guidance,
                            rerank=rerank)
    if len(result) < num:
        err.print(f"[yellow]only {len(result)} distinct names found[/]")
    show(result, as_json, lambda names: names_columns(names, title=language))


@app.command()
@handled
def classify(
    names_: Annotated[list[str] | None, typer.Argument(metavar="NAMES", help="Surnames, or '-' to read stdin.")]
    = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", parser=_path,
                                              help="Read names from a file, one per line.")] = None,
    top: Annotated[int, typer.Option(help="How many languages to show per name.")] = 3,
    checkpoint: CheckpointOpt = None,
    as_json: Json = False,
) -> None:
    """Which language is a surname from? — [bold]poetgen classify Dovesky Jackson Hou[/]."""
    from poetgen.checkpoint import load_for
    from poetgen.names import classify as classify_names
    from poetgen.render import classify_table

    if top < 1:
        raise PoetgenError(f"--top must be at least 1, got {top}")
    source = _name_source(names_ or [], file)
    ck = load_for("classify", checkpoint)
    streaming = file is not None or names_ == ["-"]
    predictions = classify_names(ck, source, top=min(top, len(ck.categories)), lines=streaming)
    if as_json and streaming:  # JSON lines: one result per input line, in bounded memory
        for p in predictions:
            sys.stdout.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        return
    if streaming:
        for p in predictions:
            best, prob = p.top[0]
            sys.stdout.write(f"{p.name}\t{best}\t{prob:.4f}\n")
        return
    results = [p.to_dict() for p in predictions]
    show(results, as_json, classify_table)  # the renderer shows names as plain text, never as markup


def _name_source(args: list[str], file: Path | None) -> Iterator[str]:
    if file is not None and args:
        raise PoetgenError("give names as arguments or with --file, not both")
    if file is not None:
        if not file.is_file():
            raise PoetgenError(f"{file} does not exist")
        return _lines(file.open(encoding="utf-8", errors="strict"), str(file))
    if args == ["-"]:
        return _lines(sys.stdin, "stdin")
    if not args:
        raise PoetgenError("give at least one name (or '-' to read names from stdin)")
    return iter(args)


def _lines(stream: Any, where: str) -> Iterator[str]:
    try:
        for line in stream:
            yield line.rstrip("\n")
    except UnicodeDecodeError as e:
        raise PoetgenError(f"input is not UTF-8 text: {e.reason}") from None
    except OSError as e:
        raise PoetgenError(f"cannot read {where}: {e.strerror or e}", code=1) from None


# ---------------------------------------------------------------------------------------------
# scoring, comparisons, reports


@app.command()
@handled
def score(
    source: Annotated[str, typer.Argument(help="A UTF-8 text file, one text per line, or '-' for stdin.")],
    checkpoint: CheckpointOpt = None,
    category: Annotated[str | None, typer.Option(help="Condition on this form / language (default: detected "
                                                 "from the text, else a mixture of all).")] = None,
    as_json: Json = False,
) -> None:
    """Per-character NLL (nats), perplexity and bits per character of each line, and in total."""
    from poetgen.checkpoint import load_checkpoint, load_for
    from poetgen.render import key_values
    from poetgen.score import read_lines, score_lines, summarize

    if not source.strip():
        raise PoetgenError("give a text file to score, or '-' to read standard input")
    if source != "-" and not Path(source).is_file():  # before the slow model load
        raise PoetgenError(f"{source} does not exist or is not a file")
    ck = load_checkpoint(checkpoint) if checkpoint else load_for("poems", None)
    lines = read_lines(sys.stdin.buffer if source == "-" else Path(source))
    scores = list(score_lines(ck, lines, category=category))
    summary = summarize(scores)
    if not summary["chars"]:
        raise PoetgenError(f"nothing to score: all {summary['oov']} characters are outside the model's vocabulary "
                           f"({summary['unknown'][:20]})")
    if as_json:
        emit_json([*(s.to_dict() for s in scores), {"summary": summary}])
        return
    from rich.table import Table

    table = Table(box=None)
    for col in ("line", "nll/char", "ppl", "chars", "oov", "text"):
        table.add_column(col, justify="right" if col != "text" else "left")
    for s in scores[:200]:  # the totals cover every line; the table shows the first 200
        per = f"{s.nll_per_char:.3f}" if s.nll_per_char is not None else "-"
        ppl = f"{s.perplexity:.1f}" if s.perplexity is not None else "-"
        table.add_row(str(s.line), per, ppl, str(s.chars), str(s.oov), escape(s.text[:40]))
    out.print(table)
    if summary["oov"]:
        err.print(f"[yellow]{summary['oov']} characters outside the vocabulary were not scored:[/] "
                  f"{escape(summary['unknown'][:80])}", soft_wrap=True)
    out.print(key_values({k: v for k, v in summary.items() if k != "unknown" and v is not None}, title="total"))


@app.command()
@handled
def compare(
    corpus: Annotated[str, typer.Option(help="names, tang, or a text file.")] = "names",
    task: Annotated[str, typer.Option(help="classify or lm.")] = "classify",
    models: Annotated[str, typer.Option(help="Comma-separated model[:cell] specs.")] = "rnn,lstm,gru,lstm:custom",
    steps: Annotated[int | None, typer.Option(help="Same number of steps for every model.")] = None,
    seconds: Annotated[float | None, typer.Option(help="Same wall-clock budget for every model.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size for every model (default: the preset's).")]
    = None,
    seed: Annotated[int, typer.Option()] = 0,
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", parser=_path, help="Folder for the runs, table and plot.")]
    = Path("runs/compare"),
) -> None:
    """Train several models with the same budget and seed; one table and one overlaid-curves PNG."""
    from poetgen.compare import compare_models, markdown_table, table_of

    specs = [m.strip() for m in models.split(",") if m.strip()]
    if not specs:
        raise PoetgenError("--models is empty")
    check_seed(seed)
    if out_dir.exists() and not out_dir.is_dir():
        raise PoetgenError(f"--out {out_dir} is a file; compare needs a folder")
    out_dir.mkdir(parents=True, exist_ok=True)  # fail here, in one line, before any training starts
    rows = compare_models(corpus, task, specs, data_dir=data_dir, out=out_dir, budget_steps=steps,
                          budget_seconds=seconds, seed=seed, batch_size=batch_size, quiet=False)
    headers, cells = table_of(rows)
    out.print(markdown_table(headers, cells))
    out.print(f"[green]wrote[/] {escape(str(out_dir / 'compare.md'))}, {escape(str(out_dir / 'compare.png'))}")


@app.command()
@handled
def report(
    runs: Annotated[list[Path], typer.Argument(parser=_path, help="Run folders (from train or compare).")],
    out_dir: Annotated[Path, typer.Option("--out", parser=_path, help="Folder for report.md / report.html.")]
    = Path("report"),
    data_dir: DataDir = None,
    samples: Annotated[bool, typer.Option("--samples/--no-samples", help="Include sample names / poems.")] = True,
) -> None:
    """A self-contained lab report: structure, curves, confusion matrix, comparison, samples."""
    from poetgen.report import write_report

    path = write_report(list(runs), out_dir, data_dir=data_dir, samples=samples)
    out.print(f"[green]wrote[/] {escape(str(path))} and {escape(str(path.with_suffix('.html')))}")


@app.command()
@handled
def plot(run: Annotated[Path, typer.Argument(parser=_path, help="A run folder with metrics.jsonl.")]) -> None:
    """Draw loss / accuracy curves of a run into RUN/curves.png."""
    from poetgen.plots import plot_run

    out.print(f"[green]wrote[/] {escape(str(plot_run(run)))}")


@app.command()
def repl() -> None:
    """The interactive shell (the same as running poetgen with no command)."""
    from poetgen.repl import run_repl

    raise typer.Exit(run_repl())


# ---------------------------------------------------------------------------------------------
# entry point


def main() -> None:
    app()


if __name__ == "__main__":
    main()
