"""Scoring text (poetgen.score): per-line NLL, OOV handling, categories, summary, bad input."""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import pytest
import torch

from poetgen import score as score_mod
from poetgen.checkpoint import Checkpoint, load_checkpoint
from poetgen.errors import PoetgenError
from poetgen.score import MIXTURE, LineScore, read_lines, score_lines, summarize
from poetgen.vocab import BOS, UNK

JINGYESI = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
ZAOFA = "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。"


@pytest.fixture(scope="module")
def poems(tiny_models: dict[str, Path]) -> Checkpoint:
    torch.set_num_threads(1)
    return load_checkpoint(tiny_models["poems"])


@pytest.fixture(scope="module")
def names(tiny_models: dict[str, Path]) -> Checkpoint:
    return load_checkpoint(tiny_models["names"])


def _reference_nll(ck: Checkpoint, text: str, category: int | None) -> float:
    """Step by step, with the full softmax: <unk> fed for OOV characters, which are never scored."""
    model, tok = ck.model, ck.tokenizer
    ids = [tok.index.get(ch, UNK) for ch in text]
    cat = torch.tensor([category]) if category is not None else None
    h, _ = model.features(torch.tensor([[BOS, *ids[:-1]]]), cat)
    log_probs = model.log_probs(h)[0]
    return -sum(float(log_probs[t, i]) for t, i in enumerate(ids) if i != UNK)


def test_training_text_scores_better_than_its_shuffle(poems: Checkpoint):
    chars = list(JINGYESI)
    random.Random(0).shuffle(chars)
    real, shuffled = score_lines(poems, [JINGYESI, "".join(chars)])
    assert real.chars == shuffled.chars == len(JINGYESI) and real.oov == 0
    assert real.nll < shuffled.nll
    assert real.category == "五绝"  # the form, detected from the text


def test_scores_match_a_step_by_step_computation(poems: Checkpoint):
    for text, form in ((JINGYESI, "五绝"), (ZAOFA, "七绝"), ("床前Z明月光", "五绝")):
        (s,) = score_lines(poems, [text], category=form)
        category = poems.categories.index(form)
        with torch.no_grad():
            assert s.nll == pytest.approx(_reference_nll(poems, text, category), rel=1e-4)


def test_oov_characters_are_counted_and_excluded(poems: Checkpoint):
    (plain,) = score_lines(poems, ["床前明月光"])
    (odd,) = score_lines(poems, ["床前Z明月光🙂"])
    assert (odd.chars, odd.oov, odd.unknown) == (5, 2, "Z🙂")
    assert plain.oov == 0 and plain.unknown == ""
    assert math.isfinite(odd.nll) and odd.nll > 0
    # a line with nothing in the vocabulary scores nothing
    (none,) = score_lines(poems, ["ZZZ"])
    assert (none.nll, none.chars, none.oov, none.nll_per_char, none.perplexity) == (0.0, 0, 3, None, None)


def test_order_is_kept_across_batches_chunks_and_windows(poems: Checkpoint, monkeypatch: pytest.MonkeyPatch):
    texts = [JINGYESI, "", "白日依山尽", ZAOFA, "  ", "千山鸟飞绝，万径人踪灭。", JINGYESI * 3, "月"]
    one_by_one = [s for t in texts if t.strip() for s in score_lines(poems, [t])]
    monkeypatch.setattr(score_mod, "CHUNK_BATCHES", 1)
    monkeypatch.setattr(score_mod, "WINDOW_TOKENS", 8)  # forces the state to be carried across windows
    batched = list(score_lines(poems, iter(texts), batch_size=2))
    assert [s.text for s in batched] == [t for t in texts if t.strip()]
    assert [s.line for s in batched] == [1, 3, 4, 6, 7, 8]
    for a, b in zip(batched, one_by_one, strict=True):
        assert a.nll == pytest.approx(b.nll, rel=1e-4, abs=1e-4)


def test_poem_input_is_normalised_like_the_corpus(poems: Checkpoint):
    (ascii_punct,) = score_lines(poems, ["床前明月光, 疑是地上霜."])
    (full,) = score_lines(poems, ["床前明月光，疑是地上霜。"])
    assert ascii_punct.text == full.text and ascii_punct.nll == pytest.approx(full.nll)


