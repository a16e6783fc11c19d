"""Poet styles: the corpus keeps each poem's poet, a styled model learns the most prolific ones,
and `write --style` writes as one of them (or lists them, or says which name was meant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_POEMS, train_tiny
from typer.testing import CliRunner

from poetgen.checkpoint import load_checkpoint
from poetgen.cli import app
from poetgen.corpora import Sample, load_corpus
from poetgen.data import ANY_SHARE, style_of
from poetgen.errors import PoetgenError
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.score import score_lines
from poetgen.styles import ANY, find_style, style_table

POETS = ["李白", "劉禹錫", "無名氏"]  # traditional, as the archive spells them; the last is no poet


def _styled_data(root: Path) -> Path:
    quan = root / "chinese-poetry" / "quantangshi"
    quan.mkdir(parents=True)
    items = []
    for k in range(8):
        for i, poem in enumerate(TINY_POEMS):
            lines = [line[:1] + "山水風月雲天花雪"[(i + k) % 8] + line[2:] for line in poem]
            items.append({"author": POETS[(i + k) % 3], "title": f"{k}-{i}", "paragraphs": lines})
    (quan / "poet.tang.0.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def styled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("styled")
    data = _styled_data(root / "data")
    return train_tiny(data, root / "run", "tang", styles=5, max_steps=40)


def test_corpus_keeps_each_poems_poet_in_the_script_asked_for(tmp_path: Path) -> None:
    data = _styled_data(tmp_path)
    simplified = {s.author for s in load_corpus("tang", data).samples}
    traditional = {s.author for s in load_corpus("tang", data, script="traditional").samples}
    assert simplified == {"李白", "刘禹锡", "无名氏"}
    assert traditional == set(POETS)


def test_style_table_lists_named_poets_by_poems_after_any() -> None:
    samples = [Sample("甲", author="乙")] * 3 + [Sample("丙", author="丁")] * 5 + [Sample("戊", author="无名氏")] * 9
    table = style_table(samples, 5)
    assert table == [[ANY, 17], ["丁", 5], ["乙", 3]]  # 无名氏 is the archive's label, not a poet
    assert style_table(samples, 1) == [[ANY, 17], ["丁", 5]]


def test_any_also_learns_a_share_of_the_listed_poets_poems() -> None:
    texts = [f"诗{i}" for i in range(2000)]
    labels = [style_of(t, "李白", {"李白": 1}) for t in texts]
    share = labels.count(0) / len(labels)
    assert abs(share - 1 / ANY_SHARE) < 0.04
    assert labels == [style_of(t, "李白", {"李白": 1}) for t in texts]  # the same on every run
    assert style_of("诗", "杜甫", {"李白": 1}) == 0  # a poet not listed writes as any


def test_find_style_takes_either_script_and_suggests_close_names() -> None:
    names = [ANY, "李白", "刘禹锡", "李商隐"]
    assert find_style("刘禹锡", names) == 2
    assert find_style(" 劉禹錫 ", names, lambda t: {"劉禹錫": "刘禹锡"}.get(t, t)) == 2
    with pytest.raises(PoetgenError, match="did you mean 李白 or 李商隐") as e:
        find_style("李百", names)
    assert e.value.param == "style"


def test_styled_checkpoint_carries_its_poets(styled: Path) -> None:
    ck = load_checkpoint(styled)
    assert ck.style_names == [ANY, "刘禹锡", "李白"]
    assert ck.config.num_styles == 3
    assert ck.styles[0][1] == len(load_corpus("tang", ck.meta["train"]["data_dir"]).split("train"))


def test_write_as_a_poet_is_reproducible_and_differs_from_any(styled: Path) -> None:
    ck = load_checkpoint(styled)
    as_li = write_poems(ck, "", form="五绝", n=4, sampling=Sampling(seed=7), style="李白")
    again = write_poems(ck, "", form="五绝", n=4, sampling=Sampling(seed=7), style="李白")
    anyone = write_poems(ck, "", form="五绝", n=4, sampling=Sampling(seed=7))
    assert [p.text for p in as_li] == [p.text for p in again]
    assert all(p.style == "李白" for p in as_li) and all(p.style is None for p in anyone)
    assert all(p.check["rules"]["form"] for p in as_li)
    # the poet is really fed to the model: the same poems score differently under it and under any
    texts = [p.text for p in anyone]
    under_li = [s.nll for s in score_lines(ck, texts, style="李白")]
    under_any = [s.nll for s in score_lines(ck, texts)]
    assert all(abs(a - b) > 1e-4 for a, b in zip(under_li, under_any, strict=True))


def test_cli_style_list_names_and_errors(styled: Path, tiny_models: dict[str, Path]) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["write", "--style", "list", "--checkpoint", str(styled), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["style"] for r in rows] == [ANY, "刘禹锡", "李白"] and rows[0]["poems"] >= rows[1]["poems"]
    wrote = runner.invoke(app, ["write", "--style", "劉禹錫", "--seed", "1", "--checkpoint", str(styled), "--json"])
    assert wrote.exit_code == 0, wrote.output
    assert json.loads(wrote.output)[0]["style"] == "刘禹锡"
    panel = runner.invoke(app, ["write", "--style", "李白", "--form", "五绝", "--checkpoint", str(styled)],
                          env={"COLUMNS": "100"})
    assert panel.exit_code == 0 and "五绝 · 李白" in panel.output  # the panel says who it was written as
    wrong = runner.invoke(app, ["write", "--style", "李百", "--checkpoint", str(styled)])
    assert wrong.exit_code == 2
    assert "--style '李百' is not one of this model's 2 poets (did you mean 李白" in wrong.output
    assert "Traceback" not in wrong.output
    plain = runner.invoke(app, ["write", "--style", "李白", "--checkpoint", str(tiny_models["poems"])])
    assert plain.exit_code == 2 and "--style needs a model conditioned on poets" in plain.output
    nolist = runner.invoke(app, ["write", "--style", "list", "--checkpoint", str(tiny_models["poems"])])
    assert nolist.exit_code == 2 and "has no styles to list" in nolist.output


def test_resume_refuses_another_number_of_styles(styled: Path) -> None:
    from poetgen.config import TrainConfig
    from poetgen.train import Trainer

    saved = TrainConfig.from_dict(load_checkpoint(styled).meta["train"])
    assert saved.styles == 5
    saved.styles, saved.max_steps = 1, 80
    with pytest.raises(PoetgenError, match="trained with styles=5, not 1; resume it with --styles 5"):
        Trainer(saved, styled, resume=True)


def test_repl_set_style_and_candidates_reach_write(styled: Path, tiny_models: dict[str, Path]) -> None:
    from io import StringIO

    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput
    from rich.console import Console

    from poetgen.repl import run_repl

    buffer = StringIO()
    console = Console(file=buffer, width=100, force_terminal=False, highlight=False)
    keys = "set style 李白\rset candidates 3\rwrite --json --seed 2\rset style any\rwrite --json --seed 2\r\x04"
    with create_pipe_input() as inp:
        inp.send_text(keys)
        code = run_repl(poems=styled, names=tiny_models["names"], classifier=tiny_models["classify"],
                        history_file=None, input=inp, output=DummyOutput(), console=console)
    assert code == 0
    out = buffer.getvalue()
    decoder, starts = json.JSONDecoder(), [i for i in range(len(out)) if out.startswith("[\n  {", i)]
    first, second = (decoder.raw_decode(out, i)[0] for i in starts)
    assert first[0]["style"] == "李白" and first[0]["score"]["candidates"] == 3
    assert "style" not in second[0]
