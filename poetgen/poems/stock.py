"""Stock phrases: a ``sample.Rule`` that keeps a model from reaching for the same formula in poem
after poem.

Read blind, generated poems gave themselves away by filler the readers saw again and again
(不知何处…, 相逢不可见, 万里千山). Measured: the Tang model at its defaults put 不知何处 in 33 of 200
poems, 132 times the rate of the Tang training poems; at a cool temperature a line search keeps
the likeliest line, and the likeliest lines are formulas. Each poem alone is fine; a reader of
several sees the mould.

``tools/build_stock_phrases.py`` writes each shipped model's over-used phrases to
``tables/stock-phrases.json``: phrases of 3–4 characters inside a line that the model's own poems
(written at the defaults, openings from the validation split) hold at least ``MIN_RATIO`` times
as often as the training poems do. The rule lowers a phrase's last character, after the rest of
the phrase, by log(ratio) nats: the model's rate of the phrase falls back towards the poets'
(to first order). A table is keyed by the model it was measured on (``model_key``); another
model (one the user trained) gets no table, and the rule stays out.
"""

from __future__ import annotations

import functools
import json
import math

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.paths import PACKAGE
from poetgen.poems.masks import VocabMasks
from poetgen.poems.slot import Slot
from poetgen.sample import Rule

TABLE_PATH = PACKAGE / "tables" / "stock-phrases.json"
MIN_RATIO = 10.0  # how much more often than the poets a phrase must come, to count as stock
MIN_POEMS = 3  # and in how many of the model's poems


def model_key(ck: Checkpoint) -> str:
    """Which trained model this is: its corpus, its step and its validation loss."""
    corpus = (ck.meta.get("corpus") or {}).get("fingerprint", "")
    metrics = ck.meta.get("metrics") or {}
    return f"{corpus}:{metrics.get('step', '')}:{float(metrics.get('val_loss', 0.0)):.6f}"


@functools.cache
def _tables() -> dict:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8")) if TABLE_PATH.exists() else {}


def stock_phrases(ck: Checkpoint) -> dict[str, float]:
    """The model's over-used phrases and how many times the poets' rate it writes them ({} if the
    model was never measured)."""
    entry = _tables().get(model_key(ck)) or {}
    return {phrase: row["ratio"] for phrase, row in (entry.get("phrases") or {}).items()}


class StockPhrases(Rule):
    """After the first characters of a stock phrase, its last one is lowered by log(ratio) nats."""

    def __init__(self, vocab: VocabMasks, phrases: dict[str, float]) -> None:
        self.by_length: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        for length in sorted({len(p) for p in phrases}):
            rows = [([vocab.char_id[ch] for ch in p], math.log(r)) for p, r in phrases.items()
                    if len(p) == length and all(ch in vocab.char_id for ch in p)]
            if rows:
                self.by_length[length] = (torch.tensor([ids[:-1] for ids, _ in rows]),
                                          torch.tensor([ids[-1] for ids, _ in rows]),
                                          torch.tensor([penalty for _, penalty in rows]))

    def __call__(self, slot: Slot, logits: Tensor) -> Tensor:
        if slot.mark:
            return logits
        lowered = torch.zeros_like(logits)
        line = slot.chars[:, slot.line]
        for length, (heads, lasts, penalties) in self.by_length.items():
            if slot.pos < length - 1:
                continue
            before = line[:, slot.pos - length + 1 : slot.pos]  # (b, length - 1)
            match = (before[:, None, :] == heads.to(line.device)[None]).all(-1).float()  # (b, phrases)
            index = lasts.to(line.device).expand(len(line), -1)
            lowered.scatter_add_(1, index, match * penalties.to(logits.device))
        return logits - lowered
