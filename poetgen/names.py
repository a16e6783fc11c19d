"""Names: language-conditioned surname generation, "which language is this surname from?", and the
evaluation of both models on the leak-free split of the 18-language names corpus.

Capitalisation: the training data writes names the way ``str.title()`` does (``Dovesky``,
``O'Brien``, ``Bestuzhev-Ryumin``; 99.7% of the distinct names). A name typed all in lower case or
all in upper case (``hou``, ``DOVESKY``) carries no case information, so it is read as its
``title()`` form; a name in mixed case (``McDonald``, ``DeBeers``) is taken as typed. The same rule
applies to ``start`` when generating (``--start mc`` forces ``Mc``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import load_corpus, normalize_name
from poetgen.data import collate_classify, encode, pad
from poetgen.errors import PoetgenError, unknown
from poetgen.metrics import classification_report, classifier_predictions, lm_nll
from poetgen.sample import Sampling, Stepper, draw
from poetgen.vocab import BOS, EOS, PAD, UNK

# Chosen on the shipped generator (see benchmarks/names.py): at 0.8 the classifier agrees with the
# requested language for >= 85% of the names while >= 60% of them are new (not in training).
DEFAULT_TEMPERATURE = 0.8
MAX_NAMES = 1000  # per call (per language for generate_all)
MAX_ROUNDS = 8  # oversampling rounds before giving up on finding more distinct names
NAME_PUNCTUATION = frozenset("-' ")  # the non-letters a generated name may contain


# ---------------------------------------------------------------------------------------------
# Languages and spelling


def resolve_language(ck: Checkpoint, text: str) -> str:
    """The model's language for ``text``: case-insensitive, any unique prefix (``rus`` → Russian)."""
    languages = list(ck.categories)
    if not languages:
        raise PoetgenError(f"{ck.path} is not conditioned on a language")
    key = text.strip().lower()
    if not key:
        raise PoetgenError(f"give a language; choose from: {', '.join(languages)}")
    exact = [lang for lang in languages if lang.lower() == key]
    if exact:
        return exact[0]
    matches = [lang for lang in languages if lang.lower().startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise PoetgenError(f"language '{text}' is ambiguous: it could be {', '.join(matches)}")
    raise unknown("language", text, languages)


def canonical_case(name: str) -> str:
    """``hou`` → ``Hou``, ``DOVESKY`` → ``Dovesky``, ``o'brien`` → ``O'Brien``; mixed case stays."""
    if name.islower() or name.isupper():
        return name.title()
    return name


def _is_name_token(token: str) -> bool:
    return any(ch.isalpha() for ch in token) or token in NAME_PUNCTUATION


# ---------------------------------------------------------------------------------------------
# Generation


def _require(ck: Checkpoint, kind: str) -> None:
    if ck.kind != kind:
        wanted = {"names": "a names language model", "classify": "a names classifier"}[kind]
        raise PoetgenError(f"{ck.path} is not {wanted} (it is a {ck.kind} model)")


def _check_count(n: int, what: str = "n") -> None:
    if not 1 <= n <= MAX_NAMES:
        raise PoetgenError(f"{what} must be between 1 and {MAX_NAMES}, got {n}")


def _start_ids(ck: Checkpoint, start: str, max_len: int) -> tuple[str, list[int]]:
    start = canonical_case(normalize_name(start)) if start.strip() else ""
    missing = ck.tokenizer.unknown(start)
    if missing:
        raise PoetgenError(
            f"--start '{start}' has letters the model never saw: {' '.join(missing)} "
            "(names are written in the Latin alphabet)"
        )
    if len(start) >= max_len:
        raise PoetgenError(f"--start '{start}' is not shorter than the maximum name length {max_len}")
    return start, ck.tokenizer.encode(start)


@torch.no_grad()
def _sample_raw(
    ck: Checkpoint, category: int, start_ids: list[int], count: int, max_len: int, sampling: Sampling,
    g: torch.Generator,
) -> list[str]:
    """``count`` free samples in one batch; names that reach ``max_len`` without ending are dropped."""
    vocab = ck.tokenizer.tokens
    banned = [PAD, BOS, UNK, *(i for i, t in enumerate(vocab) if i > UNK and not _is_name_token(t))]
    stepper = Stepper(ck, count, torch.full((count,), category, dtype=torch.long))
    log_probs = stepper.feed(torch.tensor([[BOS, *start_ids]] * count))
    out: list[list[int]] = [list(start_ids) for _ in range(count)]
    done = torch.zeros(count, dtype=torch.bool)
    # Step s draws character len(start) + s + 1 (or the end); a name still going after the last
    # step would be longer than max_len and is dropped.
    for step in range(max_len - len(start_ids) + 1):
        log_probs = log_probs.float().cpu()
        log_probs[:, banned] = -math.inf
        if step == 0 and not start_ids:
            log_probs[:, EOS] = -math.inf  # a name has at least one letter
        nxt = draw(log_probs, sampling, g)
        nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
        for i in (~done).nonzero().flatten().tolist():
            if int(nxt[i]) != EOS:
                out[i].append(int(nxt[i]))
        done |= nxt == EOS
        if bool(done.all()):
            break
        log_probs = stepper.feed(nxt)
    return [ck.tokenizer.decode(ids) for ids, ok in zip(out, done.tolist(), strict=True) if ok]


def generate_names(
    ck: Checkpoint, language: str, n: int = 10, *, start: str = "", sampling: Sampling | None = None,
    novel: bool = False, max_len: int = 20,
) -> list[str]:
    """Up to ``n`` distinct names in ``language``, in the order drawn.

    Samples in batches of about twice what is still missing, for at most ``MAX_ROUNDS`` rounds; if
    the model cannot produce ``n`` distinct (and, with ``novel``, unseen) names, fewer come back.
    One generator drives all rounds, so the same ``sampling.seed`` gives the same names.
    """
    _require(ck, "names")
    _check_count(n)
    if not 1 <= max_len <= 100:
        raise PoetgenError(f"max_len must be between 1 and 100, got {max_len}")
    language = resolve_language(ck, language)
    sampling = (sampling or Sampling(temperature=DEFAULT_TEMPERATURE)).validate()
    start, start_ids = _start_ids(ck, start, max_len)
    g = sampling.generator()
    found: dict[str, None] = {}
    category = ck.categories.index(language)
    for _ in range(MAX_ROUNDS):
        missing = n - len(found)
        batch = min(2048, max(16, 2 * missing))
        for name in _sample_raw(ck, category, start_ids, batch, max_len, sampling, g):
            if name and not (novel and ck.has_seen(name)):
                found.setdefault(name)
            if len(found) == n:
                return list(found)
        if sampling.temperature == 0:
            break  # greedy decoding has one answer; more rounds repeat it
    return list(found)


def generate_all(
    ck: Checkpoint, n_per_language: int = 3, *, start: str = "", sampling: Sampling | None = None,
    novel: bool = False, max_len: int = 20,
) -> dict[str, list[str]]:
    """``generate_names`` for every language of the model, in the model's language order."""
    _require(ck, "names")
    _check_count(n_per_language, "n per language")
    sampling = sampling or Sampling(temperature=DEFAULT_TEMPERATURE)
    table = {}
    for i, lang in enumerate(ck.categories):
        # One seed per language: with a shared seed the languages would draw from the same
        # random numbers and their names would echo each other.
        seeded = sampling if sampling.seed is None else replace(sampling, seed=sampling.seed * 1009 + i)
        table[lang] = generate_names(ck, lang, n_per_language, start=start, sampling=seeded, novel=novel,
                                     max_len=max_len)
    return table


# ---------------------------------------------------------------------------------------------
# Classification


@dataclass
class Prediction:
    name: str  # as given, NFC-normalised and trimmed
    top: list[tuple[str, float]]  # (language, probability), most probable first
    unknown_chars: list[str] = field(default_factory=list)  # letters the model never saw (read as <unk>)

    def to_dict(self) -> dict:
        return {"name": self.name, "top": [[lang, round(p, 6)] for lang, p in self.top],
                "unknown_chars": self.unknown_chars}


def _read_name(raw: str, line: int) -> str:
    name = normalize_name(raw)
    if not name:
        raise PoetgenError(f"name {line} is empty")
    if not any(ch.isalpha() for ch in name):
        raise PoetgenError(f"name {line} ('{name}') has no letters")
    return name


def classify(ck: Checkpoint, names: Iterable[str], top: int = 3, batch_size: int = 1024) -> Iterator[Prediction]:
    """Top-``top`` languages for each name, lazily, in input order.

    Reads ``batch_size`` names at a time, so a stream of any length runs in bounded memory. An
    empty name or one without letters stops the stream with an error naming its position (1-based).
    """
    _require(ck, "classify")
    if top < 1:
        raise PoetgenError(f"top must be at least 1, got {top}")
    if batch_size < 1:
        raise PoetgenError(f"batch_size must be at least 1, got {batch_size}")
    top = min(top, len(ck.categories))
    model = ck.model.eval()
    device = next(model.parameters()).device
    numbered = enumerate(names, start=1)
    while chunk := list(itertools.islice(numbered, batch_size)):
        shown = [_read_name(raw, line) for line, raw in chunk]
        read = [canonical_case(name) for name in shown]
        ids = [ck.tokenizer.encode(name) for name in read]
        with torch.no_grad():
            logits = model(pad(ids).to(device), torch.tensor([len(x) for x in ids]))
            probs, best = torch.softmax(logits.float(), dim=-1).topk(top, dim=-1)
        for i, name in enumerate(shown):
            ranked = [(ck.categories[j], float(p)) for p, j in zip(probs[i].tolist(), best[i].tolist(), strict=True)]
            yield Prediction(name, ranked, ck.tokenizer.unknown(read[i]))


# ---------------------------------------------------------------------------------------------
# Evaluation


def _split_samples(ck: Checkpoint, data_dir: Path | str | None, split: str):
    if split not in ("train", "val", "test"):
        raise unknown("split", split, ["train", "val", "test"])
    corpus = load_corpus("names", data_dir)
    trained_on = ck.meta.get("corpus", {}).get("fingerprint")
    match = trained_on == corpus.fingerprint
    if not match:
        warnings.warn(
            f"{ck.path} was trained on names data with fingerprint {trained_on}, not {corpus.fingerprint}: "
            "the split may overlap its training data", stacklevel=3,
        )
    samples = corpus.split(split)
    known = set(ck.categories)
    dropped = sum(s.category not in known for s in samples)
    if dropped:
        warnings.warn(f"{dropped} {split} names have languages the model does not know; skipped", stacklevel=3)
    return [s for s in samples if s.category in known], match


def evaluate_classifier(ck: Checkpoint, data_dir: Path | str | None = None, split: str = "test") -> dict:
    """Accuracy, macro-F1, balanced accuracy, per-language precision/recall/F1/support, confusion."""
    _require(ck, "classify")
    samples, match = _split_samples(ck, data_dir, split)
    examples = encode(samples, ck.tokenizer, ck.categories)
    preds, labels, loss = classifier_predictions(ck.model, examples)
    report = classification_report(preds, labels, len(ck.categories))
    langs = ck.categories
    return {
        "split": split,
        "names": len(examples),
        "fingerprint_match": match,
        "loss": loss,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "balanced_accuracy": report["balanced_accuracy"],
        "precision": dict(zip(langs, report["precision"], strict=True)),
        "recall": dict(zip(langs, report["recall"], strict=True)),
        "f1": dict(zip(langs, report["f1"], strict=True)),
        "support": dict(zip(langs, report["support"], strict=True)),
        "labels": langs,
        "confusion": report["confusion"],
    }


def classifier_batch_predict(ck: Checkpoint, names: list[str]) -> list[str]:
    """Top-1 language of each name (names as the training data writes them)."""
    if not names:
        return []
    examples = encode([_Text(n) for n in names], ck.tokenizer, ck.categories)
    batch = collate_classify(examples)
    with torch.no_grad():
        logits = ck.model.eval()(batch["tokens"], batch["lengths"])
    return [ck.categories[i] for i in logits.argmax(-1).tolist()]


@dataclass(frozen=True)
class _Text:  # the part of corpora.Sample that data.encode reads
    text: str
    category: str | None = None


def evaluate_generator(
    gen_ck: Checkpoint, cls_ck: Checkpoint | None = None, data_dir: Path | str | None = None,
    samples_per_language: int = 50, sampling: Sampling | None = None, split: str = "test", max_len: int = 20,
) -> dict:
    """Held-out NLL, and novelty / uniqueness / classifier agreement of sampled names.

    - ``nll_per_char``: mean negative log-likelihood in nats per predicted character on ``split``,
      the end-of-name mark included (what the model pays to say where a name stops), each name
      conditioned on its own language.
    - ``novelty``: share of sampled names not in the training split; ``uniqueness``: distinct/total.
    - ``agreement``: share of names sampled for language X that the classifier (``cls_ck``; the
      bundled one when None and it exists) assigns to X. Samples are raw draws (no de-duplication),
      ``samples_per_language`` per language, seed 0 unless ``sampling`` says otherwise.
    """
    _require(gen_ck, "names")
    if cls_ck is None:
        from poetgen.checkpoint import bundled_checkpoint, load_for

        try:
            cls_ck = load_for("classify", bundled_checkpoint("classify"))
        except PoetgenError:
            cls_ck = None  # agreement is left out
    if cls_ck is not None:
        _require(cls_ck, "classify")
    sampling = (sampling or Sampling(temperature=DEFAULT_TEMPERATURE, seed=0)).validate()
    samples, match = _split_samples(gen_ck, data_dir, split)
    examples = encode(samples, gen_ck.tokenizer, gen_ck.categories)
    nll, chars = lm_nll(gen_ck.model, examples)
    by_lang: dict[int, list] = defaultdict(list)
    for e in examples:
        by_lang[e.category].append(e)

    g = sampling.generator()
    per: dict[str, dict] = {}
    all_names: list[str] = []
    agree_total = 0
    for c, lang in enumerate(gen_ck.categories):
        drawn = _sample_raw(gen_ck, c, [], samples_per_language, max_len, sampling, g)
        row = {
            "nll_per_char": lm_nll(gen_ck.model, by_lang[c])[0] if by_lang[c] else float("nan"),
            "test_names": len(by_lang[c]),
            "novelty": sum(not gen_ck.has_seen(n) for n in drawn) / max(len(drawn), 1),
            "uniqueness": len(set(drawn)) / max(len(drawn), 1),
            "examples": drawn[:5],
        }
        if cls_ck is not None:
            agree = sum(p == lang for p in classifier_batch_predict(cls_ck, drawn))
            agree_total += agree
            row["agreement"] = agree / max(len(drawn), 1)
        per[lang] = row
        all_names += drawn
    result = {
        "split": split,
        "fingerprint_match": match,
        "nll_per_char": nll,
        "perplexity": math.exp(nll),
        "test_chars": chars,
        "temperature": sampling.temperature,
        "samples": len(all_names),
        "novelty": sum(not gen_ck.has_seen(n) for n in all_names) / max(len(all_names), 1),
        "uniqueness": len(set(all_names)) / max(len(all_names), 1),
    }
    if cls_ck is not None:
        result["agreement"] = agree_total / max(len(all_names), 1)
        result["agreement_by_language"] = {lang: row["agreement"] for lang, row in per.items()}
    result["novelty_by_language"] = {lang: row["novelty"] for lang, row in per.items()}
    result["nll_by_language"] = {lang: row["nll_per_char"] for lang, row in per.items()}
    result["examples"] = {lang: ", ".join(row["examples"]) for lang, row in per.items()}
    return result
