"""Judging poems: fixed prompts, form / rhyme / tone / novelty / diversity rates over generated
poems beside the real ones, and held-out perplexity against a character bigram.

``evaluate_poems`` drives ``poetgen eval`` and ``benchmarks/poems.py``; the decoder it judges lives
in ``poems.py``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import Corpus, Sample, serves, to_script
from poetgen.defaults import MAX_POEMS, POEM_TEMPERATURE
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.evaluate import checkpoint_corpus
from poetgen.poems.check import check_poem
from poetgen.poems.masks import vocab_masks
from poetgen.poems.plan import check_form, model_script
from poetgen.poems.write import Poem, write_poems
from poetgen.sample import Sampling
from poetgen.verse import FORMS, is_cjk
from poetgen.vocab import BOS, EOS

PREFIX_PROMPTS = ("青山", "明月", "春风", "秋水", "白云", "孤舟", "故人", "江南")
ACROSTIC_PROMPTS = {
    4: ("春夏秋冬", "风花雪月", "山高水长", "琴棋书画", "梅兰竹菊", "江山如画"),
    8: ("风调雨顺国泰民安", "天地玄黄宇宙洪荒", "金玉满堂福寿安康", "花好月圆人寿年丰"),
}
PROMPT_KINDS = ("prefix", "acrostic")


def eval_prompts(ck: Checkpoint, kind: str, lines: int, count: int = 4, seed: int = 0) -> list[str]:
    """Fixed prompts that the model can write (converted to its script); frequent characters when
    a small vocabulary lacks them."""
    import random

    vocab = vocab_masks(ck)
    script = model_script(ck)
    candidates = PREFIX_PROMPTS if kind == "prefix" else ACROSTIC_PROMPTS.get(lines, ACROSTIC_PROMPTS[4])
    usable = []
    for text in candidates:
        text = to_script(text, script) if script else text
        if all(ch in vocab.char_id and bool(vocab.cjk[vocab.char_id[ch]]) for ch in text):
            usable.append(text)
    frequent = [t for t in vocab.char_id if is_cjk(t)][:100]  # ids are in frequency order
    rng = random.Random(seed)
    while len(usable) < count:
        usable.append("".join(rng.sample(frequent, 2 if kind == "prefix" else lines)))
    return usable[:count]


def poem_stats(texts: Sequence[str], form: str | None = None, *, ck: Checkpoint | None = None,
               scheme: str = "pingshui") -> dict:
    """Rates over poems: form-valid (form + punctuation rules, and the wanted form), level rhyme,
    tone pattern; share of lines seen in training (with a ``ck`` that carries the training lines'
    hashes, else None); distinct-2 (distinct character
    bigrams within lines / all of them); repeat rate (mean share of a poem's characters that repeat
    an earlier one); the share of poems with a character three times or more (``char_thrice``) and
    with a two-character phrase twice (``phrase_twice``), what repetition control rules out."""
    checks = [check_poem(t, scheme) for t in texts]
    count = max(len(checks), 1)
    lines = [line for c in checks for line in c.lines]
    bigrams = [line[i : i + 2] for line in lines for i in range(len(line) - 1)]
    repeats, thrice, twice = [], 0, 0
    for c in checks:
        chars = "".join(c.lines)
        repeats.append((len(chars) - len(set(chars))) / len(chars) if chars else 0.0)
        thrice += bool(chars) and max(Counter(chars).values()) >= 3
        phrases = Counter(line[i:i + 2] for line in c.lines for i in range(len(line) - 1))
        twice += bool(phrases) and max(phrases.values()) >= 2
    return {
        "poems": len(checks),
        "form_valid": sum(c.rules["form"] and c.rules["punctuation"] and (form is None or c.form == form)
                          for c in checks) / count,
        "rhyme": sum(c.rules["level_rhyme"] for c in checks) / count,
        "tone": sum(c.rules["tone_pattern"] for c in checks) / count,
        "copied_lines": (sum(ck.has_seen(line) for line in lines) / max(len(lines), 1)) if ck and ck.seen else None,
        "distinct2": len(set(bigrams)) / max(len(bigrams), 1),
        "repeat_rate": sum(repeats) / count,
        "char_thrice": thrice / count,
        "phrase_twice": twice / count,
    }


def evaluate_poems(
    ck: Checkpoint, *, samples: int = 200, forms: Iterable[str] | None = None, prompts: str = "prefix",
    seed: int = 0, real_texts: dict[str, list[str]] | None = None, data_dir: str | Path | None = None,
    sampling: Sampling | None = None, rhyme_scheme: str = "pingshui", prompt_count: int = 4,
) -> dict:
    """Write ``samples`` poems per form from ``prompt_count`` fixed prompts (prefixes or acrostic
    heads) and measure them with :func:`poem_stats`, plus warm generation speed (poems/s, one batch
    per prompt, after a warm-up call).

    Real poems are measured by the same checker for comparison: ``real_texts`` (per form, in the
    model's script), else the test split of the model's corpus when it can be found (``data_dir``,
    then $POETGEN_DATA, then the cache); with that corpus the result also holds the model's
    held-out ``perplexity`` on the test split and ``bigram_perplexity``, an interpolated character
    bigram fitted on the training split. Per-form numbers are flat dicts keyed by form
    (``rhyme`` beside ``rhyme_real`` ...); ``examples`` and ``prompts`` hold texts.
    """
    if prompts not in PROMPT_KINDS:
        raise unknown("prompt kind", prompts, list(PROMPT_KINDS))
    if not 1 <= samples <= 100_000:
        raise bad_value("samples", f"must be between 1 and 100000, got {samples}")  # a front end names it as typed
    forms = list(forms) if forms is not None else [f for f in FORMS if not ck.categories or f in ck.categories]
    for form in forms:
        check_form(form)
    sampling = (sampling or Sampling()).resolved(POEM_TEMPERATURE)
    result: dict = {"samples": samples, "prompts": prompts, "seed": seed, "scheme": rhyme_scheme,
                    "temperature": sampling.temperature, "top_k": sampling.top_k, "top_p": sampling.top_p}
    if not ck.seen:
        result["note_copies"] = "the checkpoint holds no hashes of its training lines: copies cannot be detected"
    corpus = None
    if real_texts is None:
        try:
            corpus = evaluation_corpus(ck, data_dir)
        except PoetgenError as e:
            if data_dir is not None:
                raise
            result["note"] = f"no real poems to compare with: {e}"
    if corpus is not None:
        test = corpus.split("test")
        real_texts = {form: [s.text for s in test if s.category == form][:samples] for form in forms}
        result["perplexity"] = heldout_perplexity(ck, test)
        result["bigram_perplexity"] = bigram_perplexity(ck, corpus.split("train"), test, corpus.split("val"))
        result["test_poems"] = len(test)
    examples, used_prompts = {}, {}
    for form in forms:
        heads = eval_prompts(ck, prompts, FORMS[form][0], prompt_count, seed)
        options = {"form": form, "acrostic": prompts == "acrostic", "rhyme_scheme": rhyme_scheme}
        poems, elapsed = _timed_poems(ck, heads, samples, replace(sampling, seed=seed), options)
        texts = [p.text for p in poems]
        row = poem_stats(texts, form, ck=ck, scheme=rhyme_scheme)
        row["poems_per_s"] = len(poems) / max(elapsed, 1e-9)
        row["copied_kept"] = sum(bool(p.copied_lines) for p in poems) / len(poems)
        if real_texts and real_texts.get(form):
            real = poem_stats(real_texts[form], form, ck=ck, scheme=rhyme_scheme)
            row.update({f"{k}_real": v for k, v in real.items()})
        result[form] = {k: v for k, v in row.items() if v is not None}  # flat numbers, for tables
        examples[form], used_prompts[form] = texts[:3], heads
    result["examples"], result["prompt_texts"] = examples, used_prompts
    return result


def _timed_poems(ck: Checkpoint, heads: list[str], samples: int, sampling: Sampling,
                 options: dict) -> tuple[list[Poem], float]:
    """``samples`` poems shared out over the prompts ``heads`` (prompt ``j`` seeded ``seed + j *
    MAX_POEMS``), and the seconds they took after a warm-up call (masks, caches, kernels)."""
    write_poems(ck, heads[0], n=2, sampling=sampling, **options)
    per = math.ceil(samples / len(heads))
    poems: list[Poem] = []
    start = time.perf_counter()
    for j, head in enumerate(heads):
        k = min(per, samples - len(poems))
        if k <= 0:
            break
        seeded = replace(sampling, seed=sampling.seed + j * MAX_POEMS)
        poems += write_poems(ck, head, n=k, sampling=seeded, **options)
    return poems, time.perf_counter() - start


def evaluation_corpus(ck: Checkpoint, data_dir: str | Path | None = None) -> Corpus:
    """The model's own poem corpus (tang or songci), in its script and restricted to its forms."""
    name = (ck.meta.get("corpus") or {}).get("name")
    if serves(name) != "poems":
        raise PoetgenError(f"the model was trained on {name!r}, not on a corpus poetgen can reload")
    return checkpoint_corpus(ck, data_dir)


def heldout_perplexity(ck: Checkpoint, corpus_samples: Sequence[Sample], batch_size: int = 128,
                       style: str | None = None) -> float:
    """Perplexity per token (``<eos>`` included) of the model on ``corpus_samples``, encoded with the
    model's own tokenizer and conditioned on the model's own categories (a sample whose category
    the model lacks gets category 0, so pass samples of the model's forms, in its script) and, for
    a styled model, on the poet ``style`` for every sample (None: any)."""
    from poetgen.data import encode
    from poetgen.evaluate import lm_nll, perplexity
    from poetgen.styles import style_index

    examples = encode(list(corpus_samples), ck.tokenizer, ck.categories)
    if style is not None:
        index = style_index(ck, style)
        examples = [replace(e, style=index) for e in examples]
    if not examples:
        raise PoetgenError("no samples to measure perplexity on")
    nll, _ = lm_nll(ck.model, examples, batch_size=batch_size)
    return perplexity(nll)


def bigram_perplexity(ck: Checkpoint, train: Sequence[Sample], test: Sequence[Sample],
                      val: Sequence[Sample]) -> float:
    """Perplexity on ``test`` of an interpolated character bigram over the model's own tokens.

    P(c | p) = λ·count(p, c)/count(p) + (1 − λ)·P_unigram(c), the unigram add-one smoothed over
    the vocabulary; sequences are ``<bos> tokens <eos>`` as the model sees them, so both
    perplexities count the same targets. λ is picked on ``val`` from a grid (on ``test`` if ``val`` is
    empty).
    """
    V = len(ck.tokenizer)

    def pairs(samples: Sequence[Sample]) -> tuple[Tensor, Tensor]:
        prev: list[int] = []
        nxt: list[int] = []
        for s in samples:
            ids = ck.tokenizer.encode(s.text)
            if ids:
                seq = [BOS, *ids, EOS]
                prev += seq[:-1]
                nxt += seq[1:]
        return torch.tensor(prev, dtype=torch.long), torch.tensor(nxt, dtype=torch.long)

    tp, tn = pairs(train)
    if not len(tp):
        raise PoetgenError("no training text for the bigram baseline")
    unigram = torch.bincount(tn, minlength=V).double() + 1
    unigram /= unigram.sum()
    keys, counts = torch.unique(tp * V + tn, return_counts=True)  # sorted bigram keys
    context = torch.bincount(tp, minlength=V).double()

    def parts(samples: Sequence[Sample]) -> tuple[Tensor, Tensor, Tensor]:
        p, n = pairs(samples)
        k = p * V + n
        at = torch.searchsorted(keys, k).clamp(max=len(keys) - 1)
        c = torch.where(keys[at] == k, counts[at].double(), torch.zeros((), dtype=torch.float64))
        seen = context[p] > 0
        return torch.where(seen, c / context[p].clamp(min=1), torch.zeros((), dtype=torch.float64)), unigram[n], seen

    def nll(bits: tuple[Tensor, Tensor, Tensor], lam: float) -> float:
        ml, uni, seen = bits
        weight = torch.where(seen, torch.full_like(ml, lam), torch.zeros_like(ml))
        return float(-(weight * ml + (1 - weight) * uni).log().mean())

    val_bits = parts(val) if val else parts(test)
    grid = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    lam = min(grid, key=lambda x: nll(val_bits, x))
    return math.exp(nll(parts(test), lam))
