"""Why the LSTM beats the RNN, measured on trained models rather than recited.

Three measurements on held-out examples, each for any model of ``model.MODELS`` with either cell:

- **gradient flow** (``gradient_flow``): ‖∂loss/∂x_t‖, the size of the loss's gradient at the
  input of step t, against the distance from the end of the sequence. A vanishing gradient — the
  textbook reason a plain RNN learns little from early letters — shows as a curve that falls
  steeply with distance.
- **accuracy by name length** (``accuracy_by_length``, classifiers): if long names are where the
  RNN loses, its accuracy falls faster with length than the LSTM's.
- **forget gates** (``forget_gates``, LSTMs): σ(f_t) of every unit at every real step. A gate
  near 1 keeps the cell's content from one step to the next; ``c_t = f_t * c_{t-1} + i_t * g_t``
  is the path along which the LSTM's gradient does not vanish.

Shapes: B batch, T time steps, D input size, H hidden units. Everything runs in eval mode (no
dropout) and leaves the models' parameters and their ``.grad`` untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from poetgen.data import Example, batch_order, collate_classify, collate_lm
from poetgen.tutorial import TutorialClassifier, TutorialGenerator
from poetgen.vocab import PAD

BATCH = 256
MIN_COUNT = 20  # a distance is reported only when this many examples reach back that far
LENGTH_EDGES = (4, 6, 8, 10)  # name-length buckets: ≤4, 5–6, 7–8, 9–10, ≥11 letters


# ---------------------------------------------------------------------------------------------
# Batches: the inputs each model reads, and the position whose loss is measured


def _batches(model: nn.Module, examples: list[Example], batch_size: int) -> Iterator[dict[str, Tensor]]:
    """Collated batches of similar lengths on the model's device; ``ends`` (B,) is the index of
    each sequence's last input step (the name's last letter; for a language model, the step that
    predicts ``<eos>``)."""
    device = next(model.parameters()).device
    classify = model.cfg.task == "classify"
    collate = collate_classify if classify else collate_lm
    for idx in batch_order([len(e.ids) for e in examples], batch_size, 0, 0, shuffle=False):
        batch = collate([examples[i] for i in idx])
        real = batch["lengths"] if classify else (batch["targets"] != PAD).sum(1)
        yield {**{k: v.to(device) for k, v in batch.items()}, "ends": real.to(device) - 1}


def _loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """The summed loss of the batch, each example's own term depending on that example only:
    classifier, the cross-entropy of its label; language model, the NLL of its last target."""
    if model.cfg.task == "classify":
        logits = model(batch["tokens"], batch["lengths"])  # the tutorial's are log-probabilities: same loss
        return nn.functional.cross_entropy(logits.float(), batch["labels"], reduction="sum")
    category = batch["category"] if model.cfg.num_categories else None
    style = batch.get("style") if model.cfg.num_styles else None
    log_p = model.token_log_probs(batch["tokens"], batch["targets"], category, style)  # (B, T)
    return -log_p.gather(1, batch["ends"][:, None]).sum()


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------------
# Gradient flow


@contextlib.contextmanager
def _recording(modules: list[nn.Module]) -> Iterator[list[list[Tensor]]]:
    """The outputs of ``modules`` during a forward pass, one list per module, in call order."""
    seen: list[list[Tensor]] = [[] for _ in modules]
    handles = [m.register_forward_hook(lambda _m, _args, out, keep=keep: keep.append(out))
               for m, keep in zip(modules, seen, strict=True)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _embedding_gradients(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """∂loss/∂x for the models that embed their letters: x = ``model.embed(tokens)``, (B, T, D)."""
    with _recording([model.embed]) as (outputs,):
        loss = _loss(model, batch)
    (grad,) = torch.autograd.grad(loss, outputs[0])
    return grad


def _one_hot_gradients(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """∂loss/∂x for the tutorial's RNNs, whose input x_t is a one-hot letter built inside forward.

    Both of its first layers take ``combined = cat(..., x_t, hidden)`` and are linear, so the
    gradient at x_t is ``W_i2hᵀ ∂loss/∂i2h_t + W_i2oᵀ ∂loss/∂i2o_t`` over x_t's columns: read off
    the two layers' recorded outputs, exactly (tests check it against a leaf one-hot tensor).
    """
    letters = model.cfg.vocab_size
    first = model.cfg.num_categories if isinstance(model, TutorialGenerator) else 0  # cat(category, letter, h)
    with _recording([model.i2h, model.i2o]) as (hidden_out, output_out):
        loss = _loss(model, batch)
    grads = torch.autograd.grad(loss, hidden_out + output_out, allow_unused=True)
    steps, columns = len(hidden_out), slice(first, first + letters)
    per_step = []
    for t in range(steps):
        grad_x = hidden_out[t].new_zeros(batch["tokens"].shape[0], letters)
        for layer, grad in ((model.i2h, grads[t]), (model.i2o, grads[steps + t])):
            if grad is not None:  # None: that output never reached the loss (the classifier's last i2h)
                grad_x = grad_x + grad @ layer.weight[:, columns]
        per_step.append(grad_x)
    return torch.stack(per_step, dim=1)


def input_gradient_norms(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """‖∂loss/∂x_t‖ per example and step: (B, T), 0 after each sequence's last input.

    x_t is what the recurrent part reads at step t: the letter's embedding, or the tutorial RNNs'
    one-hot letter. The batch's loss is a sum of per-example terms (see ``_loss``), so row b is
    the gradient of example b's own loss.
    """
    one_hot = isinstance(model, TutorialClassifier | TutorialGenerator)
    # cuDNN computes RNN gradients only in training mode; the plain kernels need no such switch
    with _evaluating(model), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        grad = (_one_hot_gradients if one_hot else _embedding_gradients)(model, batch)
    steps = torch.arange(grad.shape[1], device=grad.device)
    return grad.float().norm(dim=-1) * (steps[None, :] <= batch["ends"][:, None])


@dataclass
class GradientFlow:
    """Mean ‖∂loss/∂x_t‖ at each distance from the sequence's end (0: its last input)."""

    distances: list[int]
    mean_norm: list[float]
    counts: list[int]  # examples that reach back that far

    def relative(self) -> list[float]:
        """Each distance's mean gradient as a share of the one at distance 0."""
        first = self.mean_norm[0] if self.mean_norm else 0.0
        return [m / first if first > 0 else float("nan") for m in self.mean_norm]

    def at(self, distance: int) -> float | None:
        """The relative gradient at ``distance``, None when too few examples reach back that far."""
        return self.relative()[distance] if distance < len(self.distances) else None


