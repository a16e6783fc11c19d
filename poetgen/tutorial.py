"""The assignment's own models: the RNNs of PyTorch's "NLP from scratch" tutorials, batched.

``TutorialClassifier`` is the RNN of "Classifying names with a character-level RNN"::

    RNN(i2h: Linear(letters + 128 → 128), i2o: Linear(letters + 128 → languages), softmax: LogSoftmax)
    combined = cat(letter, hidden); hidden = i2h(combined); output = softmax(i2o(combined))

``TutorialGenerator`` is the RNN of "Generating names with a character-level RNN", conditioned on
the language by a one-hot category vector at every step::

    RNN(i2h: Linear(languages + letters + 128 → 128), i2o: Linear(… → letters),
        o2o: Linear(128 + letters → letters), dropout: Dropout(0.1), softmax: LogSoftmax)

As in the tutorials, letters are one-hot vectors and i2h has no nonlinearity. The tutorial folds
names to 57 ASCII letters (so its printout reads ``Linear(185 → 128)``); these models read
poetgen's character vocabulary instead (87 tokens for the names corpus, accented letters kept),
so the same structure prints with that width. Unlike the tutorials' one-name-per-step loops, a
batch of names runs at once: each name's state stops changing after its last letter, so the
classifier's answer is the output at the true end of the name and padding never counts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from poetgen.model import LanguageModel, ModelConfig


class TutorialClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        combined = cfg.vocab_size + cfg.hidden
        self.i2h = nn.Linear(combined, cfg.hidden)
        self.i2o = nn.Linear(combined, cfg.num_categories)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T) right-padded, lengths (B,) → log-probabilities (B, C) after each name's last letter."""
        batch, steps = tokens.shape
        letters = nn.functional.one_hot(tokens, self.cfg.vocab_size).to(self.i2h.weight.dtype)
        hidden = letters.new_zeros(batch, self.cfg.hidden)
        last = (lengths.to(tokens.device) - 1)[:, None]
        output = letters.new_zeros(batch, self.cfg.num_categories)
        for t in range(steps):
            combined = torch.cat([letters[:, t], hidden], dim=1)
            at_end = (last == t).to(hidden.dtype)  # the output the tutorial reads: after the name's last letter
            output = output + at_end * self.i2o(combined)
            alive = (last >= t).to(hidden.dtype)
            hidden = alive * self.i2h(combined) + (1 - alive) * hidden
        return self.softmax(output)

    def training_outputs(self, tokens: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, None]:
        """What training takes its loss from, as for ``Classifier``: the log-probabilities (their
        cross-entropy is the tutorial's NLL loss); there is no language model beside this one."""
        return self(tokens, lengths), None


class TutorialGenerator(LanguageModel):
    """A conditional character language model with the tutorial generator's layers; it scores and
    samples through ``LanguageModel``'s methods (``features`` gives the next-letter logits)."""

    def __init__(self, cfg: ModelConfig) -> None:
        nn.Module.__init__(self)
        self.cfg, self.adaptive = cfg, False
        letters, languages = cfg.vocab_size, cfg.num_categories
        self.i2h = nn.Linear(languages + letters + cfg.hidden, cfg.hidden)
        self.i2o = nn.Linear(languages + letters + cfg.hidden, letters)
        self.o2o = nn.Linear(cfg.hidden + letters, letters)
        self.dropout = nn.Dropout(cfg.dropout)
        self.softmax = nn.LogSoftmax(dim=1)

    @property
    def head(self):  # the logits are the features: o2o already maps to the vocabulary
        return _identity

    def features(self, tokens: Tensor, category: Tensor | None = None, state=None, style: Tensor | None = None):
        """tokens (B, T) → next-letter logits (B, T, V) and the hidden state (1, B, H); the
        tutorial's model knows no poet styles, so ``style`` is always None here."""
        batch, steps = tokens.shape
        letters = nn.functional.one_hot(tokens, self.cfg.vocab_size).to(self.i2h.weight.dtype)
        languages = self.cfg.num_categories
        cat = (nn.functional.one_hot(category, languages).to(letters.dtype) if languages and category is not None
               else letters.new_zeros(batch, languages))
        hidden = state[0] if state is not None else letters.new_zeros(batch, self.cfg.hidden)
        outputs = []
        for t in range(steps):
            combined = torch.cat([cat, letters[:, t], hidden], dim=1)
            hidden = self.i2h(combined)
            output = self.o2o(torch.cat([hidden, self.i2o(combined)], dim=1))
            outputs.append(self.dropout(output))
        return torch.stack(outputs, dim=1), hidden[None]

    def log_probs(self, h: Tensor) -> Tensor:
        return self.softmax(h.reshape(-1, h.shape[-1]).float()).view(h.shape)


def _identity(x: Tensor) -> Tensor:
    return x
