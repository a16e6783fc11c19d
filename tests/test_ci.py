"""词 to a tune: every ci keeps an attested structure of its tune, its marks, its rhyme sets in one
词林正韵 部 each and the tune's fixed tones; `write --form TUNE`, `--variant`, `--form list`.
A tiny ci model (conftest ``tiny_ci``) writes them: its words are gibberish, its form is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poetgen.checkpoint import Checkpoint, load_for
from poetgen.errors import PoetgenError
from poetgen.poems import cilin, tunes
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.verse import split_lines
from tests.cli_run import build_the_command_once, one_error_line, run  # noqa: F401

TUNES = ["浣溪沙", "菩萨蛮", "鹧鸪天", "水调歌头", "念奴娇", "满江红"]


@pytest.fixture(scope="module")
def ck(tiny_ci: Path) -> Checkpoint:
    return load_for("ci", tiny_ci)


@pytest.mark.parametrize("name", TUNES)
def test_a_ci_keeps_its_tunes_structure_marks_and_rhyme(ck: Checkpoint, name: str) -> None:
    form = tunes.form(name)
    for poem in write_poems(ck, "明月", form=name, n=3, sampling=Sampling(seed=7)):
        assert [len(line) for line in poem.lines] == list(form.widths)
        assert poem.text.startswith("明月")
        assert "".join(ch for ch in poem.text if ch in "，。") == form.marks
        assert poem.form == name and poem.check["form"] == name and poem.check["ci"]["variant"] == 1
        assert poem.check["rules"]["form"] and poem.check["rules"]["rhyme"], poem.text
        for lines in form.rhyme_sets:  # the writer's strict reading: one 部 a set, in each line's tone
            tones = {"平": cilin.PING, "仄": cilin.SHANGQU, "入": cilin.RU}
            shared = set.intersection(*(cilin.bus(poem.lines[i][-1], tones[form.rhyme_tones[i]]) for i in lines))
            assert shared, (poem.text, lines)


def test_the_same_seed_writes_the_same_ci(ck: Checkpoint) -> None:
    first, again = (write_poems(ck, form="西江月", sampling=Sampling(seed=3))[0].text for _ in range(2))
    assert first == again


def test_a_variant_is_written_as_asked_and_a_bad_one_is_named(ck: Checkpoint) -> None:
    tune = tunes.tune("水调歌头")
    assert len(tune.variants) > 1
    poem = write_poems(ck, form="水调歌头", variant=2, sampling=Sampling(seed=1))[0]
    assert "".join(ch for ch in poem.text if ch in "，。") == tune.variant(2).marks
    with pytest.raises(PoetgenError, match="variant"):
        write_poems(ck, form="水调歌头", variant=len(tune.variants) + 1)


def test_a_prefix_longer_than_the_tune_is_refused(ck: Checkpoint) -> None:
    with pytest.raises(PoetgenError, match="浣溪沙"):
        write_poems(ck, "明" * 50, form="浣溪沙")


def test_theme_keywords_land_in_a_ci_inside_its_lines(ck: Checkpoint) -> None:
    poem = write_poems(ck, form="鹧鸪天", theme=["秋", "月"], sampling=Sampling(seed=2))[0]
    assert "秋" in poem.text and "月" in poem.text
    assert [len(line) for line in split_lines(poem.text)] == list(tunes.form("鹧鸪天").widths)


def test_write_form_list_lists_the_tunes_with_their_poems(ck: Checkpoint) -> None:
    result = run("write", "--form", "list", "--json")
    assert result.exit_code == 0
    rows = {row["tune"]: row for row in json.loads(result.stdout)}
    assert rows["浣溪沙"]["poems"] >= 50 and rows["水调歌头"]["variants"][0]["lines"] > 10


def test_write_form_tune_from_the_command_line(tiny_ci: Path) -> None:
    result = run("write", "青山", "--form", "菩萨蛮", "--seed", "1", "--checkpoint", str(tiny_ci), "--json")
    assert result.exit_code == 0, result.output
    poem = json.loads(result.stdout)[0]
    assert poem["form"] == "菩萨蛮" and poem["check"]["scheme"] == "cilin" and poem["text"].startswith("青山")


def test_tune_errors_are_one_line(tiny_ci: Path) -> None:
    one_error_line(run("write", "--form", "水调歌投", "--checkpoint", str(tiny_ci)), 2, "水调歌头")
    one_error_line(run("write", "--form", "五绝", "--variant", "2"), 2, "--variant applies to a 词 tune")
    one_error_line(run("write", "--form", "浣溪沙", "--acrostic", "--checkpoint", str(tiny_ci)), 2, "--acrostic")
