"""The benchmark's fluency judge: a Kneser–Ney character n-gram independent of the poem model."""

from __future__ import annotations

import math
import random

import pytest
from conftest import TINY_POEMS

from poetgen.poems.fluency import EOS, FluencyJudge

VERSE = ["".join(poem) for poem in TINY_POEMS] * 3


def test_probabilities_over_the_characters_sum_to_one() -> None:
    judge = FluencyJudge(VERSE)
    chars = sorted({ch for text in VERSE for ch in text} | {EOS})
    for context in ("", "明", "床前", "xy"):  # seen, partly seen and unseen contexts
        mass = sum(judge.prob(context, ch) for ch in chars) + judge.prob(context, "\uffff")  # one unseen slot
        assert math.isclose(mass, 1.0, rel_tol=1e-9), context


def test_verse_is_more_fluent_than_its_characters_shuffled() -> None:
    judge = FluencyJudge(VERSE)
    rng = random.Random(0)
    shuffled = []
    for text in VERSE:
        chars = list(text)
        rng.shuffle(chars)
        shuffled.append("".join(chars))
    assert judge.perplexity(VERSE) * 3 < judge.perplexity(shuffled)
    assert math.isfinite(judge.perplexity(["未见之字"]))  # unseen characters keep a finite score


def test_the_judge_needs_text() -> None:
    with pytest.raises(ValueError, match="needs some text"):
        FluencyJudge([])
    with pytest.raises(ValueError, match="no text"):
        FluencyJudge(VERSE).perplexity([])
