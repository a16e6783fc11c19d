"""The networks: a (conditional) character language model and a sequence classifier.

Shapes: B batch, T time steps, E embedding, H hidden, V vocabulary, C categories.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from poetgen.cells import CustomRNN
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.vocab import BOS, EOS, PAD

MODELS = ("rnn", "lstm", "gru", "tutorial-rnn")  # tutorial-rnn: the assignment's own (tutorial.py)
CELLS = ("torch", "custom")
TASKS = ("lm", "classify")
# What the tutorials' RNN lacks, at the value that means "none of it": one layer, one direction,
# no n-grams, no language model beside it, no adaptive or tied output, torch's cell.
TUTORIAL_PLAIN = {"layers": 1, "bidirectional": False, "ngram": 0, "generative": 0, "adaptive": False,
                  "tie": False, "cell": "torch"}
LOGITS_ELEMENTS = 1 << 24  # a full-softmax head computes at most this many logits at once when scoring


@dataclass
class ModelConfig:
    task: str = "lm"  # lm: next-character model; classify: sequence -> category
    model: str = "lstm"  # rnn | lstm | gru
    cell: str = "torch"  # torch (cuDNN/MKL kernels) | custom (hand-written, see cells.py)
    vocab_size: int = 0
    num_categories: int = 0  # lm: conditioning categories (0 = unconditional); classify: classes
    embed: int = 128
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    category_embed: int = 32  # size of the category vector fed at every step (conditional lm)
    num_styles: int = 0  # lm: poet styles (index 0 = any; 0 = a model without styles)
    style_embed: int = 32  # size of the style vector fed at every step beside the category's
    tie: bool = False  # share input embedding and output weights (lm)
    adaptive: bool = False  # AdaptiveLogSoftmaxWithLoss output for large vocabularies (lm)
    cutoffs: list[int] = field(default_factory=list)  # adaptive softmax cluster edges
    bidirectional: bool = False  # classify only
    ngram: int = 0  # classify: hashed character n-grams up to this length beside the RNN (0 = off)
    ngram_buckets: int = 8192  # hash buckets of those n-grams
    generative: int = 0  # classify: hidden size of a language-conditioned character LM beside it (0 = off)

    def validate(self) -> ModelConfig:
        self.validate_choices()
        if self.task == "classify" and self.num_categories < 2:
            raise PoetgenError("a classifier needs at least two categories in the corpus")
        if self.vocab_size <= 4:
            raise PoetgenError("the vocabulary is empty: is the corpus empty?")
        if self.cutoffs and not (all(a < b for a, b in zip([0, *self.cutoffs], self.cutoffs, strict=False))
                                 and self.cutoffs[-1] < self.vocab_size):
            raise bad_value("cutoffs", f"must rise strictly between 1 and {self.vocab_size - 1} (the vocabulary), "
                                       f"got {self.cutoffs}")
        return self

    def validate_choices(self) -> ModelConfig:
        """What can be checked before the corpus is read: names and sizes."""
        if self.task not in TASKS:
            raise unknown("task", self.task, list(TASKS))
        if self.model not in MODELS:
            raise unknown("model", self.model, list(MODELS))
        if self.cell not in CELLS:
            raise unknown("cell", self.cell, list(CELLS))
        for name in ("embed", "hidden", "layers"):
            value = getattr(self, name)
            if not 1 <= value <= 8192:
                raise bad_value(name, f"must be between 1 and 8192, got {value}")
        if not 0 <= self.generative <= 8192:
            raise bad_value("generative", f"must be between 0 and 8192, got {self.generative}")
        for name, low, high in (("category_embed", 1, 8192), ("style_embed", 1, 8192), ("ngram", 0, 16),
                                ("ngram_buckets", 1, 1 << 20), ("vocab_size", 0, 1 << 24),
                                ("num_categories", 0, 1 << 16), ("num_styles", 0, 1 << 16)):
            if not low <= getattr(self, name) <= high:
                raise bad_value(name, f"must be between {low} and {high}, got {getattr(self, name)}")
        # Options that do not apply to the task are refused, not recorded and ignored.
        for name in ("generative", "ngram", "bidirectional") if self.task != "classify" else ("tie", "adaptive"):
            if getattr(self, name):
                task = "classifiers only (--task classify)" if self.task != "classify" else \
                    "language models only (--task lm)"
                raise bad_value(name, f"applies to {task}")
        if not 0 <= self.dropout < 1:
            raise bad_value("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.model == "tutorial-rnn":  # it would ignore them, and its config would claim them
            for name, plain in TUTORIAL_PLAIN.items():
                if getattr(self, name) != plain:
                    raise bad_value(name, f"does not apply to the tutorial-rnn model (the tutorials' one-layer "
                                          f"RNN), got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise PoetgenError(f"checkpoint config has unknown fields: {', '.join(sorted(extra))}")
        for f in fields(cls):
            if f.name in data and not _of_type(data[f.name], str(f.type)):
                raise bad_value(f.name, f"must be {TYPE_NAMES[str(f.type)]}, got {data[f.name]!r}")
        cfg = cls(**data)
        if cfg.model == "tutorial-rnn":  # earlier versions recorded the preset's extras, never built
            cfg = with_model(cfg, cfg.model)
        return cfg.validate()


TYPE_NAMES = {"str": "a string", "int": "a whole number", "float": "a finite number", "bool": "true or false",
              "list[int]": "a list of whole numbers"}


def _of_type(value: object, kind: str) -> bool:
    """Is ``value`` (from JSON) of the dataclass field type ``kind``? (JSON's true is no number here.)"""
    if kind == "list[int]":
        return isinstance(value, list) and all(_of_type(v, "int") for v in value)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool}[kind])


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by every time step (Gal & Ghahramani 2016).

    The regulariser AWD-LSTM uses around recurrent layers; it also draws T times fewer random
    numbers than ``nn.Dropout``, whose per-element Bernoulli draws cost ~8% of a CPU step.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        if not self.training or not self.p:
            return x
        keep = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= self.p
        return x * (keep.to(x.dtype) / (1 - self.p))  # scale the small mask, not the big tensor

    def extra_repr(self) -> str:
        return f"p={self.p}"


