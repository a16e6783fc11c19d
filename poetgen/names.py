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
from dataclasses import dataclass, field
from pathlib import Path

import torch

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import load_corpus, normalize_name
from poetgen.data import Example, collate_classify, collate_lm, encode, pad
from poetgen.errors import PoetgenError, unknown
from poetgen.metrics import classification_report, classifier_predictions, lm_nll
from poetgen.sample import GREEDY_BELOW, Sampling, Stepper, draw
from poetgen.vocab import BOS, EOS, PAD, UNK

# Chosen on the shipped generator (benchmarks/names.py; 200 names per language, seed 0): at 0.9 the
# shipped classifier agrees with the asked language for 0.861 of the names and 0.665 are new (not
# training names); at 0.8, 0.864 and 0.623.
DEFAULT_TEMPERATURE = 0.9
DEFAULT_GUIDANCE = 3.0  # per-character language guidance γ (0 = off), see _sample_chunk
DEFAULT_RERANK = 4.0  # whole-name language reranking ρ (0 = off), see _draw
OVERSAMPLE = 4  # candidates per name kept when reranking
MAX_NAMES = 1000  # per call (per language for generate_all)
MAX_ROUNDS = 8  # oversampling rounds before giving up on finding more distinct names
MAX_BATCH = 2048  # names drawn per language per round
CHUNK = 256  # names run through the model at once (x18 rows with guidance)
# Guidance starts at the second character: on the first one it collapses the choice onto the most
# telling letters (English names all began with E, Chinese with X; first-letter entropy 1.0 against
# 2.65 in the data). Reranking whole names tilts towards recognisable names without that.
GUIDE_FROM = 1
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


def _prefix_loglik(ck: Checkpoint, start_ids: list[int]) -> torch.Tensor:
    """log P(start | language) for every language: (C,)."""
    languages = len(ck.categories)
    if not start_ids:
        return torch.zeros(languages)
    tokens = torch.tensor([[BOS, *start_ids[:-1]]] * languages)
    h, _ = ck.model.features(tokens.to(_device(ck)), torch.arange(languages, device=_device(ck)))
    lp = ck.model.log_probs(h).float().cpu()  # (C, T, V)
    return lp.gather(-1, torch.tensor([start_ids] * languages)[..., None]).squeeze(-1).sum(-1)


def _device(ck: Checkpoint) -> torch.device:
    return next(ck.model.parameters()).device


@torch.no_grad()
def _sample_raw(
    ck: Checkpoint, targets: list[int], start_ids: list[int], max_len: int, sampling: Sampling,
    g: torch.Generator, guidance: float = 0.0,
) -> tuple[list[str | None], torch.Tensor | None]:
    """One name per entry of ``targets`` (language ids), in chunks of ``CHUNK`` names; None where a
    name did not end within ``max_len`` characters. With guidance, also log P(name | L) for every
    language L, end mark included, (len(targets), C): guidance computes it anyway."""
    names: list[str | None] = []
    logliks = []
    for i in range(0, len(targets), CHUNK):
        chunk, loglik = _sample_chunk(ck, targets[i : i + CHUNK], start_ids, max_len, sampling, g, guidance)
        names += chunk
        logliks.append(loglik)
    return names, torch.cat(logliks) if guidance and logliks else None


