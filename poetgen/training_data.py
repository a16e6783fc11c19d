"""What a corpus becomes before a model is trained on it: the tokenizer (a resumed run's own), the
categories and poet styles, the encoded training and validation splits, the class weights and the
hashes of the training texts that sampling checks novelty against (``TrainingData``); and the
model config that this data completes (vocabulary size, categories, adaptive clusters).

Read once when a trainer starts, never written afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from poetgen.augment import augmented
from poetgen.checkpoint import seen_tensor
from poetgen.config import TrainConfig
from poetgen.corpora import CORPORA, Corpus, Sample, serves
from poetgen.data import Example, encode
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig, default_cutoffs
from poetgen.styles import style_table
from poetgen.verse import split_lines
from poetgen.vocab import Tokenizer, build_tokenizer, tokenizer_from_dict


def corpus_categories(cfg: TrainConfig, corpus: Corpus) -> list[str]:
    if cfg.task == "classify":
        return corpus.categories
    return corpus.categories if cfg.conditional else []


def corpus_styles(cfg: TrainConfig, corpus: Corpus) -> list[list]:
    """The poets a styled model is conditioned on (``cfg.styles`` of them), with "any" first."""
    if not cfg.styles:
        return []
    if cfg.task != "lm" or serves(corpus.name) != "poems":
        poems = " or ".join(name for name in CORPORA if serves(name) == "poems")
        raise PoetgenError(f"--styles conditions a poem language model on its poets: it needs --corpus {poems} "
                           "and --task lm")
    table = style_table(corpus.split("train"), cfg.styles)
    return table if len(table) > 1 else []  # a corpus without named poets: no styles to learn


def seen_texts(corpus: Corpus) -> list[str]:
    """What "copied from the training data" means: whole lines for poems, whole samples otherwise."""
    train = corpus.split("train")
    if serves(corpus.name) == "poems":
        return [line for s in train for line in split_lines(s.text)]
    return [s.text for s in train]


def training_samples(cfg: TrainConfig, corpus: Corpus) -> list[Sample]:
    """The training split, with its names' spelling variants when ``cfg.augment``."""
    train = corpus.split("train")
    if not cfg.augment:
        return train
    return augmented(train, [s.text for split in ("val", "test") for s in corpus.split(split)])


def build_vocab(cfg: TrainConfig, corpus: Corpus) -> Tokenizer:
    texts = [s.text for s in corpus.split("train")]
    return build_tokenizer(cfg.tokenizer, texts, min_freq=cfg.min_freq, max_size=cfg.max_vocab or None)


def class_weights(examples: list, n_categories: int, power: float) -> torch.Tensor | None:
    """Per-category loss weights ∝ (N / count)^power with a mean of 1 over the examples (None at 0)."""
    if not power or n_categories < 2:
        return None
    counts = torch.bincount(torch.tensor([e.category for e in examples]), minlength=n_categories).float()
    w = (counts.sum() / counts.clamp(min=1)) ** power
    return w / (w * counts).sum() * counts.sum()


@dataclass
class TrainingData:
    """What the corpus becomes before the model is built: read once, never written afterwards."""

    tokenizer: Tokenizer
    categories: list[str]
    train: list[Example]
    val: list[Example]
    class_weights: Tensor | None  # per category, on the training device
    seen: Tensor  # hashes of the training lines / names (novelty checks at sampling time)
    styles: list[list]  # [[poet, training poems], ...] of a styled model, "any" first; else []


def prepare_data(cfg: TrainConfig, corpus: Corpus, device: torch.device,
                 saved_meta: dict | None = None) -> TrainingData:
    """Tokenizer (a resumed run's own), categories, encoded splits and class weights."""
    tokenizer = tokenizer_from_dict(saved_meta["tokenizer"]) if saved_meta else build_vocab(cfg, corpus)
    categories = saved_meta["categories"] if saved_meta else corpus_categories(cfg, corpus)
    styles = saved_meta.get("styles", []) if saved_meta else corpus_styles(cfg, corpus)
    names = [name for name, _ in styles]
    train = encode(training_samples(cfg, corpus), tokenizer, categories, cfg.max_len, names)
    val = encode(corpus.split("val"), tokenizer, categories, cfg.max_len, names)
    if not train:
        raise PoetgenError("the training split is empty")
    if not val:  # tiny custom corpora: evaluate on training data rather than fail
        val = train[: max(1, len(train) // 10)]
    if cfg.batch_size > len(train):
        raise PoetgenError(f"--batch-size {cfg.batch_size} is larger than the training set ({len(train)} samples)")
    weights = class_weights(train, len(categories), cfg.class_weight_power)
    return TrainingData(tokenizer, categories, train, val, None if weights is None else weights.to(device),
                        seen_tensor(seen_texts(corpus)), styles)


def model_config(cfg: TrainConfig, data: TrainingData) -> ModelConfig:
    """``cfg.model`` completed by the data: task, vocabulary size, categories, adaptive clusters
    (recorded, so that a checkpoint keeps its clusters if the defaults change)."""
    cutoffs = cfg.model.cutoffs or (default_cutoffs(len(data.tokenizer)) if cfg.model.adaptive else [])
    return replace(cfg.model, task=cfg.task, vocab_size=len(data.tokenizer), num_categories=len(data.categories),
                   num_styles=len(data.styles), cutoffs=list(cutoffs))