def recurrent(cfg: ModelConfig, input_size: int) -> nn.Module:
    """``nn.LSTM`` & co. (``getattr(nn, 'LSTM')``) or their hand-written twins."""
    dropout = cfg.dropout if cfg.layers > 1 else 0.0
    bidirectional = cfg.bidirectional and cfg.task == "classify"
    if cfg.cell == "custom":
        return CustomRNN(cfg.model, input_size, cfg.hidden, cfg.layers, dropout, bidirectional)
    return getattr(nn, cfg.model.upper())(
        input_size, cfg.hidden, cfg.layers, batch_first=True, dropout=dropout, bidirectional=bidirectional
    )


class LanguageModel(nn.Module):
    """Embedding (+ category vector at every step) → RNN/LSTM/GRU → softmax over the vocabulary."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed, padding_idx=PAD)
        cat = cfg.category_embed if cfg.num_categories else 0
        self.category = nn.Embedding(cfg.num_categories, cat) if cat else None
        sty = cfg.style_embed if cfg.num_styles else 0
        self.style = nn.Embedding(cfg.num_styles, sty) if sty else None
        self.rnn = recurrent(cfg, cfg.embed + cat + sty)
        self.drop = LockedDropout(cfg.dropout)
        out = cfg.hidden
        self.proj = None
        if cfg.tie and cfg.hidden != cfg.embed:  # tying needs the output in embedding space
            self.proj = nn.Linear(cfg.hidden, cfg.embed)
            out = cfg.embed
        self.adaptive = cfg.adaptive
        if cfg.adaptive:
            cutoffs = cfg.cutoffs or default_cutoffs(cfg.vocab_size)
            self.head = nn.AdaptiveLogSoftmaxWithLoss(out, cfg.vocab_size, cutoffs, div_value=2.0)
        else:
            self.head = nn.Linear(out, cfg.vocab_size)
            if cfg.tie:
                self.head.weight = self.embed.weight

    def inputs(self, tokens: Tensor, category: Tensor | None = None, style: Tensor | None = None) -> Tensor:
        """What the recurrent layer reads before dropout: each token's embedding, with the
        category's vector and the style's (``None``: any, index 0) beside it at every step."""
        x = self.embed(tokens)
        steps = tokens.shape[1]
        if self.category is not None:
            if category is None:
                raise PoetgenError("this model is conditional: give a category")
            x = torch.cat([x, self.category(category)[:, None, :].expand(-1, steps, -1)], dim=-1)
        if self.style is not None:
            if style is None:
                style = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
            x = torch.cat([x, self.style(style)[:, None, :].expand(-1, steps, -1)], dim=-1)
        return x

    def features(self, tokens: Tensor, category: Tensor | None = None, state=None, style: Tensor | None = None):
        """tokens (B, T) → hidden features (B, T, H) and the recurrent state; ``style`` (B,) picks a
        poet for a styled model (None: any)."""
        h, state = self.rnn(self.drop(self.inputs(tokens, category, style)), state)
        h = self.drop(h)
        return (self.proj(h) if self.proj is not None else h), state

    def log_probs(self, h: Tensor) -> Tensor:
        """(…, H) → (…, V) log-probabilities of every next token (what decoding draws from)."""
        if self.adaptive:
            return self.head.log_prob(h.reshape(-1, h.shape[-1])).view(*h.shape[:-1], -1)
        return torch.log_softmax(self.head(h).float(), dim=-1)

    def target_log_probs(self, h: Tensor, targets: Tensor) -> Tensor:
        """log p(target) for features (…, H) and targets (…): (…), 0 where the target is padding.

        The one place where scores are read off the output layer: training loss, held-out NLL,
        ``poetgen score`` and names guidance all come here. Only non-padding positions reach the
        head; an adaptive head evaluates just each target's cluster, a full one at most
        ``LOGITS_ELEMENTS`` logits at once.
        """
        if self.adaptive:
            return self._adaptive_target_log_probs(h, targets)
        mask = targets != PAD
        flat_h, flat = h[mask], targets[mask]
        step = max(1, LOGITS_ELEMENTS // self.cfg.vocab_size)
        picked = torch.cat([
            -nn.functional.cross_entropy(self.head(flat_h[i : i + step]).float(), flat[i : i + step],
                                         reduction="none")
            for i in range(0, max(len(flat), 1), step)
        ])
        return torch.zeros(targets.shape, dtype=picked.dtype, device=h.device).masked_scatter(mask, picked)

    def _adaptive_target_log_probs(self, h: Tensor, targets: Tensor) -> Tensor:
        """``target_log_probs`` through the adaptive head, with the positions sorted by cluster.

        The same numbers as ``AdaptiveLogSoftmaxWithLoss.forward``, which gathers each cluster's
        rows with ``index_select`` (a scatter over all rows in the backward pass, once per
        cluster): here one gather picks every non-padding position in cluster order, each
        cluster's rows are then a contiguous slice, and one scatter puts the results back."""
        head = self.head
        rows = (targets != PAD).reshape(-1).nonzero().squeeze(1)
        flat = targets.reshape(-1).index_select(0, rows)  # targets may be a window of a wider batch
        edges = torch.tensor(head.cutoffs[:-1], device=flat.device)
        cluster = torch.bucketize(flat, edges, right=True)  # 0: the shortlist; i: tail cluster i - 1
        order = torch.argsort(cluster, stable=True)
        rows, flat, cluster = rows[order], flat[order], cluster[order]
        hs = h.reshape(-1, h.shape[-1]).index_select(0, rows)
        head_lp = torch.log_softmax(head.head(hs).float(), dim=-1)
        column = torch.where(cluster == 0, flat, head.shortlist_size + cluster - 1)
        picked = head_lp.gather(1, column[:, None]).squeeze(1)
        sizes = torch.bincount(cluster, minlength=head.n_clusters + 1).tolist()
        tails = [torch.zeros(sizes[0], dtype=picked.dtype, device=picked.device)]
        for i, (part, tgt) in enumerate(zip(hs.split(sizes)[1:], flat.split(sizes)[1:], strict=True)):
            lp = torch.log_softmax(head.tail[i](part).float(), dim=-1)
            tails.append(lp.gather(1, (tgt - head.cutoffs[i])[:, None]).squeeze(1))
        picked = picked + torch.cat(tails)
        out = torch.zeros(targets.numel(), dtype=picked.dtype, device=h.device)
        return out.index_put((rows,), picked).view(targets.shape)

    def token_log_probs(self, tokens: Tensor, targets: Tensor, category: Tensor | None = None,
                        style: Tensor | None = None) -> Tensor:
        """log p(targets[b, t] | tokens[b, :t+1], category[b], style[b]): (B, T), 0 at padding."""
        h, _ = self.features(tokens, category, style=style)
        return self.target_log_probs(h, targets)

    def forward(self, tokens: Tensor, targets: Tensor, category: Tensor | None = None,
                style: Tensor | None = None) -> Tensor:
        """Each sequence's negative log-likelihood, summed over its non-padding targets: (B,). The
        training loss is their sum (or, class-weighted, their weighted sum)."""
        return -self.token_log_probs(tokens, targets, category, style).sum(1)


