"""Constrained poem writing (poetgen.poems): every sample keeps the form, rhyme and seeds behave.

A tiny LSTM is trained once per session on the eight real poems of conftest plus synthetic
poems of all four forms whose characters come from the 平水韵 table, so the vocabulary holds
enough characters of every rhyme group for the rhyme constraints to be meaningful.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import train_tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poetgen.checkpoint import Checkpoint, load_checkpoint, text_hash
from poetgen.corpora import Sample, to_script
from poetgen.defaults import POEM_CANDIDATES
from poetgen.errors import PoetgenError
from poetgen.poems import prosody
from poetgen.poems.check import check_poem
from poetgen.poems.evaluate import bigram_perplexity, evaluate_poems, heldout_perplexity
from poetgen.poems.write import Poem, write_poems
from poetgen.sample import Sampling
from poetgen.verse import FORMS, is_cjk
from poetgen.vocab import BOS
from tests.conftest import TINY_POEMS

WIDTH = {"五": 5, "七": 7}
POEMS = [*TINY_POEMS, ["青山隱隱水迢迢，秋盡江南草未凋。", "二十四橋明月夜，玉人何處教吹簫。"]]


def _synthetic_poems(per_form: int = 60, seed: int = 0) -> list[dict]:
    """Poems of random characters (all four forms) from the rhyme table, simplified-stable."""
    rhymes = prosody.table("pingshui")
    pool = [chr(c) for c in range(0x4E00, 0x9FA6)
            if chr(c) in rhymes and rhymes.tone_mark(chr(c)) in "平仄" and to_script(chr(c), "simplified") == chr(c)]
    rng = random.Random(seed)
    pool = rng.sample(pool, 900)
    items = []
    for form, (lines, width) in FORMS.items():
        for k in range(per_form):
            text = ["".join(rng.sample(pool, width)) for _ in range(lines)]
            paragraphs = [f"{text[i]}，{text[i + 1]}。" for i in range(0, lines, 2)]
            items.append({"author": "synthetic", "title": f"{form}{k}", "paragraphs": paragraphs})
    return items


@pytest.fixture(scope="session")
def poem_ck(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    root = tmp_path_factory.mktemp("poems")
    quan = root / "data" / "chinese-poetry" / "quantangshi"
    quan.mkdir(parents=True)
    # The real poems, and variants with one character changed: the split is by content, so every
    # character of the real poems lands in the training split (and the vocabulary) somewhere.
    real = [{"author": "x", "title": f"t{i}-{k}", "paragraphs": [*p[:-1], p[-1][:-2] + "春夏秋冬"[k] + p[-1][-1:]]}
            for i, p in enumerate(POEMS) for k in range(4)]
    real += [{"author": "x", "title": f"t{i}", "paragraphs": p} for i, p in enumerate(POEMS)]
    (quan / "poet.tang.0.json").write_text(json.dumps(real + _synthetic_poems(), ensure_ascii=False), "utf-8")
    run = train_tiny(root / "data", root / "run", "tang", model={"embed": 32}, max_steps=30, batch_size=16,
                     eval_every=100, lr=2e-3)
    return load_checkpoint(run)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_well_formed(poem: Poem, ck: Checkpoint, *, lines: int, width: int, repeats: bool = False,
                       rhyme: bool = True, scheme: str = "pingshui", given: int = 0, pattern: bool = True) -> None:
    """Exact shape, marks only at line ends, alternating ，/。, no specials, rhyme in one 平 group.

    ``given``: how many whole lines came from the prefix (the tone rule binds only the others);
    ``pattern``: the 平仄 pattern must hold (not when the prefix breaks it, nor in 古体).
    """
    assert len(poem.lines) == lines, poem.text
    assert all(len(line) == width for line in poem.lines), poem.text
    marks = [poem.text[(width + 1) * (i + 1) - 1] for i in range(lines)]
    assert len(poem.text) == lines * (width + 1), poem.text
    for i, mark in enumerate(marks):
        wanted = "，？！" if i % 2 == 0 and i < lines - 1 else "。？！"
        assert mark in wanted, poem.text
    assert "".join(line + mark for line, mark in zip(poem.lines, marks, strict=True)) == poem.text
    for line in poem.lines:
        assert all(is_cjk(ch) for ch in line), line
        assert "<" not in line
        if not repeats:
            assert len(set(line)) == len(line), f"repeat in {line}"
    if not repeats:  # across lines: no character thrice, no two-character phrase twice
        chars = Counter("".join(poem.lines))
        assert max(chars.values()) <= 2, f"{chars.most_common(1)} in {poem.text}"
        phrases = Counter(line[i:i + 2] for line in poem.lines for i in range(width - 1))
        assert max(phrases.values()) == 1, f"{phrases.most_common(1)} in {poem.text}"
    check = check_poem(poem.text, scheme)
    if lines % 2 == 0:  # an odd line count ends "，。。" as we want, but the checker wants couplets
        assert check.rules["punctuation"], poem.text
    if lines in (4, 8):
        assert check.rules["form"], poem.text
    if rhyme:
        rhymes = prosody.table(scheme)
        ends = [line[-1] for line in poem.lines[1::2]]
        shared = set.intersection(*(rhymes.level_groups(ch) for ch in ends))
        assert shared, f"{poem.text}: {ends} share no level group"
        assert check.rules["level_rhyme"], poem.text
        assert poem.rhyme_group in shared
        if not repeats:
            assert len(set(ends)) == len(ends), f"rhyme character repeated in {poem.text}"
        for i in range(max(2, given + given % 2), lines - 1, 2):  # lines 3, 5, 7 end in an oblique (仄) character
            line = poem.lines[i]
            assert prosody.OBLIQUE in rhymes.tones(line[-1]), poem.text
        if pattern and lines in (4, 8):
            assert check.rules["tone_pattern"], poem.text


# ---------------------------------------------------------------------------------------------
# Form, rhyme, shape


@pytest.mark.parametrize("form", list(FORMS))
def test_every_sample_of_every_form_is_exact(poem_ck: Checkpoint, form: str) -> None:
    lines, width = FORMS[form]
    poems = write_poems(poem_ck, form=form, n=30, sampling=Sampling(temperature=1.0, seed=7))
    assert len(poems) == 30
    for poem in poems:
        assert poem.form == form
        assert_well_formed(poem, poem_ck, lines=lines, width=width)
        assert poem.check["rules"]["form"] and poem.check["rules"]["level_rhyme"]


def test_auto_form_comes_from_the_prefix(poem_ck: Checkpoint) -> None:
    assert write_poems(poem_ck, "白日依山尽，", sampling=Sampling(seed=1))[0].form == "五绝"
    assert write_poems(poem_ck, "青山", sampling=Sampling(seed=1))[0].form == "七绝"
    assert write_poems(poem_ck, sampling=Sampling(seed=1))[0].form == "七绝"
    five = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。床前明月光，"
    poem = write_poems(poem_ck, five, sampling=Sampling(seed=1))[0]
    assert poem.form == "五律" and poem.text.startswith(five)
    assert_well_formed(poem, poem_ck, lines=8, width=5, given=5, pattern=False)  # 粘 broken at line 5


def test_prefix_is_kept_and_continued(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, "白日依山尽,黄河", n=10, sampling=Sampling(seed=3)):  # ASCII comma
        assert poem.text.startswith("白日依山尽，黄河")
        assert_well_formed(poem, poem_ck, lines=4, width=5)


def test_prefix_with_a_question_mark(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, "床前明月光？疑是地上霜。举", n=10, sampling=Sampling(seed=4)):
        assert poem.text.startswith("床前明月光？疑是地上霜。举")
        assert_well_formed(poem, poem_ck, lines=4, width=5, pattern=False)  # 是 上: both 仄


def test_a_prefix_holding_a_rhyme_fixes_the_group(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, "白日依山尽，黄河入海流。", n=10, sampling=Sampling(seed=5)):
        assert poem.rhyme_group == "下平聲十一尤", poem.text
        assert_well_formed(poem, poem_ck, lines=4, width=5)


def test_a_whole_poem_as_prefix_comes_back(poem_ck: Checkpoint) -> None:
    text = "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
    assert [p.text for p in write_poems(poem_ck, text, n=2, sampling=Sampling(seed=1))] == [text, text]


def test_an_empty_prefix_writes_from_scratch(poem_ck: Checkpoint) -> None:
    poem = write_poems(poem_ck, "", form="五律", sampling=Sampling(seed=11))[0]
    assert_well_formed(poem, poem_ck, lines=8, width=5)


def test_options_that_lift_rules_still_keep_the_shape(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, "青山", form="七律", n=10, rhyme=False, allow_repeats=True, allow_copies=True,
                            sampling=Sampling(temperature=1.5, seed=2)):
        assert_well_formed(poem, poem_ck, lines=8, width=7, repeats=True, rhyme=False)
    for poem in write_poems(poem_ck, "青山", form="七律", n=10, tones=False, sampling=Sampling(seed=2)):
        assert_well_formed(poem, poem_ck, lines=8, width=7, pattern=False)


def test_repetition_control_is_what_allow_repeats_lifts() -> None:
    """The shipped model left alone repeats itself (41% of its 七律 with a character thrice, 5.5% of
    real ones): the rules hold by default, and allow_repeats gives the model its own choices back."""
    from poetgen.checkpoint import load_for

    poem_ck = load_for("poems", None)

    def repeated(poem: Poem) -> bool:
        chars = "".join(poem.lines)
        pairs = [line[i:i + 2] for line in poem.lines for i in range(len(line) - 1)]
        return max(Counter(chars).values()) > 2 or len(set(pairs)) < len(pairs)

    free = write_poems(poem_ck, form="七律", n=20, allow_repeats=True, sampling=Sampling(seed=4))
    controlled = write_poems(poem_ck, form="七律", n=20, sampling=Sampling(seed=4))
    assert sum(map(repeated, free)) >= 5
    assert not any(map(repeated, controlled))
    for poem in controlled:
        assert_well_formed(poem, poem_ck, lines=8, width=7)


def test_xinyun_rhymes(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, form="五绝", n=10, rhyme_scheme="xinyun", sampling=Sampling(seed=8)):
        assert_well_formed(poem, poem_ck, lines=4, width=5, scheme="xinyun")


def test_mood_is_fed_but_not_printed(poem_ck: Checkpoint) -> None:
    plain = write_poems(poem_ck, "青山", n=5, sampling=Sampling(seed=9))
    moody = write_poems(poem_ck, "青山", n=5, mood="明月 孤舟 寒江雪", sampling=Sampling(seed=9))
    assert [p.text for p in plain] != [p.text for p in moody]
    for poem in moody:
        assert_well_formed(poem, poem_ck, lines=4, width=7)


# ---------------------------------------------------------------------------------------------
# Acrostics


@pytest.mark.parametrize(("heads", "form", "name"), [
    ("明月孤舟", "auto", "七绝"), ("明月孤舟", "五绝", "五绝"), ("白日依山千里江陵", "五律", "五律"),
    ("白日依山千里江陵", "auto", "七律"), ("春眠觉", "五古", "五古"), ("春眠觉春眠觉", "七古", "七古"),
    ("明 月 孤 舟 寒 江", "auto", "七古"), ("明月孤舟", "五古", "五古"), ("白日依山千里江陵", "七古", "七古"),
])
def test_acrostic_heads_start_every_line(poem_ck: Checkpoint, heads: str, form: str, name: str) -> None:
    chars = heads.replace(" ", "")
    width = WIDTH[name[0]]
    for poem in write_poems(poem_ck, heads, form=form, acrostic=True, n=10, sampling=Sampling(seed=12)):
        assert poem.form == name
        assert [line[0] for line in poem.lines] == list(chars), poem.text
        # 古体 keeps no 平仄 pattern, in four or eight lines too
        assert_well_formed(poem, poem_ck, lines=len(chars), width=width, pattern=not name.endswith("古"))


def test_acrostic_heads_in_traditional_script(poem_ck: Checkpoint) -> None:
    poem = write_poems(poem_ck, "孤舟萬徑", acrostic=True, sampling=Sampling(seed=1))[0]
    assert [line[0] for line in poem.lines] == list("孤舟万径")


# ---------------------------------------------------------------------------------------------
# Seeds, batches, scripts, novelty


def test_same_seed_same_poems_other_seed_other_poems(poem_ck: Checkpoint) -> None:
    a = write_poems(poem_ck, "青山", n=5, sampling=Sampling(seed=42))
    b = write_poems(poem_ck, "青山", n=5, sampling=Sampling(seed=42))
    c = write_poems(poem_ck, "青山", n=5, sampling=Sampling(seed=43))
    assert [p.text for p in a] == [p.text for p in b]
    assert [p.text for p in a] != [p.text for p in c]
    assert [p.seed for p in a] == [42, 43, 44, 45, 46]
    assert len({p.text for p in a}) == 5  # rows of a batch differ


def test_poem_i_is_reproduced_alone_by_its_seed(poem_ck: Checkpoint) -> None:
    batch = write_poems(poem_ck, "明月", form="五律", n=4, sampling=Sampling(seed=100))
    for poem in batch[1:3]:
        alone = write_poems(poem_ck, "明月", form="五律", n=1, sampling=Sampling(seed=poem.seed))[0]
        assert alone.text == poem.text


def test_random_seed_is_reported(poem_ck: Checkpoint) -> None:
    poem = write_poems(poem_ck, "青山", sampling=Sampling(seed=None))[0]
    again = write_poems(poem_ck, "青山", sampling=Sampling(seed=poem.seed))[0]
    assert again.text == poem.text


def test_traditional_output(poem_ck: Checkpoint) -> None:
    poems = write_poems(poem_ck, "白日依山盡，", n=10, script="traditional", sampling=Sampling(seed=5))
    assert all(p.text.startswith("白日依山盡，") for p in poems)
    simplified = write_poems(poem_ck, "白日依山尽，", n=10, sampling=Sampling(seed=5))
    assert [to_script(p.text, "traditional") for p in simplified] == [p.text for p in poems]
    for poem in poems:
        assert_well_formed(poem, poem_ck, lines=4, width=5)


def test_lines_seen_in_training_are_redrawn(poem_ck: Checkpoint) -> None:
    first = write_poems(poem_ck, "青山", n=6, allow_copies=True, sampling=Sampling(temperature=0))
    copied = {line for p in first for line in p.lines}
    ck = dataclasses.replace(poem_ck, seen=frozenset(text_hash(line) for line in copied))
    again = write_poems(ck, "青山", n=6, sampling=Sampling(temperature=0))
    for poem in again:
        for i, line in enumerate(poem.lines):
            assert line not in copied or i in poem.copied_lines
        assert_well_formed(poem, ck, lines=4, width=7)
    assert not any(p.copied_lines for p in again)  # a re-draw found a new line each time
    kept = write_poems(ck, "青山", n=6, allow_copies=True, sampling=Sampling(temperature=0))
    assert [p.text for p in kept] == [p.text for p in first]


def test_to_dict_is_json(poem_ck: Checkpoint) -> None:
    data = write_poems(poem_ck, "青山", sampling=Sampling(seed=1))[0].to_dict()
    assert {"text", "lines", "form", "rhyme_group", "seed", "check"} <= set(data)
    json.dumps(data, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Errors: one clear line each


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prefix": "", "acrostic": True}, "head characters"),
    ({"prefix": "   ", "acrostic": True}, "head characters"),
    ({"prefix": "明月？孤舟", "acrostic": True}, "'？' cannot start a line"),
    ({"prefix": "明,月", "acrostic": True}, "'，' cannot start a line"),
    ({"prefix": "明龘", "acrostic": True}, "never saw '龘'"),
    ({"prefix": "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。白", "form": "五绝"}, "longer than a 五绝"),
    ({"prefix": "白日依山尽黄，", "form": "五绝"}, "line 1 of the prefix has 6 characters"),
    ({"prefix": "白日依，"}, "first line has 3 characters"),
    ({"prefix": "青山龘"}, "never saw '龘'"),
    ({"prefix": "青山abc"}, "'a', 'b', 'c'"),
    ({"prefix": "青山12"}, "'1', '2'"),
    ({"prefix": "青山🌙"}, "'🌙'"),
    ({"prefix": "，青山"}, "no characters before it"),
    ({"prefix": "青山", "n": 0}, "between 1 and 1000"),
    ({"prefix": "青山", "n": 1001}, "between 1 and 1000"),
    ({"prefix": "青山", "form": "六绝"}, "unknown form '六绝'"),
    ({"prefix": "青山", "rhyme_scheme": "pingshu"}, "unknown rhyme scheme"),
    ({"prefix": "青山", "script": "latin"}, "unknown script"),
    ({"prefix": "青山", "sampling": Sampling(temperature=-1)}, "temperature must be"),
    ({"prefix": "青山", "sampling": Sampling(top_p=0)}, "top_p must be"),
    ({"prefix": "青山", "sampling": Sampling(top_k=-2)}, "top_k must be"),
    ({"prefix": "青山", "mood": "abc"}, "the mood may hold only"),
])
def test_errors(poem_ck: Checkpoint, kwargs: dict, message: str) -> None:
    prefix = kwargs.pop("prefix")
    with pytest.raises(PoetgenError) as info:
        write_poems(poem_ck, prefix, **kwargs)
    assert message in str(info.value)
    assert info.value.code == 2
    assert "\n" not in str(info.value)


def test_unknown_character_suggests_the_other_script(poem_ck: Checkpoint) -> None:
    # A model whose script is unknown (a custom corpus) gets no automatic conversion, only a hint.
    meta = {**poem_ck.meta, "corpus": {**poem_ck.meta["corpus"], "script": None}}
    ck = dataclasses.replace(poem_ck, meta=meta)
    with pytest.raises(PoetgenError, match=r"never saw '黃'.*try '黄' for '黃'"):
        write_poems(ck, "黃河")


# ---------------------------------------------------------------------------------------------
# Property: whatever the sampling settings, the form holds


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), temperature=st.sampled_from([0.0, 0.3, 0.8, 1.0, 2.0, 5.0]),
       top_k=st.integers(0, 40), top_p=st.floats(0.01, 1.0), form=st.sampled_from(list(FORMS)),
       acrostic=st.booleans())
def test_form_holds_for_any_sampling(poem_ck: Checkpoint, seed: int, temperature: float, top_k: int, top_p: float,
                                     form: str, acrostic: bool) -> None:
    lines, width = FORMS[form]
    heads = "白日依山千里江陵"[:lines] if acrostic else "青"
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    for poem in write_poems(poem_ck, heads, form=form, acrostic=acrostic, n=3, sampling=sampling):
        assert_well_formed(poem, poem_ck, lines=lines, width=width)
        if acrostic:
            assert "".join(line[0] for line in poem.lines) == heads


# ---------------------------------------------------------------------------------------------
# Evaluation


def test_evaluate_poems_reports_rates(poem_ck: Checkpoint) -> None:
    real = {"五绝": ["白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
                    "床前明月光，疑是地上霜。举头望明月，低头思故乡。"]}
    result = evaluate_poems(poem_ck, samples=6, forms=["五绝", "七律"], real_texts=real, seed=1)
    row = result["五绝"]
    assert row["poems"] == 6 and row["form_valid"] == 1.0 and row["rhyme"] == 1.0
    assert row["rhyme_real"] == 1.0 and row["form_valid_real"] == 1.0 and row["poems_real"] == 2
    assert 0 <= row["distinct2"] <= 1 and row["poems_per_s"] > 0 and row["copied_lines"] >= 0
    assert result["七律"]["form_valid"] == 1.0 and "rhyme_real" not in result["七律"]
    acro = evaluate_poems(poem_ck, samples=4, forms=["七绝"], prompts="acrostic", real_texts={})
    assert acro["七绝"]["form_valid"] == 1.0
    with pytest.raises(PoetgenError, match="prompt kind"):
        evaluate_poems(poem_ck, prompts="suffix", real_texts={})


def test_evaluate_poems_finds_the_corpus(poem_ck: Checkpoint) -> None:
    data_dir = Path(poem_ck.meta["train"]["data_dir"])
    result = evaluate_poems(poem_ck, samples=2, forms=["五绝"], data_dir=data_dir)
    assert result["perplexity"] > 1 and result["bigram_perplexity"] > 1
    assert "note" not in result


def test_perplexities(poem_ck: Checkpoint) -> None:
    train = [Sample("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", "五绝")] * 3
    test = [Sample("床前明月光，疑是地上霜。举头望明月，低头思故乡。", "五绝")]
    ppl = heldout_perplexity(poem_ck, test)
    assert 1 < ppl < 10 * len(poem_ck.tokenizer)
    bigram = bigram_perplexity(poem_ck, train, test, val=test)
    assert 1 < bigram < 10 * len(poem_ck.tokenizer)
    # A bigram fitted on the very text it is measured on is much better than one that never saw it.
    assert bigram_perplexity(poem_ck, test, test, val=test) < bigram


def _poem_nll(ck: Checkpoint, poem) -> float:
    """The model's NLL per token of a written poem (its marks included, no end mark), computed here
    from scratch, for comparing with what the writer reports."""
    ids = ck.tokenizer.encode(poem.text)
    tokens = torch.tensor([[BOS, *ids[:-1]]])
    category = torch.tensor([ck.categories.index(poem.form)])
    with torch.no_grad():
        return -float(ck.model.token_log_probs(tokens, torch.tensor([ids]), category).sum()) / len(ids)


def test_line_search_reports_the_true_likelihood_and_keeps_likelier_lines(poem_ck: Checkpoint,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import poetgen.poems.decoder

    one = write_poems(poem_ck, "白日", form="五绝", n=2, sampling=Sampling(seed=11), candidates=1)
    assert "score" not in one[0].to_dict()
    best = write_poems(poem_ck, "白日", form="五绝", n=6, sampling=Sampling(seed=11))  # the default
    again = write_poems(poem_ck, "白日", form="五绝", n=6, sampling=Sampling(seed=11), candidates=POEM_CANDIDATES)
    assert [p.text for p in best] == [p.text for p in again]  # same seed, same poems
    for i, poem in enumerate(best):
        assert poem.seed == 11 + i and poem.check["passed"] and poem.score["candidates"] == POEM_CANDIDATES
        assert poem.score["by"] == "line search"
        # the kept candidates' recurrent states were carried correctly from line to line
        assert poem.score["nll_per_token"] == pytest.approx(_poem_nll(poem_ck, poem), rel=1e-4)
    # Without the mutual-information term the search keeps the likeliest of 4 draws of every line.
    monkeypatch.setattr(poetgen.poems.decoder, "PMI_WEIGHT", 0.0)
    searched = write_poems(poem_ck, "", form="五绝", n=12, sampling=Sampling(seed=5), candidates=4)
    single = write_poems(poem_ck, "", form="五绝", n=12, sampling=Sampling(seed=5), candidates=1)
    mean = [sum(_poem_nll(poem_ck, p) for p in poems) / len(poems) for poems in (searched, single)]
    assert mean[0] < mean[1]
    with pytest.raises(PoetgenError, match="candidates must be between"):
        write_poems(poem_ck, "白日", candidates=0)


def test_many_poems_with_many_candidates_are_batched_without_changing_them(poem_ck: Checkpoint,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import poetgen.poems.write

    whole = write_poems(poem_ck, "白日", form="五绝", n=5, sampling=Sampling(seed=3), candidates=3)
    monkeypatch.setattr(poetgen.poems.write, "MAX_ROWS", 6)  # two poems' candidates per batch
    batched = write_poems(poem_ck, "白日", form="五绝", n=5, sampling=Sampling(seed=3), candidates=3)
    assert [p.to_dict() for p in batched] == [p.to_dict() for p in whole]


# ---------------------------------------------------------------------------------------------
# Themes


def theme_words(ck: Checkpoint, rng: random.Random, count: int) -> list[str]:
    """``count`` keywords of one or two characters from the model's training lines, in its script."""
    text = to_script("".join("".join(p) for p in POEMS), "simplified")
    lines = [line for line in re.split("[，。？！；]", text) if len(line) >= 2]
    words: list[str] = []
    while len(words) < count:
        line = rng.choice(lines)
        size = rng.choice((1, 2))
        start = rng.randrange(len(line) - size + 1)
        word = line[start:start + size]
        if all(ch not in "".join(words) for ch in word) and len(set(word)) == size:
            words.append(word)
    return words