def gradient_flow(model: nn.Module, examples: list[Example], *, batch_size: int = BATCH,
                  min_count: int = MIN_COUNT) -> GradientFlow:
    """Gradient norms averaged per distance from the end over ``examples``. Distances that fewer
    than ``min_count`` examples reach (half the examples, when there are fewer than twice that) are
    left out: their mean would be noise."""
    sums, counts = torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    for batch in _batches(model, examples, batch_size):
        norms = input_gradient_norms(model, batch).cpu().double()
        ends = batch["ends"].cpu()
        distance = ends[:, None] - torch.arange(norms.shape[1])[None, :]
        real = distance >= 0
        width = max(len(sums), int(ends.max()) + 1)
        sums = _grow(sums, width) + torch.bincount(distance[real], norms[real], minlength=width)
        counts = _grow(counts, width) + torch.bincount(distance[real], minlength=width)
    need = max(1, min(min_count, len(examples) // 2))
    kept = int((counts >= need).sum())  # counts fall with distance: a prefix is kept
    means = (sums[:kept] / counts[:kept]).tolist()
    return GradientFlow(list(range(kept)), means, counts[:kept].tolist())


def _grow(values: Tensor, width: int) -> Tensor:
    return torch.cat([values, values.new_zeros(width - len(values))])


# ---------------------------------------------------------------------------------------------
# Accuracy by name length


@dataclass
class LengthBucket:
    low: int
    high: int | None  # None: no upper end
    count: int
    correct: int

    @property
    def label(self) -> str:
        if self.high is None:
            return f"≥{self.low}"
        return f"≤{self.high}" if self.low <= 1 else (f"{self.low}" if self.low == self.high
                                                       else f"{self.low}–{self.high}")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def accuracy_by_length(model: nn.Module, examples: list[Example],
                       edges: tuple[int, ...] = LENGTH_EDGES) -> list[LengthBucket]:
    """Accuracy per bucket of name length (in tokens); ``edges`` are the buckets' upper ends, one
    more bucket takes everything longer. The counts add up to ``len(examples)``."""
    from poetgen.evaluate import classifier_logits

    logits, labels = classifier_logits(model, examples)
    right = logits.argmax(-1) == labels
    lengths = torch.tensor([len(e.ids) for e in examples], dtype=torch.long)
    lows = [1, *(e + 1 for e in edges)]
    buckets = []
    for low, high in zip(lows, [*edges, None], strict=True):
        inside = lengths >= low
        if high is not None:
            inside &= lengths <= high
        buckets.append(LengthBucket(low, high, int(inside.sum()), int((right & inside).sum())))
    return buckets


# ---------------------------------------------------------------------------------------------
# Forget gates


def has_forget_gates(model: nn.Module) -> bool:
    """An LSTM (``nn.LSTM`` or the hand-written one) whose recurrent layer ``model.rnn`` this module reads."""
    return model.cfg.model == "lstm" and isinstance(getattr(model, "rnn", None), nn.Module)


def rnn_inputs(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """What ``model.rnn`` reads in eval mode: the embedded letters (and, for a conditional
    language model, the category vector at every step): (B, T, D)."""
    if model.cfg.task == "lm":
        category = batch["category"] if model.cfg.num_categories else None
        return model.inputs(batch["tokens"], category, batch.get("style") if model.cfg.num_styles else None)
    return model.embed(batch["tokens"])


def lstm_layer(x: Tensor, alive: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
               ) -> tuple[Tensor, Tensor]:
    """One LSTM layer run from its weights (gate order i, f, g, o as torch stores them):
    x (B, T, D), alive (B, T) → hidden states (B, T, H), 0 at padding, and forget gates σ(f_t)."""
    batch, steps, _ = x.shape
    h = c = x.new_zeros(batch, w_hh.shape[1])
    xw = x @ w_ih.T + b_ih
    hs, fs = [], []
    for t in range(steps):
        i, f, g, o = (xw[:, t] + h @ w_hh.T + b_hh).chunk(4, dim=-1)
        f = torch.sigmoid(f)
        c_new = f * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        keep = alive[:, t, None]
        h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
        hs.append(h * keep)
        fs.append(f)
    return torch.stack(hs, dim=1), torch.stack(fs, dim=1)


def _flip(x: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence reversed within its own length (the backward direction's reading order)."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(1, idx[:, :, None].expand_as(x))


def lstm_gates(rnn: nn.Module, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Re-run ``nn.LSTM`` or its hand-written twin (the same parameter names) on x (B, T, D):
    the top layer's outputs (B, T, H·directions) and every layer's and direction's forget gates
    (layers·directions, B, T, H), in the order of ``h_n``."""
    dirs = 2 if rnn.bidirectional else 1
    gates = []
    for layer in range(rnn.num_layers):
        outputs = []
        for d, suffix in enumerate(["", "_reverse"][:dirs]):
            weights = [getattr(rnn, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                           "bias_hh")]
            alive = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
            seq = x if d == 0 else _flip(x, lengths)
            out, f = lstm_layer(seq, alive, *weights)
            outputs.append(out if d == 0 else _flip(out, lengths))
            gates.append(f if d == 0 else _flip(f, lengths))
        x = torch.cat(outputs, dim=-1)
    return x, torch.stack(gates)


@torch.no_grad()
def forget_gates(model: nn.Module, examples: list[Example], batch_size: int = BATCH) -> Tensor:
    """σ(f_t) of every unit, layer and direction at every real step of ``examples``: a flat tensor."""
    values = []
    with _evaluating(model):
        for batch in _batches(model, examples, batch_size):
            _, gates = lstm_gates(model.rnn, rnn_inputs(model, batch), batch["ends"] + 1)
            real = torch.arange(gates.shape[2], device=gates.device)[None, :] <= batch["ends"][:, None]  # (B, T)
            values.append(gates[:, real].flatten().cpu())
    return torch.cat(values) if values else torch.zeros(0)


@dataclass
class GateSummary:
    mean: float
    median: float
    above: float  # share of gate values > 0.9: the cell keeps >90% of that unit from step to step
    below: float  # share < 0.1: that unit's memory is wiped
    count: int


def summarise_gates(values: Tensor) -> GateSummary:
    values = values.float()
    if not len(values):
        return GateSummary(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    return GateSummary(float(values.mean()), float(values.median()), float((values > 0.9).float().mean()),
                       float((values < 0.1).float().mean()), len(values))


# ---------------------------------------------------------------------------------------------
# A plain RNN's recurrent matrix


def recurrent_matrix(model: nn.Module) -> Tensor | None:
    """The hidden-to-hidden weights (H, H) of a plain RNN's first layer: the tutorial's ``i2h``
    columns that read the hidden state (the last H of ``combined``), or ``weight_hh_l0``; None
    for the gated cells."""
    if isinstance(model, TutorialClassifier | TutorialGenerator):
        return model.i2h.weight[:, -model.cfg.hidden :].detach()
    if model.cfg.model == "rnn":
        return model.rnn.weight_hh_l0.detach()
    return None


@dataclass
class Recurrence:
    """How one step back scales a plain RNN's gradient: through the tutorial's linear recurrence
    by the recurrent matrix W itself (in the long run its largest |eigenvalue| per step), through
    tanh by at most W's largest singular value (tanh' ≤ 1)."""

    radius: float  # largest |eigenvalue| of W
    norm: float  # largest singular value of W
    linear: bool  # the tutorial's RNN: no nonlinearity between steps


def recurrence(model: nn.Module) -> Recurrence | None:
    w = recurrent_matrix(model)
    if w is None:
        return None
    w = w.double().cpu()
    return Recurrence(float(torch.linalg.eigvals(w).abs().max()), float(torch.linalg.matrix_norm(w, ord=2)),
                      isinstance(model, TutorialClassifier | TutorialGenerator))


# ---------------------------------------------------------------------------------------------
# Everything that applies to one model


@dataclass
class Evidence:
    gradient: GradientFlow
    lengths: list[LengthBucket] | None  # classifiers only
    gates: Tensor | None  # LSTMs only (flat forget-gate values)
    recurrence: Recurrence | None  # plain RNNs only


def measure(model: nn.Module, examples: list[Example], *,
            progress: Callable[[str], None] | None = None) -> Evidence:
    """Every measurement that applies to ``model`` on ``examples``."""
    say = progress or (lambda _what: None)
    say("gradient flow")
    gradient = gradient_flow(model, examples)
    lengths = None
    if model.cfg.task == "classify":
        say("accuracy by length")
        lengths = accuracy_by_length(model, examples)
    gates = None
    if has_forget_gates(model):
        say("forget gates")
        gates = forget_gates(model, examples)
    return Evidence(gradient, lengths, gates, recurrence(model))
