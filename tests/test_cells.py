"""The hand-written cells are exact twins of torch's: same weights → same outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from poetgen.cells import CustomRNN
from poetgen.model import Classifier, LanguageModel, ModelConfig


def twins(mode: str, layers: int, bidirectional: bool) -> tuple[nn.Module, CustomRNN]:
    torch.manual_seed(0)
    kwargs = {"nonlinearity": "tanh"} if mode == "rnn" else {}
    ref = getattr(nn, mode.upper())(6, 5, layers, batch_first=True, bidirectional=bidirectional, **kwargs).double()
    mine = CustomRNN(mode, 6, 5, layers, bidirectional=bidirectional).double()
    mine.load_state_dict(ref.state_dict())  # same names, same shapes
    return ref, mine


def flat(state):
    return torch.cat([s.flatten() for s in state]) if isinstance(state, tuple) else state.flatten()


@pytest.mark.parametrize("mode", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, False), (2, True)])
def test_outputs_and_gradients_agree(mode: str, layers: int, bidirectional: bool):
    ref, mine = twins(mode, layers, bidirectional)
    x = torch.randn(4, 7, 6, dtype=torch.double)
    out_ref, h_ref = ref(x)
    out_mine, h_mine = mine(x)
    torch.testing.assert_close(out_mine, out_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(flat(h_mine), flat(h_ref), atol=1e-5, rtol=0)
    (out_ref.square().sum() + flat(h_ref).sum()).backward()
    (out_mine.square().sum() + flat(h_mine).sum()).backward()
    for (name, p_ref), p_mine in zip(ref.named_parameters(), mine.parameters(), strict=True):
        torch.testing.assert_close(p_mine.grad, p_ref.grad, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_lengths_match_packed_sequences(mode: str):
    ref, mine = twins(mode, 2, True)
    x = torch.randn(3, 6, 6, dtype=torch.double)
    lengths = torch.tensor([6, 2, 4])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_ref, h_ref = ref(packed)
    out_ref, _ = nn.utils.rnn.pad_packed_sequence(out_ref, batch_first=True, total_length=6)
    out_mine, h_mine = mine(x, lengths=lengths)
    torch.testing.assert_close(out_mine, out_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(flat(h_mine), flat(h_ref), atol=1e-5, rtol=0)


def test_classifier_with_custom_cell_equals_torch_cell():
    cfg = ModelConfig(task="classify", model="lstm", vocab_size=20, num_categories=3, embed=8, hidden=6, layers=2,
                      dropout=0.0, bidirectional=True)
    torch.manual_seed(0)
    ref = Classifier(cfg).eval()
    mine = Classifier(ModelConfig(**{**cfg.to_dict(), "cell": "custom"})).eval()
    mine.load_state_dict(ref.state_dict())
    tokens = torch.randint(4, 20, (5, 9))
    lengths = torch.tensor([9, 3, 5, 1, 7])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    torch.testing.assert_close(mine(tokens, lengths), ref(tokens, lengths), atol=1e-5, rtol=0)


def test_print_shows_a_readable_structure():
    lm = LanguageModel(ModelConfig(vocab_size=100, embed=16, hidden=32, num_categories=4, category_embed=8))
    text = str(lm)
    assert "Embedding(100, 16" in text and "LSTM(24, 32, num_layers=2" in text and "Linear(in_features=32" in text
    custom = str(LanguageModel(ModelConfig(vocab_size=100, embed=16, hidden=32, model="gru", cell="custom")))
    assert "CustomRNN(mode=GRU, 16, 32, num_layers=2" in custom and "hand-written" in custom
