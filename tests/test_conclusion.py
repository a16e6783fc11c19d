"""The report's warnings and conclusion (lab.conclusion): sentences from numbers, claims only
beyond the noise."""

from __future__ import annotations

import torch

from poetgen.lab.conclusion import conclusion_blocks, paired, run_warnings, warning_blocks
from poetgen.lab.settings import applicable


def records(val: list[float], train: list[float] | None = None, epoch: int = 10) -> list[dict]:
    train = train or val
    return [{"step": 100 * (i + 1), "epoch": epoch, "val_loss": v, "train_loss": t}
            for i, (v, t) in enumerate(zip(val, train, strict=True))]


def test_a_settled_run_has_no_warning_and_an_under_trained_one_says_why():
    settled = records([2.0, 1.5, 1.2, 1.1, 1.05, 1.04, 1.03, 1.03, 1.03])
    assert run_warnings("lstm", "classify", settled, {"test_accuracy": 0.8}) == []
    short = run_warnings("lstm", "classify", records([2.0, 1.5], epoch=1), None)
    assert len(short) == 1 and "1 full epochs" in short[0] and "fewer than the 5" in short[0]
    falling = run_warnings("rnn", "classify", records([3.0, 2.8, 2.6, 2.4, 2.2, 2.0, 1.8, 1.6, 1.4]), None)
    assert any("still falling fast" in w for w in falling)
    diverged = run_warnings("gru", "classify", records([1.0] * 8, [2.0, 1.0, 0.9, 0.8, 0.8, 0.9, 1.4, 1.6]), None)
    assert any("diverged" in w for w in diverged)
    noisy = records([1.0] * 8, [2.0, 1.0, 0.5, 0.65, 0.5, 0.6, 0.55, 0.65])  # one noisy window is not divergence
    assert not any("diverged" in w for w in run_warnings("gru", "classify", noisy, None))
    poems = run_warnings("poems", "poems", records([8.0, 7.9], epoch=0), {"test_ppl": 4270.0})
    assert any("did not finish one pass" in w for w in poems) and any("4,270" in w for w in poems)
    cut = run_warnings("lstm", "classify", settled, {"stopped_early": True, "turns": 12})
    assert any("deadline stopped it after 12 turns" in w for w in cut)
    assert "Read first" in warning_blocks(short)[0].text and "long enough" in warning_blocks([])[0].text


def test_a_difference_is_claimed_only_beyond_its_interval():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2000, generator=gen) < 0.80
    same = a.clone()
    flipped = torch.cat([a.nonzero()[:10, 0], (~a).nonzero()[:10, 0]])
    same[flipped] = ~same[flipped]  # 10 names gained, 10 lost: noise
    assert not paired("a", a, "b", same).real
    worse = a & (torch.rand(2000, generator=gen) < 0.85)  # b right on a subset of a's: ~12 points worse
    d = paired("a", a, "b", worse)
    assert d.real and 0.08 < d.diff < 0.16 and "a real difference" in d.text()


def test_the_conclusion_states_the_gated_lead_with_its_noise():
    gen = torch.Generator().manual_seed(1)
    lstm = torch.rand(1800, generator=gen) < 0.83
    tutorial = lstm & (torch.rand(1800, generator=gen) < 0.9)
    custom = lstm.clone()
    rows = [{"label": "tutorial-rnn", "model": "tutorial-rnn", "cell": "torch", "steps": 900, "ms_per_step": 3.0},
            {"label": "lstm", "model": "lstm", "cell": "torch", "steps": 800, "ms_per_step": 4.0},
            {"label": "lstm:custom", "model": "lstm", "cell": "custom", "steps": 700, "ms_per_step": 5.0}]
    blocks = conclusion_blocks(rows, {"tutorial-rnn": tutorial, "lstm": lstm, "lstm:custom": custom}, warned=set())
    text = " ".join(b.text for b in blocks[1:])
    assert "lstm does beat tutorial-rnn" in text and "(within the noise)" in text  # custom = torch: no claim
    assert "1.25× torch's" in text and "one seed" in text


def test_settings_list_only_what_a_network_has():
    tutorial = applicable({"task": "classify", "model": {"model": "tutorial-rnn", "embed": 64, "dropout": 0.3,
                                                         "hidden": 128, "cell": "torch", "layers": 1}, "lr": 0.005})
    assert "embed" not in tutorial and "dropout" not in tutorial and tutorial["hidden"] == "128"
    lstm = applicable({"task": "classify", "model": {"model": "lstm", "embed": 64, "dropout": 0.3, "hidden": 128,
                                                     "adaptive": False}})
    assert lstm["embed"] == "64" and lstm["dropout"] == "0.3" and "adaptive" not in lstm
