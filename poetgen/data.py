"""From samples to padded batches: the corpus a training run reads, encoding, length-bucketed
batch order, collation.

Batches are right-padded with ``<pad>`` (id 0) and the loss ignores padding, so a batch of short
names costs little and no padding ever counts as a prediction. Sequences of similar length are
batched together (bucketing) so little padding is computed at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from poetgen.config import TrainConfig
from poetgen.corpora import CORPORA, Corpus, Sample, load_corpus
from poetgen.vocab import BOS, EOS, PAD, Tokenizer

ANY_SHARE = 5  # one training poem in five of a listed poet is labelled ``any`` (see ``style_of``)


def load_training_corpus(cfg: TrainConfig, data_dir: str | None = None, default_folder: bool = True) -> Corpus:
    """The corpus as ``cfg`` asks for it, from ``data_dir`` when given, else (``default_folder``)
    from ``cfg.data_dir``, else from ``$POETGEN_DATA`` / the cache."""
    spec = CORPORA.get(cfg.corpus)
    forms = cfg.forms or (list(spec.forms) if spec else [])
    folder = data_dir or (cfg.data_dir if default_folder else None)
    return load_corpus(cfg.corpus, folder, script=cfg.script, forms=forms or None)


@dataclass
class Example:
    ids: list[int]
    category: int  # conditioning category (lm) or label (classify); 0 when unconditional
    style: int = 0  # poet style (styles.py); 0 = any, and for models without styles


def encode(samples: list[Sample], tokenizer: Tokenizer, categories: list[str], max_len: int = 0,
           styles: list[str] | None = None) -> list[Example]:
    """Token ids per sample; ``max_len`` > 0 truncates long samples (poems of hundreds of lines).

    ``styles``: a styled model's poet names (index 0 = any), each poem labelled by ``style_of``."""
    index = {c: i for i, c in enumerate(categories)}
    poets = {name: i for i, name in enumerate(styles or []) if i}
    out = []
    for s in samples:
        ids = tokenizer.encode(s.text)
        if max_len:
            ids = ids[:max_len]
        if ids:
            category = index.get(s.category, 0) if s.category is not None else 0
            out.append(Example(ids, category, style_of(s.text, s.author, poets) if poets else 0))
    return out


def style_of(text: str, author: str | None, index: dict[str, int]) -> int:
    """The style a training poem is labelled with: its poet's (``index``: poet → style), or 0,
    ``any``. ``any`` learns from every poet left out and from one in ``ANY_SHARE`` of the listed
    poets' poems, picked by a hash of the text (stable across runs and resumes), so that it stays
    the whole corpus's voice rather than the voice of the poets left out (``styles``)."""
    if author not in index:
        return 0
    if int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % ANY_SHARE == 0:
        return 0
    return index[author]


def batch_order(
    lengths: list[int], batch_size: int, seed: int, epoch: int, shuffle: bool = True, bucket: int = 64
) -> list[list[int]]:
    """Indices of each batch for one epoch: shuffled, then sorted by length within buckets of
    ``bucket`` batches, then the batches shuffled. Depends only on (seed, epoch): resuming at a
    batch number replays exactly the same data order.
    """
    n = len(lengths)
    if not shuffle:
        order = sorted(range(n), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    chunk = batch_size * bucket
    batches = []
    for start in range(0, n, chunk):
        block = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [block[i : i + batch_size] for i in range(0, len(block), batch_size)]
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]


def shard(batch: list[int], rank: int, world: int) -> list[int]:
    """This rank's part of a global batch (data parallel: each rank sees batch[rank::world])."""
    return batch[rank::world]


def pad(seqs: list[list[int]]) -> Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate_lm(examples: list[Example]) -> dict[str, Tensor]:
    """Input ``<bos> x1 .. xn``, target ``x1 .. xn <eos>``, padded on the right."""
    return {
        "tokens": pad([[BOS, *e.ids] for e in examples]),
        "targets": pad([[*e.ids, EOS] for e in examples]),
        "category": torch.tensor([e.category for e in examples], dtype=torch.long),
        "style": torch.tensor([e.style for e in examples], dtype=torch.long),
    }


def collate_classify(examples: list[Example]) -> dict[str, Tensor]:
    return {
        "tokens": pad([e.ids for e in examples]),
        "lengths": torch.tensor([len(e.ids) for e in examples], dtype=torch.long),
        "labels": torch.tensor([e.category for e in examples], dtype=torch.long),
    }