def _sample_chunk(
    ck: Checkpoint, targets: list[int], start_ids: list[int], max_len: int, sampling: Sampling,
    g: torch.Generator, guidance: float,
) -> tuple[list[str | None], torch.Tensor | None]:
    """Sampling with language guidance (``guidance`` = γ > 0).

    Each name is run under every language L at once (row ``name * C + L``), which gives
    P(next | prefix, L) for all L and, by Bayes with a uniform prior, P(L | prefix). The next
    character is drawn from

        log P(c | prefix, X) + γ · [log P(c | prefix, X) − log Σ_L P(L | prefix) P(c | prefix, L)]

    i.e. P(c | prefix, X) · P(X | prefix + c)^γ up to normalisation: continuations that make the name
    more recognisably X (against the other 17 languages) are preferred. γ = 0 is plain sampling.
    (A prior weighted by each language's share of the training names was tried: it pushes small
    languages away from Russian and English so hard that names degenerate; uniqueness fell to 0.4.)
    This is classifier-free guidance, with the model's own language posterior as the classifier.
    Returns the names and, with guidance, log P(name | L) for every L (the reranker's input).
    """
    count, vocab = len(targets), ck.tokenizer.tokens
    languages = len(ck.categories) if guidance else 1
    banned = [PAD, BOS, UNK, *(i for i, t in enumerate(vocab) if i > UNK and not _is_name_token(t))]
    target = torch.tensor(targets)
    cats = torch.arange(languages).repeat(count) if guidance else target
    stepper = Stepper(ck, count * languages, cats)
    log_probs = stepper.feed(torch.tensor([[BOS, *start_ids]] * (count * languages)))
    prefix_ll = _prefix_loglik(ck, start_ids).expand(count, -1).clone() if guidance else None
    rows = torch.arange(count)
    out: list[list[int]] = [list(start_ids) for _ in range(count)]
    done = torch.zeros(count, dtype=torch.bool)
    # Step s draws character len(start) + s + 1 (or the end); a name still going after the last
    # step would be longer than max_len and is dropped.
    for step in range(max_len - len(start_ids) + 1):
        lp = log_probs.float().cpu().view(count, languages, -1)
        own = lp[rows, target] if guidance else lp[:, 0]  # log P(c | prefix, X), (count, V)
        if guidance and (step >= GUIDE_FROM or start_ids):
            posterior = prefix_ll.log_softmax(-1)  # log P(L | prefix), uniform prior, (count, C)
            mixture = torch.logsumexp(posterior[:, :, None] + lp, dim=1)  # log P(c | prefix), (count, V)
            logits = own + guidance * (own - mixture)
        else:
            logits = own.clone()
        logits[:, banned] = -math.inf
        if step == 0 and not start_ids:
            logits[:, EOS] = -math.inf  # a name has at least one letter
        nxt = draw(logits, sampling, g)
        nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
        for i in (~done).nonzero().flatten().tolist():
            if int(nxt[i]) != EOS:
                out[i].append(int(nxt[i]))
        if guidance:  # finished names keep their total: log P(name <eos> | L)
            gained = lp.gather(-1, nxt.view(count, 1, 1).expand(count, languages, 1)).squeeze(-1)
            prefix_ll += gained.masked_fill(done[:, None], 0.0)
        done |= nxt == EOS
        if bool(done.all()):
            break
        log_probs = stepper.feed(nxt.repeat_interleave(languages))
    names = [ck.tokenizer.decode(ids) if ok else None for ids, ok in zip(out, done.tolist(), strict=True)]
    return names, prefix_ll


def _check_sampling(
    sampling: Sampling | None, guidance: float | None, rerank: float | None,
) -> tuple[Sampling, float, float]:
    sampling = (sampling or Sampling(temperature=DEFAULT_TEMPERATURE)).validate()
    guidance = DEFAULT_GUIDANCE if guidance is None else guidance
    rerank = DEFAULT_RERANK if rerank is None else rerank
    for name, value in (("guidance", guidance), ("rerank", rerank)):
        if not (math.isfinite(value) and 0 <= value <= 20):
            raise PoetgenError(f"--{name} must be between 0 and 20, got {value:g}")
    return sampling, guidance, rerank


