"""How good the names models are on the leak-free split: the classifier's accuracy, macro-F1 and
confusion matrix; the generator's held-out NLL and the novelty, uniqueness and classifier
agreement of its samples."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import Sample
from poetgen.data import encode
from poetgen.errors import PoetgenError
from poetgen.evaluate import evaluate_examples, lm_nll, split_samples
from poetgen.names.classify import probabilities
from poetgen.names.generate import check_sampling, draw_names
from poetgen.names.languages import require
from poetgen.sample import Sampling


def _split_samples(ck: Checkpoint, data_dir: Path | str | None, split: str) -> tuple[list[Sample], bool]:
    """The split's names in languages the model knows, warning when the corpus changed or some
    names' languages are unknown to the model."""
    corpus, samples, match = split_samples(ck, data_dir, split)
    if not match:
        trained_on = ck.meta.get("corpus", {}).get("fingerprint")
        warnings.warn(
            f"{ck.path} was trained on names data with fingerprint {trained_on}, not {corpus.fingerprint}: "
            "the split may overlap its training data", stacklevel=3,
        )
    known = set(ck.categories)
    dropped = sum(s.category not in known for s in samples)
    if dropped:
        warnings.warn(f"{dropped} {split} names have languages the model does not know; skipped", stacklevel=3)
    return [s for s in samples if s.category in known], match


def evaluate_classifier(ck: Checkpoint, data_dir: Path | str | None = None, split: str = "test") -> dict:
    """Accuracy, macro-F1, balanced accuracy, per-language precision/recall/F1/support, confusion."""
    require(ck, "classify")
    samples, match = _split_samples(ck, data_dir, split)
    report = evaluate_examples(ck.model, encode(samples, ck.tokenizer, ck.categories), len(ck.categories))
    langs = ck.categories
    per_language = {key: dict(zip(langs, report[key], strict=True)) for key in ("precision", "recall", "f1", "support")}
    return {
        "split": split, "names": len(samples), "fingerprint_match": match, "loss": report["loss"],
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
        "balanced_accuracy": report["balanced_accuracy"], **per_language, "labels": langs,
        "confusion": report["confusion"],
    }


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
    require(gen_ck, "names")
    cls_ck = _agreement_classifier(cls_ck)
    sampling = sampling or Sampling(seed=0)
    sampling, guidance, rerank = check_sampling(sampling, guidance, rerank)
    if not 1 <= samples_per_language <= 10_000:
        raise PoetgenError(f"samples per language must be between 1 and 10000, got {samples_per_language}")
    samples, match = _split_samples(gen_ck, data_dir, split)
    examples = encode(samples, gen_ck.tokenizer, gen_ck.categories)
    nll, chars = lm_nll(gen_ck.model, examples)
    wanted = dict.fromkeys(range(len(gen_ck.categories)), samples_per_language)
    sampled = draw_names(gen_ck, wanted, [], max_len, sampling, sampling.generator(), guidance, rerank)
    drawn = {lang: sampled[c][:samples_per_language] for c, lang in enumerate(gen_ck.categories)}
    all_names = [name for names in drawn.values() for name in names]
    result = {
        "split": split, "fingerprint_match": match, "nll_per_char": nll, "perplexity": math.exp(nll),
        "test_chars": chars, "temperature": sampling.temperature, "guidance": guidance, "rerank": rerank,
        "samples": len(all_names), "novelty": _novelty(gen_ck, all_names),
        "uniqueness": len(set(all_names)) / max(len(all_names), 1),
    }
    if cls_ck is not None:
        agree = {lang: _agreeing(cls_ck, names, lang) for lang, names in drawn.items()}
        result["agreement"] = sum(agree.values()) / max(len(all_names), 1)
        result["agreement_by_language"] = {lang: agree[lang] / max(len(names), 1) for lang, names in drawn.items()}
    by_language = defaultdict(list)
    for e in examples:
        by_language[gen_ck.categories[e.category]].append(e)
    result["novelty_by_language"] = {lang: _novelty(gen_ck, names) for lang, names in drawn.items()}
    result["nll_by_language"] = {lang: lm_nll(gen_ck.model, by_language[lang])[0] if by_language[lang]
                                 else float("nan") for lang in drawn}
    result["examples"] = {lang: ", ".join(names[:5]) for lang, names in drawn.items()}
    return result


def _agreement_classifier(cls_ck: Checkpoint | None) -> Checkpoint | None:
    """The classifier that judges agreement: the one given, else the bundled one, else none."""
    if cls_ck is None:
        from poetgen.checkpoint import bundled_checkpoint, load_for

        try:
            cls_ck = load_for("classify", bundled_checkpoint("classify"))
        except PoetgenError:
            return None  # agreement is left out
    require(cls_ck, "classify")
    return cls_ck


def _novelty(ck: Checkpoint, names: list[str]) -> float:
    """Share of ``names`` that are not names of the training data."""
    return sum(not ck.has_seen(n) for n in names) / max(len(names), 1)


def _agreeing(cls_ck: Checkpoint, names: list[str], language: str) -> int:
    """How many of ``names`` the classifier assigns to ``language``."""
    if not names or language not in cls_ck.categories:
        return 0
    return int((probabilities(cls_ck, names).argmax(-1) == cls_ck.categories.index(language)).sum())