def default_cutoffs(vocab_size: int) -> list[int]:
    """Clusters for adaptive softmax: the frequent head, then rarer tails (ids in frequency order).

    Every position pays for the head, only the rarer ones for a tail, so on a CPU a small head is
    cheapest: in the Tang corpus the top 200 characters are 56% of the text, the top 1,000 88%,
    the top 3,000 98.7%. Against a 1,000-character head this cuts the output layer's work per
    character from ~290k to ~110k multiply-adds at hidden size 256 (BENCHMARKS.md).
    """
    edges = [c for c in (200, 1000, 3000) if c < vocab_size - 1]
    return edges or [max(1, vocab_size // 2)]


class Classifier(nn.Module):
    """Embedding → RNN over packed sequences → last hidden state (+ the mean embedding of the
    name's hashed character n-grams, when ``cfg.ngram``) → linear over categories.

    The n-gram bag sees every part of the name at once (endings such as -ova, -escu, -ez are what
    tells many languages apart), where the recurrent state must carry them to the last step.

    With ``cfg.generative`` the classifier also holds a character language model conditioned on the
    category, and decides by both: a · log softmax(linear) + b · log P(name | category), the
    weights (``mix``) fitted on validation data (``evaluate.fit_mixture``). The language model is
    a generative classifier with a uniform prior: it learns each language's spelling from that
    language's names alone, so a language with 60 training names is not drowned by one with 7,000,
    where the linear layer learns the boundaries between languages.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed, padding_idx=PAD)
        self.rnn = recurrent(cfg, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        dirs = 2 if cfg.bidirectional else 1
        self.ngrams = nn.Embedding(cfg.ngram_buckets, cfg.hidden) if cfg.ngram else None
        features = cfg.hidden * dirs + (cfg.hidden if cfg.ngram else 0)
        self.out = nn.Linear(features, cfg.num_categories)
        self.lm = LanguageModel(generative_config(cfg)) if cfg.generative else None
        if self.lm is not None:
            self.register_buffer("mix", torch.tensor([1.0, 0.0]))  # (a, b): the linear layer alone until fitted

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T) right-padded, lengths (B,) → the logits the model decides by (B, C)."""
        if self.lm is None:
            return self.discriminate(tokens, lengths)
        return self.mixed(self.parts(tokens, lengths))

    def training_outputs(self, tokens: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None]:
        """What training takes its two losses from: the linear layer's logits (B, C) and, for a
        generative classifier, its language model's mean NLL per character of each name under its
        label ``labels`` (B,); None without one."""
        if self.lm is None:
            return self.discriminate(tokens, lengths), None
        lm_in, lm_out = _lm_sequences(tokens, lengths)
        nll = self.lm(lm_in, lm_out, labels) / (lengths.to(tokens.device) + 1)
        return self.discriminate(tokens, lengths), nll

    def mixed(self, parts: Tensor) -> Tensor:
        """The decision's logits from ``parts``' two scores (…, 2, C): a · first + b · second."""
        return (self.mix.to(parts.device, parts.dtype)[:, None] * parts).sum(-2)

    def parts(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """The two scores a generative classifier mixes, (B, 2, C): log softmax of the linear layer
        and log P(name | category)."""
        logits = self.discriminate(tokens, lengths).log_softmax(-1)
        return torch.stack([logits, self.name_log_likelihood(tokens, lengths).to(logits.dtype)], dim=1)

    def discriminate(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """The linear layer's logits over the RNN's last state (and the n-gram bag): (B, C)."""
        x = self.drop(self.embed(tokens))
        if isinstance(self.rnn, CustomRNN):
            _, state = self.rnn(x, lengths=lengths)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        dirs = 2 if self.cfg.bidirectional else 1
        features = [torch.cat(list(h[-dirs:]), dim=-1)]  # top layer, both directions
        if self.ngrams is not None:
            features.append(self.ngram_bag(tokens, lengths))
        return self.out(self.drop(torch.cat(features, dim=-1)))

    def name_log_likelihood(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """log P(name | category) for every category, the end mark included: (B, C)."""
        b, c = tokens.shape[0], self.cfg.num_categories
        lm_in, lm_out = _lm_sequences(tokens, lengths)
        every = torch.arange(c, device=tokens.device).repeat(b)
        ll = self.lm.token_log_probs(lm_in.repeat_interleave(c, 0), lm_out.repeat_interleave(c, 0), every)
        return ll.sum(1).view(b, c)

    def ngram_bag(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Mean embedding of the name's character n-grams, n = 1..cfg.ngram, the name framed by
        ``<bos>`` / ``<eos>`` so that beginnings and endings are n-grams of their own: (B, H)."""
        b, t = tokens.shape
        framed = torch.full((b, t + 2), PAD, dtype=torch.long, device=tokens.device)
        framed[:, 0] = BOS
        framed[:, 1 : t + 1] = tokens
        framed[torch.arange(b, device=tokens.device), lengths.to(tokens.device) + 1] = EOS
        base = self.cfg.vocab_size + 1  # n ids in base V+1: an exact code, hashed into the buckets
        ids, valid = [], []
        for n in range(1, min(self.cfg.ngram, t + 2) + 1):
            windows = framed.unfold(1, n, 1)  # (B, T + 3 - n, n)
            code = (windows * (base ** torch.arange(n, device=tokens.device))).sum(-1)
            ids.append((code * 2654435761 + n) % self.cfg.ngram_buckets)
            valid.append((windows != PAD).all(-1))
        ids, mask = torch.cat(ids, dim=1), torch.cat(valid, dim=1).to(self.ngrams.weight.dtype)
        summed = (self.ngrams(ids) * mask[..., None]).sum(1)
        return summed / mask.sum(1, keepdim=True).clamp(min=1)


def generative_config(cfg: ModelConfig) -> ModelConfig:
    """The language model inside a generative classifier: an LSTM of two ``cfg.generative`` layers
    over the classifier's vocabulary, conditioned on its categories (the names generator's shape)."""
    return ModelConfig(task="lm", model="lstm", cell=cfg.cell, vocab_size=cfg.vocab_size,
                       num_categories=cfg.num_categories, embed=cfg.embed, hidden=cfg.generative, layers=2,
                       dropout=cfg.dropout)


def _lm_sequences(tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """A right-padded batch of names as a language model reads them: ``<bos>`` + name, and name +
    ``<eos>`` as the targets (padding after)."""
    b = tokens.shape[0]
    start = torch.full((b, 1), BOS, dtype=tokens.dtype, device=tokens.device)
    targets = torch.cat([tokens, torch.full_like(start, PAD)], dim=1)
    targets[torch.arange(b, device=tokens.device), lengths.to(tokens.device)] = EOS
    return torch.cat([start, tokens], dim=1), targets


def with_model(cfg: ModelConfig, model: str, cell: str | None = None) -> ModelConfig:
    """``cfg`` on another network (and cell). For the tutorials' RNN, the structure it lacks is
    dropped from the recipe (``TUTORIAL_PLAIN``); its sizes and dropout stay, and so does a cell
    asked for, which validation then refuses rather than ignore."""
    out = replace(cfg, model=model, cell=cell or cfg.cell)
    if model == "tutorial-rnn":
        out = replace(out, **{k: v for k, v in TUTORIAL_PLAIN.items() if k != "cell"})
    return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