@torch.no_grad()
def _language_loglik(ck: Checkpoint, names: list[str]) -> torch.Tensor:
    """log P(name | L) for every name and language, end mark included: (len(names), C)."""
    languages, out = len(ck.categories), []
    for i in range(0, len(names), CHUNK // 2):
        chunk = names[i : i + CHUNK // 2]
        batch = collate_lm([Example(ck.tokenizer.encode(n), c) for n in chunk for c in range(languages)])
        h, _ = ck.model.features(batch["tokens"].to(_device(ck)), batch["category"].to(_device(ck)))
        lp = ck.model.log_probs(h).float().cpu()
        targets = batch["targets"]
        ll = lp.gather(-1, targets[..., None]).squeeze(-1).masked_fill(targets == PAD, 0).sum(1)
        out.append(ll.view(len(chunk), languages))
    return torch.cat(out) if out else torch.zeros(0, languages)


def _draw(
    ck: Checkpoint, wanted: dict[int, int], start_ids: list[int], max_len: int, sampling: Sampling,
    g: torch.Generator, guidance: float, rerank: float,
) -> dict[int, list[str]]:
    """Candidates per language id, best first (``wanted``: language id → how many to draw).

    With ``rerank`` = ρ > 0, ``OVERSAMPLE`` times as many names are sampled and ordered by
    ρ · log P(X | name) + Gumbel noise (P(X | name) is the model's own posterior for the asked
    language, uniform prior): taking the first k is sampling k names without replacement with
    probability ∝ P(X | name)^ρ, a whole-name version of guidance that leaves first letters alone.
    """
    factor = OVERSAMPLE if rerank and sampling.temperature >= GREEDY_BELOW else 1
    targets = [c for c, n in wanted.items() for _ in range(n * factor)]
    drawn, loglik = _sample_raw(ck, targets, start_ids, max_len, sampling, g, guidance)
    kept = [i for i, name in enumerate(drawn) if name]
    pairs = [(targets[i], drawn[i]) for i in kept]
    if factor == 1:
        return {c: [name for t, name in pairs if t == c] for c in wanted}
    if loglik is None:  # unguided sampling: score the names under every language now
        loglik = _language_loglik(ck, [name for _, name in pairs])
    else:
        loglik = loglik[kept]
    posterior = loglik.log_softmax(-1)
    noise = -torch.log(-torch.log(torch.rand(len(pairs), generator=g).clamp(1e-12, 1 - 1e-12)))
    keys = rerank * posterior[torch.arange(len(pairs)), torch.tensor([c for c, _ in pairs])] + noise
    ranked: dict[int, list[str]] = {c: [] for c in wanted}
    for i in keys.argsort(descending=True).tolist():
        ranked[pairs[i][0]].append(pairs[i][1])
    return ranked


def _generate(
    ck: Checkpoint, wanted: dict[int, int], start: str, sampling: Sampling | None, novel: bool, max_len: int,
    guidance: float | None, rerank: float | None,
) -> dict[int, list[str]]:
    """Distinct names per language id (``wanted``: language id → count), all languages sampled
    together: each round draws about twice what every language still misses."""
    _require(ck, "names")
    if not 1 <= max_len <= 100:
        raise PoetgenError(f"max_len must be between 1 and 100, got {max_len}")
    sampling, guidance, rerank = _check_sampling(sampling, guidance, rerank)
    start, start_ids = _start_ids(ck, start, max_len)
    g = sampling.generator()
    found: dict[int, dict[str, None]] = {c: {} for c in wanted}
    for _ in range(MAX_ROUNDS):
        missing = {c: min(MAX_BATCH, max(4, 2 * (n - len(found[c])))) for c, n in wanted.items()
                   if len(found[c]) < n}
        if not missing:
            break
        for c, names in _draw(ck, missing, start_ids, max_len, sampling, g, guidance, rerank).items():
            for name in names:
                if len(found[c]) < wanted[c] and not (novel and ck.has_seen(name)):
                    found[c].setdefault(name)
        if sampling.temperature < GREEDY_BELOW:
            break  # greedy decoding has one answer; more rounds repeat it
    return {c: list(names) for c, names in found.items()}


def generate_names(
    ck: Checkpoint, language: str, n: int = 10, *, start: str = "", sampling: Sampling | None = None,
    novel: bool = False, max_len: int = 20, guidance: float | None = None, rerank: float | None = None,
) -> list[str]:
    """Up to ``n`` distinct names in ``language``, in the order drawn.

    Samples in batches of about twice what is still missing, for at most ``MAX_ROUNDS`` rounds; if
    the model cannot produce ``n`` distinct (and, with ``novel``, unseen) names, fewer come back.
    One generator drives all rounds, so the same ``sampling.seed`` gives the same names.
    ``guidance`` (default ``DEFAULT_GUIDANCE``, per character, see ``_sample_chunk``) and ``rerank``
    (default ``DEFAULT_RERANK``, per whole name, see ``_draw``) make the language recognisable;
    0 and 0 is plain sampling from the model.
    """
    _require(ck, "names")
    _check_count(n)
    category = ck.categories.index(resolve_language(ck, language))
    return _generate(ck, {category: n}, start, sampling, novel, max_len, guidance, rerank)[category]


def generate_all(
    ck: Checkpoint, n_per_language: int = 3, *, start: str = "", sampling: Sampling | None = None,
    novel: bool = False, max_len: int = 20, guidance: float | None = None, rerank: float | None = None,
) -> dict[str, list[str]]:
    """``generate_names`` for every language of the model, in the model's language order, sampled
    in one batch."""
    _require(ck, "names")
    _check_count(n_per_language, "n per language")
    table = _generate(ck, dict.fromkeys(range(len(ck.categories)), n_per_language), start, sampling, novel,
                      max_len, guidance, rerank)
    return {ck.categories[c]: names for c, names in table.items()}


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


def _read_name(raw: str, where: str) -> str:
    name = normalize_name(raw)
    if not name:
        raise PoetgenError(f"{where} is empty")
    if not any(ch.isalpha() for ch in name):
        raise PoetgenError(f"{where} ('{name}') has no letters")
    return name


def classify(ck: Checkpoint, names: Iterable[str], top: int = 3, batch_size: int = 1024,
             lines: bool = False) -> Iterator[Prediction]:
    """Top-``top`` languages for each name, lazily, in input order.

    Reads ``batch_size`` names at a time, so a stream of any length runs in bounded memory. An
    empty name or one without letters stops the stream with an error naming its position (1-based).
    ``lines=True`` reads the lines of a file: blank lines are skipped, errors name the line.
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
        read = [canonical_case(name) for name in shown]
        ids = [ck.tokenizer.encode(name) for name in read]
        with torch.no_grad():
            logits = model(pad(ids).to(device), torch.tensor([len(x) for x in ids]))
            probs, best = torch.softmax(logits.float(), dim=-1).topk(top, dim=-1)
        for i, name in enumerate(shown):
            ranked = [(ck.categories[j], float(p)) for p, j in zip(probs[i].tolist(), best[i].tolist(), strict=True)]
            yield Prediction(name, ranked, ck.tokenizer.unknown(read[i]))
        if error is not None:
            raise error


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
    guidance: float | None = None, rerank: float | None = None,
) -> dict:
    """Held-out NLL, and novelty / uniqueness / classifier agreement of sampled names.

    - ``nll_per_char``: mean negative log-likelihood in nats per predicted character on ``split``,
      the end-of-name mark included (what the model pays to say where a name stops), each name
      conditioned on its own language.
    - ``novelty``: share of sampled names not in the training split; ``uniqueness``: distinct/total.
    - ``agreement``: share of names sampled for language X that the classifier (``cls_ck``; the
      bundled one when None and it exists) assigns to X. Samples are drawn as ``generate_names``
      draws them (guidance, reranking) but without de-duplication, ``samples_per_language`` per
      language, seed 0 unless ``sampling`` says otherwise.
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
    sampling = sampling or Sampling(temperature=DEFAULT_TEMPERATURE, seed=0)
    sampling, guidance, rerank = _check_sampling(sampling, guidance, rerank)
    if not 1 <= samples_per_language <= 10_000:
        raise PoetgenError(f"samples per language must be between 1 and 10000, got {samples_per_language}")
    samples, match = _split_samples(gen_ck, data_dir, split)
    examples = encode(samples, gen_ck.tokenizer, gen_ck.categories)
    nll, chars = lm_nll(gen_ck.model, examples)
    by_lang: dict[int, list] = defaultdict(list)
    for e in examples:
        by_lang[e.category].append(e)

    g = sampling.generator()
    wanted = dict.fromkeys(range(len(gen_ck.categories)), samples_per_language)
    sampled = _draw(gen_ck, wanted, [], max_len, sampling, g, guidance, rerank)
    per: dict[str, dict] = {}
    all_names: list[str] = []
    agree_total = 0
    for c, lang in enumerate(gen_ck.categories):
        drawn = sampled[c][:samples_per_language]
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
        "guidance": guidance,
        "rerank": rerank,
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
