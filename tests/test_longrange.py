"""The controlled long-range test (lab.longrange) at a tiny size: a key 3 or 40 steps back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from poetgen.lab.longrange import (
    LongRangeConfig,
    LongRangeNet,
    LongRangeResult,
    chrono_init,
    make_batch,
    run_longrange,
)
from poetgen.lab.longrange_section import longrange_blocks, verdict

TINY = LongRangeConfig(ks=(3, 40), hidden=16, embed=8, steps=200, eval_samples=200, seed=0)


@pytest.fixture(scope="module")
def tiny() -> LongRangeResult:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_longrange(TINY)
    finally:
        torch.set_num_threads(before)


def test_a_batch_is_a_key_then_distractors():
    tokens, labels = make_batch(5, 64, TINY, torch.Generator().manual_seed(0))
    assert tokens.shape == (64, 6) and torch.equal(tokens[:, 0], labels)
    assert labels.max() < TINY.keys and (tokens[:, 1:] >= TINY.keys).all()
    assert (tokens[:, 1:] < TINY.keys + TINY.distractors).all()


def test_chrono_initialisation_sets_the_keep_gates():
    lstm = LongRangeNet("lstm", TINY).rnn
    h = TINY.hidden
    forget, inputs = lstm.bias_ih_l0[h : 2 * h], lstm.bias_ih_l0[:h]
    assert (forget >= 0).all() and (forget <= math.log(max(TINY.ks) - 1)).all() and torch.equal(inputs, -forget)
    assert not lstm.bias_hh_l0.any()
    gru = torch.nn.GRU(4, h, batch_first=True)
    chrono_init(gru, "gru", 40)
    assert (gru.bias_ih_l0[h : 2 * h] >= 0).all()  # update gate z: near 1 keeps the state


def test_the_tanh_rnn_loses_a_key_the_gated_cells_keep(tiny: LongRangeResult):
    assert set(tiny.cells) == {"rnn", "lstm", "gru"}
    rnn, lstm, gru = tiny.cells["rnn"], tiny.cells["lstm"], tiny.cells["gru"]
    assert all(a >= 0.9 for a in (rnn.accuracy[0], lstm.accuracy[0], gru.accuracy[0]))  # 3 steps: every cell
    assert lstm.accuracy[1] >= 0.9 and gru.accuracy[1] >= 0.9  # 40 steps: only the gated cells
    v = verdict(tiny)
    assert v.rnn_chance == [40] and v.textbook == 40 and v.gated_hold_all and not v.missing
    # the gradient that reaches the key, 40 steps back, has vanished for the tanh RNN alone
    assert len(rnn.gradient) == 41 and rnn.relative()[0] == 1
    assert rnn.relative()[40] < 1e-6 < min(lstm.relative()[40], gru.relative()[40])
    assert all(r.steps[0] < TINY.steps for r in tiny.cells.values())  # solved early: training stopped


def test_the_section_says_what_it_measured(tiny: LongRangeResult, tmp_path: Path):
    blocks = longrange_blocks(tiny, tmp_path)
    text = " ".join(getattr(b, "text", "") for b in blocks)
    assert "From gap 40 on the picture is the textbook one" in text and "chrono initialisation" in text
    assert (tmp_path / "longrange.png").read_bytes()[:4] == b"\x89PNG"
    again = LongRangeResult.from_dict(json.loads(json.dumps(tiny.to_dict())))
    assert again.config == tiny.config and again.cells["lstm"].accuracy == tiny.cells["lstm"].accuracy


def test_out_of_time_leaves_the_gaps_untrained_and_says_so(tmp_path: Path):
    result = run_longrange(TINY, seconds=0.0)
    assert all(a is None for r in result.cells.values() for a in r.accuracy)
    assert verdict(result).missing == [3, 40] and verdict(result).textbook is None
    text = " ".join(getattr(b, "text", "") for b in longrange_blocks(result, tmp_path))
    assert "were not trained for every cell" in text and "does not show the textbook picture" in text
