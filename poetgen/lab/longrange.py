"""A controlled long-range experiment: can a cell carry one symbol over k steps of distractors?

Each sequence is a *key* (one of ``keys`` symbols) followed by ``k`` distractors (drawn from
``distractors`` other symbols); the label is the key, k steps before the last input. Nothing else
decides the answer, so a model that kept the key scores 1.0 and one that lost it scores chance,
1/keys. The same network — an embedding, one recurrent layer of ``hidden`` units, a linear
read-out of the last hidden state — is built with a plain tanh RNN, an LSTM and a GRU.

For every gap k a fresh network of each cell is trained at that gap alone (same seed, same
batches, Adam, gradient clipping) until it solves the training batches or ``steps`` run out, and
is scored on fresh sequences: accuracy against k, one point per trained network. The gradient
that reaches each step, ‖∂loss/∂x_t‖ against the distance from the end, is measured on the
networks of the longest gap, before and after training.

Two choices are part of the design, and the report states them. The gated cells start with their
keep gates set to a spread of memory lengths up to the longest gap (chrono initialisation, Tallec
& Ollivier 2018: LSTM forget bias log U(1, T−1) and input bias its opposite, GRU update bias the
same): that is what a gate offers and a tanh RNN lacks; with torch's default biases (forget gate
≈ 0.5) an LSTM trained at one long gap from scratch fails too. And each network sees one gap:
trained on a mix that includes short gaps, a 32-unit tanh RNN learns to latch the key in
saturated units and holds it over 100 steps as well (BENCHMARKS.md, "The long-range experiment").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

CELLS = ("rnn", "lstm", "gru")
NAMES = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU"}
SOLVED = 0.99  # training accuracy over the last WINDOW batches that ends a network's training
WINDOW = 10


@dataclass
class LongRangeConfig:
    keys: int = 4  # classes: chance is 1/keys
    distractors: int = 8
    embed: int = 16
    hidden: int = 32
    ks: tuple[int, ...] = (5, 10, 20, 30, 50, 70, 100)  # the gaps, one trained network each
    steps: int = 400  # most optimiser steps per network
    batch_size: int = 32
    lr: float = 5e-3
    clip: float = 1.0
    chrono: bool = True  # gated cells: keep gates set to remember up to max(ks) steps
    eval_samples: int = 400  # fresh sequences scored per gap
    seed: int = 0
    cells: tuple[str, ...] = CELLS


@dataclass
class CellResult:
    cell: str
    accuracy: list[float | None]  # per gap in the config's ks (None: not trained, out of time)
    steps: list[int]  # optimiser steps each network took
    seconds: float  # training time of all its networks
    gradient: list[float]  # mean ‖∂loss/∂x_t‖ at distance 0..max(ks) from the end, trained at max(ks)
    gradient_initial: list[float]  # the same network before training

    def relative(self, initial: bool = False) -> list[float]:
        """The gradient as a share of its value at the last input."""
        values = self.gradient_initial if initial else self.gradient
        return [v / values[0] if values and values[0] > 0 else math.nan for v in values]


@dataclass
class LongRangeResult:
    config: LongRangeConfig
    cells: dict[str, CellResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def chance(self) -> float:
        return 1 / self.config.keys

    @classmethod
    def from_dict(cls, data: dict) -> LongRangeResult:
        """The result ``to_dict`` wrote (``longrange.json``)."""
        cfg = LongRangeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items()})
        cells = {name: CellResult(**{k: v for k, v in r.items() if not k.startswith("relative")})
                 for name, r in data["cells"].items()}
        return cls(cfg, cells, data.get("seconds", 0.0))

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "chance": self.chance, "seconds": self.seconds,
                "cells": {name: {**asdict(r), "relative": r.relative(), "relative_initial": r.relative(True)}
                          for name, r in self.cells.items()}}


class LongRangeNet(nn.Module):
    """Embedding → one recurrent layer (``nn.RNN`` with tanh, ``nn.LSTM`` or ``nn.GRU``) → the
    last hidden state → a linear layer over the keys."""

    def __init__(self, cell: str, cfg: LongRangeConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.keys + cfg.distractors, cfg.embed)
        self.rnn = getattr(nn, cell.upper())(cfg.embed, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.keys)
        if cfg.chrono and cell != "rnn":
            chrono_init(self.rnn, cell, max(cfg.ks))

    def forward(self, x: Tensor) -> Tensor:
        """Embedded inputs (B, T, E) → logits (B, keys)."""
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


@torch.no_grad()
def chrono_init(rnn: nn.Module, cell: str, horizon: int) -> None:
    """Keep-gate biases that remember over 1 to ``horizon`` steps at initialisation, one memory
    length per unit: LSTM forget bias log U(1, horizon − 1), input bias its opposite; GRU update
    bias the same (h' = (1 − z)·n + z·h, so z near 1 keeps)."""
    h = rnn.hidden_size
    keep = torch.log(torch.empty(h).uniform_(1, max(horizon - 1, 2)))
    rnn.bias_hh_l0.zero_()
    rnn.bias_ih_l0[h : 2 * h] = keep  # LSTM gates i, f, g, o; GRU gates r, z, n: the second is the keep gate
    if cell == "lstm":
        rnn.bias_ih_l0[:h] = -keep


def make_batch(k: int, n: int, cfg: LongRangeConfig, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` sequences of a key and ``k`` distractors: tokens (n, k + 1) and labels (n,)."""
    keys = torch.randint(cfg.keys, (n,), generator=generator)
    noise = cfg.keys + torch.randint(cfg.distractors, (n, k), generator=generator)
    return torch.cat([keys[:, None], noise], dim=1), keys


def _build(cell: str, cfg: LongRangeConfig) -> LongRangeNet:
    torch.manual_seed(cfg.seed)  # every network of a cell starts alike; the cells differ only in the cell
    return LongRangeNet(cell, cfg)


def train_at(cell: str, k: int, cfg: LongRangeConfig, *, deadline: float = math.inf) -> tuple[LongRangeNet, int]:
    """A fresh network of ``cell`` trained at gap ``k`` until it gets SOLVED of its last WINDOW
    training batches right, ``cfg.steps`` run out or ``deadline`` (a ``time.perf_counter()``
    value) passes. Returns the network and its steps."""
    model = _build(cell, cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = torch.Generator().manual_seed(cfg.seed + 1)  # the same batches for every cell
    right: list[float] = []
    step = 0
    while step < cfg.steps and time.perf_counter() < deadline:
        tokens, labels = make_batch(k, cfg.batch_size, cfg, data)
        logits = model(model.embed(tokens))
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        step += 1
        right = [*right[-(WINDOW - 1):], (logits.argmax(-1) == labels).float().mean().item()]
        if len(right) == WINDOW and sum(right) / WINDOW >= SOLVED:
            break
    return model, step


@torch.no_grad()
def accuracy_at(model: LongRangeNet, k: int, cfg: LongRangeConfig) -> float:
    """Accuracy on ``cfg.eval_samples`` fresh sequences with gap ``k`` (the same for every cell)."""
    model.eval()
    tokens, labels = make_batch(k, cfg.eval_samples, cfg, torch.Generator().manual_seed(cfg.seed + 2 + k))
    return (model(model.embed(tokens)).argmax(-1) == labels).float().mean().item()


def gradient_by_distance(model: LongRangeNet, cfg: LongRangeConfig, k: int, n: int = 256) -> list[float]:
    """Mean ‖∂loss/∂x_t‖ over ``n`` sequences with gap ``k``, by distance from the last input
    (0: the last distractor, k: the key); x_t is the embedded input of step t."""
    tokens, labels = make_batch(k, n, cfg, torch.Generator().manual_seed(cfg.seed + 3))
    x = model.embed(tokens).detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), labels, reduction="sum")  # each sequence's own gradient
    (grad,) = torch.autograd.grad(loss, x)
    return grad.norm(dim=-1).mean(0).flip(0).tolist()


def run_longrange(cfg: LongRangeConfig | None = None, *, seconds: float = math.inf,
                  log: Callable[[str], None] | None = None) -> LongRangeResult:
    """Train and score a network per cell and gap within ``seconds``. Gaps go shortest first, the
    three cells in turn at each; each network may use its share of the time left, weighted by
    its sequence length; gaps not reached in time are left None."""
    cfg = cfg or LongRangeConfig()
    result = LongRangeResult(cfg)
    start = time.perf_counter()
    end = start + seconds
    acc: dict[str, list[float | None]] = {c: [None] * len(cfg.ks) for c in cfg.cells}
    steps: dict[str, list[int]] = {c: [0] * len(cfg.ks) for c in cfg.cells}
    spent = dict.fromkeys(cfg.cells, 0.0)
    longest: dict[str, LongRangeNet] = {}
    for i, k in enumerate(cfg.ks):
        for j, cell in enumerate(cfg.cells):
            now = time.perf_counter()
            weight = (k + 1) / (sum(g + 1 for g in cfg.ks[i:]) * len(cfg.cells) - j * (k + 1))
            if now >= end:
                break
            model, steps[cell][i] = train_at(cell, k, cfg, deadline=now + (end - now) * weight)
            spent[cell] += time.perf_counter() - now
            acc[cell][i] = accuracy_at(model, k, cfg)
            if k == max(cfg.ks):
                longest[cell] = model
        if log is not None:
            log(f"    gap {k}: " + ", ".join(f"{NAMES[c]} {acc[c][i]:.2f}" for c in cfg.cells
                                            if acc[c][i] is not None))
    for cell in cfg.cells:
        trained = longest.get(cell)
        initial = gradient_by_distance(_build(cell, cfg), cfg, max(cfg.ks))
        result.cells[cell] = CellResult(cell, acc[cell], steps[cell], spent[cell],
                                        gradient_by_distance(trained, cfg, max(cfg.ks)) if trained else [],
                                        initial)
    result.seconds = time.perf_counter() - start
    return result
