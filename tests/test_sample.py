"""Sampling primitives (poetgen.sample): filtering never keeps what it should drop; draws stay inside."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poetgen.sample import Sampling, advance, ban, draw, filter_logits, uniforms
from poetgen.vocab import EOS

# Rows of distinct finite logits (ties make "the k best" ambiguous; they are tested apart). Values
# are spaced by 1/4 so dividing by any tested temperature cannot round two of them together
# (hypothesis found 0.0 and a subnormal 1e-45 that became equal after halving).
rows = st.integers(2, 40).flatmap(
    lambda v: st.lists(st.lists(st.integers(-80, 80).map(lambda i: i / 4), min_size=v, max_size=v,
                                unique=True), min_size=1, max_size=4))


def kept(filtered: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(filtered)


@settings(max_examples=40, deadline=None)
@given(logits=rows, k=st.integers(1, 50), temperature=st.floats(0.05, 5))
def test_top_k_keeps_exactly_the_k_best(logits: list[list[float]], k: int, temperature: float) -> None:
    x = torch.tensor(logits)
    keep = kept(filter_logits(x, temperature, top_k=k))
    assert (keep.sum(-1) == min(k, x.shape[-1])).all()
    for row, mask in zip(x, keep, strict=True):
        if (~mask).any():  # every kept token beats every dropped one
            assert row[mask].min() > row[~mask].max()


@settings(max_examples=40, deadline=None)
@given(logits=rows, p=st.floats(0.01, 0.999), temperature=st.floats(0.05, 5))
def test_top_p_keeps_the_smallest_nucleus(logits: list[list[float]], p: float, temperature: float) -> None:
    x = torch.tensor(logits, dtype=torch.float64)
    filtered = filter_logits(x, temperature, top_p=p)
    probs = torch.softmax(x / temperature, dim=-1)
    for row, prob, mask in zip(x, probs, kept(filtered), strict=True):
        assert mask.any()
        if (~mask).any():
            assert row[mask].min() > row[~mask].max()  # a prefix of the tokens by probability
        mass = float(prob[mask].sum())
        smallest = float(prob[mask].min())
        assert mass >= p - 1e-9 or mask.all()  # the nucleus reaches p ...
        assert mass - smallest < p + 1e-9  # ... and drops nothing it could do without


@settings(max_examples=30, deadline=None)
@given(logits=rows)
def test_off_switches_change_nothing(logits: list[list[float]]) -> None:
    x = torch.tensor(logits)
    assert torch.equal(filter_logits(x, 1.0, top_k=0, top_p=1.0), x)
    assert torch.allclose(filter_logits(x, 2.0, top_k=0, top_p=1.0), x / 2)


@settings(max_examples=30, deadline=None)
@given(logits=rows)
def test_greedy_keeps_only_the_arg_max(logits: list[list[float]]) -> None:
    x = torch.tensor(logits)
    keep = kept(filter_logits(x, 0.0, top_k=5, top_p=0.5))
    assert (keep.sum(-1) == 1).all()
    assert torch.equal(keep.float().argmax(-1), x.argmax(-1))


def test_greedy_keeps_all_tied_maxima() -> None:
    x = torch.tensor([[1.0, 3.0, 3.0, -1.0]])
    assert kept(filter_logits(x, 0.0)).tolist() == [[False, True, True, False]]


@settings(max_examples=30, deadline=None)
@given(logits=rows, seed=st.integers(0, 2**31 - 1), k=st.integers(0, 5), p=st.floats(0.05, 1.0),
       temperature=st.sampled_from([0.0, 0.01]) | st.floats(0.05, 3.0))
def test_draw_never_picks_a_filtered_or_masked_token(logits: list[list[float]], seed: int, k: int, p: float,
                                                     temperature: float) -> None:
    x = torch.tensor(logits)
    x[:, 0] = -math.inf  # a constraint mask
    if x.shape[-1] < 2:
        return
    sampling = Sampling(temperature=temperature, top_k=k, top_p=p, seed=seed)
    allowed = kept(filter_logits(x, temperature, k, p))
    tokens = draw(x, sampling, uniforms(sampling.generator(), len(x)))
    assert allowed.gather(1, tokens[:, None]).all()


def test_a_tiny_temperature_does_not_overflow() -> None:
    x = torch.tensor([[-math.inf, 1.0, 0.5]])
    s = Sampling(temperature=1e-40, seed=0)
    assert draw(x, s, uniforms(s.generator(), 1)).tolist() == [1]


def test_same_seed_same_draws() -> None:
    x = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    s = Sampling(temperature=1.0, seed=5)
    assert torch.equal(draw(x, s, uniforms(s.generator(), 8)), draw(x, s, uniforms(s.generator(), 8)))


def test_a_row_draws_the_same_token_alone_or_in_a_batch() -> None:
    """Poems rely on it: each row's token depends only on its own logits and uniform number."""
    x = torch.randn(6, 40, generator=torch.Generator().manual_seed(1))
    s = Sampling(temperature=0.9, top_k=10, seed=0)
    u = uniforms(s.generator(), 6)
    batch = draw(x, s, u)
    alone = torch.cat([draw(x[i : i + 1], s, u[i : i + 1]) for i in range(6)])
    assert torch.equal(batch, alone)


def test_greedy_is_temperature_zero_and_ignores_the_uniforms() -> None:
    x = torch.randn(4, 30, generator=torch.Generator().manual_seed(2))
    s = Sampling(temperature=0.0)
    assert s.greedy and not Sampling(temperature=0.5).greedy
    assert torch.equal(draw(x, s, torch.zeros(4)), x.argmax(-1))
    assert torch.equal(draw(x, s, torch.ones(4) * 0.99), x.argmax(-1))


def test_banned_tokens_are_never_drawn_and_eos_ends_a_row() -> None:
    x = torch.zeros(3, 8)
    ban(x, [0, 1, 2, 5])
    s = Sampling(temperature=1.0, seed=3)
    for _ in range(20):
        assert not set(draw(x, s, uniforms(s.generator(), 3)).tolist()) & {0, 1, 2, 5}
    out: list[list[int]] = [[], [], []]
    done = advance(out, torch.tensor([False, False, True]), torch.tensor([7, EOS, 6]))
    assert out == [[7], [], []] and done.tolist() == [False, True, True]  # a finished row takes nothing