@pytest.mark.parametrize("form", list(FORMS))
def test_every_theme_keyword_appears_and_the_form_holds(poem_ck: Checkpoint, form: str) -> None:
    rng = random.Random(form)
    lines, width = FORMS[form]
    for trial in range(8):
        words = theme_words(poem_ck, rng, rng.randint(1, 3))
        for poem in write_poems(poem_ck, form=form, theme=words, n=3, sampling=Sampling(seed=trial)):
            assert all(word in poem.text for word in words), (words, poem.text)
            holders = [i for i, line in enumerate(poem.lines) if any(w in line for w in words)]
            assert len(holders) >= len(words)  # one line each
            assert_well_formed(poem, poem_ck, lines=lines, width=width)


def test_a_theme_combines_with_a_prefix_and_an_acrostic(poem_ck: Checkpoint) -> None:
    for poem in write_poems(poem_ck, "白日", theme=["黄河", "月"], form="五绝", n=5, sampling=Sampling(seed=3)):
        assert poem.text.startswith("白日") and "黄河" in poem.text and "月" in poem.text
        assert_well_formed(poem, poem_ck, lines=4, width=5)
    for poem in write_poems(poem_ck, "春夏秋冬", acrostic=True, theme=["明月"], n=5, sampling=Sampling(seed=4)):
        assert [line[0] for line in poem.lines] == list("春夏秋冬") and "明月" in poem.text
        assert_well_formed(poem, poem_ck, lines=4, width=7)


@pytest.mark.parametrize("theme, message", [
    (["秋", "月", "山", "江", "花"], "has 5 keywords, but a 五绝 has room for 4"),
    (["明月光"], "one or two characters"), (["龘"], "never saw '龘'"), ([], "at least one keyword"),
    (["月月"], "repeats a character"), (["a"], "only Chinese characters")])
def test_a_theme_that_cannot_be_written_is_refused(poem_ck: Checkpoint, theme: list[str], message: str) -> None:
    with pytest.raises(PoetgenError, match=message):
        write_poems(poem_ck, form="五绝", theme=theme)