def test_poem_categories_from_form_fragment_or_mixture(poems: Checkpoint):
    assert {"五绝", "七绝"} <= set(poems.categories)
    line5, line7, odd = score_lines(poems, ["白日依山尽", "朝辞白帝彩云间，千里江陵一日还。", "白日依山尽，黄河入海"])
    assert (line5.category, line7.category, odd.category) == ("五绝", "七绝", None)
    (forced,) = score_lines(poems, ["白日依山尽"], category="七绝")
    assert forced.category == "七绝"


def test_mixture_is_between_the_best_category_and_best_plus_log_c(names: Checkpoint):
    assert len(names.categories) == 3
    per_category = [next(score_lines(names, ["Ivanov"], category=c)).nll for c in names.categories]
    (mixed,) = score_lines(names, ["Ivanov"])
    assert mixed.category is None
    assert min(per_category) - 1e-6 <= mixed.nll <= min(per_category) + math.log(3) + 1e-6
    expected = -math.log(sum(math.exp(-v) for v in per_category) / 3)
    assert mixed.nll == pytest.approx(expected, rel=1e-5)
    (forced,) = score_lines(names, ["Ivanov"], category=MIXTURE)
    assert forced.nll == pytest.approx(mixed.nll)


def test_summary_arithmetic(poems: Checkpoint):
    scores = list(score_lines(poems, [JINGYESI, "床前Z明月光", ZAOFA]))
    summary = summarize(scores)
    total, chars = sum(s.nll for s in scores), sum(s.chars for s in scores)
    assert summary["lines"] == 3 and summary["chars"] == chars == len(JINGYESI) + 5 + len(ZAOFA)
    assert summary["oov"] == 1 and summary["unknown"] == "Z"
    assert summary["nll"] == pytest.approx(total)
    assert summary["nll_per_char"] == pytest.approx(total / chars)
    assert summary["perplexity"] == pytest.approx(math.exp(total / chars))
    assert summary["bits_per_char"] == pytest.approx(total / chars / math.log(2))
    line = scores[0].to_dict()
    assert {"text", "nll", "chars", "oov", "nll_per_char", "perplexity", "bits_per_char"} <= set(line)
    assert line["perplexity"] == pytest.approx(math.exp(line["nll"] / line["chars"]))
    assert summarize([LineScore(1, "Z", 0.0, 0, 1, "Z")])["perplexity"] is None


@pytest.mark.parametrize("lines", [[], ["", "   ", "\n"]])
def test_empty_input_is_refused(poems: Checkpoint, lines: list[str]):
    with pytest.raises(PoetgenError, match="no non-empty lines") as e:
        list(score_lines(poems, lines))
    assert e.value.code == 2


def test_binary_input_is_refused(poems: Checkpoint):
    for bad in (["床前\x00明月光"], ["床前\udcff"], [b"\xff\xfe\x00"]):
        with pytest.raises(PoetgenError, match="binary") as e:
            list(score_lines(poems, bad))
        assert e.value.code == 2
    with pytest.raises(PoetgenError, match="not UTF-8"):
        list(read_lines(io.BytesIO("床前明月光\n".encode() + b"\xc3\x28\n")))
    with pytest.raises(PoetgenError, match="NUL"):
        list(read_lines(io.BytesIO(b"abc\n\x00\x01\x02")))
    assert list(read_lines(io.BytesIO("\ufeff床前\n明月\n".encode()))) == ["床前\n", "明月\n"]


def test_bad_category_and_classifier_are_refused(poems: Checkpoint, tiny_models: dict[str, Path]):
    # checked at the call, before any input is read
    with pytest.raises(PoetgenError, match="unknown category") as e:
        score_lines(poems, [JINGYESI], category="七律x")
    assert e.value.code == 2
    classifier = load_checkpoint(tiny_models["classify"])
    with pytest.raises(PoetgenError, match="classifier") as e:
        score_lines(classifier, ["Ivanov"])
    assert e.value.code == 2
