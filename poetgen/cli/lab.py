"""`poetgen lab`, `compare`, `report` and `plot`: the RNN-vs-LSTM lab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

import poetgen.cli.base as base
from poetgen.cli.base import DataDir, app, handled, path_value
from poetgen.errors import PoetgenError
from poetgen.paths import check_writable


@app.command()
@handled
def lab(
    seconds: Annotated[float, typer.Option(help="Time for the whole lab: training, evaluation and the report.")]
    = 600.0,
    out_dir: Annotated[Path, typer.Option("--out", parser=path_value, help="A new or empty folder for the runs "
                                          "and the report.")] = Path("runs/lab"),
    seed: Annotated[int, typer.Option(help="One seed for every model.")] = 0,
    data_dir: DataDir = None,
    threads: base.Threads = None,
) -> None:
    """The whole RNN-vs-LSTM lab: the assignment's classifiers side by side, a names generator, a small
    poem model, and a report with every figure the lab asks for, and evidence measured on why the LSTM wins."""
    from poetgen.lab.session import run_lab

    path = run_lab(out_dir, seconds=seconds, seed=seed, data_dir=data_dir, threads=threads or 0,
                   log=lambda line: base.err.print(escape(line), soft_wrap=True))
    base.out.print(f"[green]wrote[/] {escape(str(path))} and {escape(str(path.with_suffix('.html')))}")


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
    out_dir: Annotated[Path, typer.Option("--out", parser=path_value, help="Folder for the runs, table and plot.")]
    = Path("runs/compare"),
    threads: base.Threads = None,
) -> None:
    """Train several models with the same budget and seed; one table and one overlaid-curves PNG."""
    from poetgen.lab.compare import TURNS, compare_models, markdown_table, table_of

    specs = [m.strip() for m in models.split(",") if m.strip()]
    if not specs:
        raise PoetgenError("--models is empty")
    from poetgen.config import check_seed

    check_seed(seed)
    check_writable(out_dir)  # fail here, in one line, before any training starts (and create nothing)
    def say(event: dict) -> None:  # a line as each model is ready and as it is done
        if event["event"] == "start":
            line = f"[{event['index']}/{event['total']}] {event['label']} ready; the models take {TURNS} turns each"
        elif event["event"] == "done":
            line = f"    {event['row']['label']}: {event['row']['steps']} steps, {event['row']['wall_s']:.1f} s"
        else:
            return
        base.err.print(escape(line), soft_wrap=True)

    rows = compare_models(corpus, task, specs, data_dir=data_dir, out=out_dir, budget_steps=steps,
                          budget_seconds=seconds, seed=seed, batch_size=batch_size, log=say, threads=threads or 0)
    headers, cells = table_of(rows)
    base.out.print(markdown_table(headers, cells))
    base.out.print(f"[green]wrote[/] {escape(str(out_dir / 'compare.md'))}, {escape(str(out_dir / 'compare.png'))}")


@app.command()
@handled
def report(
    runs: Annotated[list[Path], typer.Argument(parser=path_value, help="Run folders (from train or compare).")],
    out_dir: Annotated[Path, typer.Option("--out", parser=path_value, help="Folder for report.md / report.html.")]
    = Path("report"),
    data_dir: DataDir = None,
    samples: Annotated[bool, typer.Option("--samples/--no-samples", help="Include sample names / poems.")] = True,
    evidence: Annotated[bool, typer.Option("--evidence/--no-evidence", help="Include the measured evidence: "
                                           "gradient flow, accuracy by name length, forget gates.")] = True,
) -> None:
    """A self-contained lab report: structure, curves, confusion matrix, comparison, samples, evidence."""
    from poetgen.lab.report import write_report

    path = write_report(list(runs), out_dir, data_dir=data_dir, samples=samples, evidence=evidence)
    base.out.print(f"[green]wrote[/] {escape(str(path))} and {escape(str(path.with_suffix('.html')))}")


@app.command()
@handled
def plot(run: Annotated[Path, typer.Argument(parser=path_value, help="A run folder with metrics.jsonl.")]) -> None:
    """Draw loss / accuracy curves of a run into RUN/curves.png."""
    from poetgen.lab.plots import plot_run

    base.out.print(f"[green]wrote[/] {escape(str(plot_run(run)))}")
