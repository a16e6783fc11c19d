"""Which language is this surname from: top-k languages per name, streamed in batches."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import normalize_name
from poetgen.data import pad
from poetgen.defaults import CLASSIFY_TOP
from poetgen.errors import PoetgenError
from poetgen.names.languages import canonical_case, require

# Below this (calibrated) probability the best language is more likely wrong than right: the answer
# is shown as unsure, with the runner-up beside it, rather than as a verdict.
SURE_FROM = 0.5


@dataclass
class Prediction:
    name: str  # as given, NFC-normalised and trimmed
    top: list[tuple[str, float]]  # (language, calibrated probability), most probable first
    unknown_chars: list[str] = field(default_factory=list)  # letters the model never saw (read as <unk>)

    @property
    def unsure(self) -> bool:
        return self.top[0][1] < SURE_FROM

    def to_dict(self) -> dict:
        return {"name": self.name, "top": [[lang, round(p, 6)] for lang, p in self.top], "unsure": self.unsure,
                "unknown_chars": self.unknown_chars}


def _read_name(raw: str, where: str) -> str:
    name = normalize_name(raw)
    if not name:
        raise PoetgenError(f"{where} is empty")
    if not any(ch.isalpha() for ch in name):
        raise PoetgenError(f"{where} ('{name}') has no letters")
    return name


def classify(ck: Checkpoint, names: Iterable[str], top: int = CLASSIFY_TOP, batch_size: int = 1024,
             lines: bool = False) -> Iterator[Prediction]:
    """Top-``top`` languages for each name, lazily, in input order.

    Reads ``batch_size`` names at a time, so a stream of any length runs in bounded memory. An
    empty name or one without letters stops the stream with an error naming its position (1-based).
    ``lines=True`` reads the lines of a file: blank lines are skipped, errors name the line.
    """
    require(ck, "classify")
    if top < 1:
        raise PoetgenError(f"top must be at least 1, got {top}")
    if batch_size < 1:
        raise PoetgenError(f"batch_size must be at least 1, got {batch_size}")
    top = min(top, len(ck.categories))
    numbered = enumerate(names, start=1)
    while chunk := list(itertools.islice(numbered, batch_size)):
        shown: list[str] = []
        error: PoetgenError | None = None
        for line, raw in chunk:
            if lines and not raw.strip():
                continue
            try:
                shown.append(_read_name(raw, f"line {line}" if lines else f"name {line}"))
            except PoetgenError as e:  # answer the names before it first, then stop
                error = e
                break
        if not shown:
            if error is None:  # a chunk of blank lines
                continue
            raise error
        probs, best = probabilities(ck, shown).topk(top, dim=-1)
        for i, name in enumerate(shown):
            ranked = [(ck.categories[j], float(p)) for p, j in zip(probs[i].tolist(), best[i].tolist(), strict=True)]
            yield Prediction(name, ranked, ck.tokenizer.unknown(canonical_case(name)))
        if error is not None:
            raise error


@torch.no_grad()
def probabilities(ck: Checkpoint, names: list[str]) -> torch.Tensor:
    """P(language | name), calibrated, for non-empty names as typed (read in canonical case): (N, C)
    on the CPU."""
    ids = [ck.tokenizer.encode(canonical_case(name)) for name in names]
    model = ck.model.eval()
    device = next(model.parameters()).device
    logits = model(pad(ids).to(device), torch.tensor([len(x) for x in ids]))
    return torch.softmax(logits.float() / temperature(ck), dim=-1).cpu()


def temperature(ck: Checkpoint) -> float:
    """The softmax temperature the checkpoint was calibrated with on validation data (1: none)."""
    value = float((ck.meta.get("calibration") or {}).get("temperature", 1.0))
    return value if math.isfinite(value) and value > 0 else 1.0  # NaN: a fit that failed, so none
