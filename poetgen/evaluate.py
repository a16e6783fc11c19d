"""Evaluation, one path for every caller (train, compare, report, eval, the benchmarks): held-out
negative log-likelihood for language models, accuracy / macro-F1 / confusion matrix for
classifiers, on encoded examples or on a split of a checkpoint's own corpus. Padding never counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from poetgen.checkpoint import Checkpoint
from poetgen.config import TrainConfig
from poetgen.corpora import SPLITS, Corpus, Sample
from poetgen.data import Example, batch_order, collate_classify, collate_lm, encode, load_training_corpus
from poetgen.errors import PoetgenError, unknown


@torch.no_grad()
def lm_nll(model: nn.Module, examples: list[Example], batch_size: int = 128) -> tuple[float, int]:
    """Mean NLL per target token (nats; ``<eos>`` included) and the number of tokens."""
    was_training = model.training
    model.eval()
    device = _device(model)
    total, count = 0.0, 0
    for idx in batch_order([len(e.ids) for e in examples], batch_size, 0, 0, shuffle=False):
        batch = {k: v.to(device) for k, v in collate_lm([examples[i] for i in idx]).items()}
        style = batch["style"] if model.cfg.num_styles else None
        total += model(batch["tokens"], batch["targets"], _category(model, batch), style).sum().item()
        count += int((batch["targets"] != 0).sum())
    model.train(was_training)
    return total / max(count, 1), count


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _category(model: nn.Module, batch: dict[str, Tensor]) -> Tensor | None:
    return batch["category"] if model.cfg.num_categories else None


@torch.no_grad()
def classifier_logits(model: nn.Module, examples: list[Example], batch_size: int = 512,
                      parts: bool = False) -> tuple[Tensor, Tensor]:
    """Logits (N, C) and true labels (N,), in the order of ``examples``; with ``parts``, the two
    scores a generative classifier mixes instead of their mixture: (N, 2, C)."""
    was_training = model.training
    model.eval()
    device = _device(model)
    c = model.cfg.num_categories
    logits = torch.empty(len(examples), 2, c) if parts else torch.empty(len(examples), c)
    score = model.parts if parts else model
    for idx in batch_order([len(e.ids) for e in examples], batch_size, 0, 0, shuffle=False):
        batch = {k: v.to(device) for k, v in collate_classify([examples[i] for i in idx]).items()}
        logits[idx] = score(batch["tokens"], batch["lengths"]).float().cpu()
    model.train(was_training)
    return logits, torch.tensor([e.category for e in examples], dtype=torch.long)


def classifier_predictions(
    model: nn.Module, examples: list[Example], batch_size: int = 512
) -> tuple[Tensor, Tensor, float]:
    """Predicted labels, true labels (in the order of ``examples``) and mean cross-entropy."""
    logits, labels = classifier_logits(model, examples, batch_size)
    loss = nn.functional.cross_entropy(logits, labels).item() if len(labels) else 0.0
    return logits.argmax(-1), labels, loss


def fit_temperature(logits: Tensor, labels: Tensor) -> float:
    """The softmax temperature T that makes softmax(logits / T) best calibrated on these labels
    (temperature scaling: T minimises their mean cross-entropy; Guo et al. 2017). 1.0 for no data."""
    if not len(labels):
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=50)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    fitted = float(log_t.detach().exp().clamp(0.05, 20.0))
    return fitted if math.isfinite(fitted) else 1.0  # a fit that failed (LBFGS can step into NaN) calibrates nothing


def fit_mixture(model: nn.Module, scores: Tensor, labels: Tensor,
                class_weights: Tensor | None = None) -> tuple[float, float]:
    """Set a generative classifier's ``mix`` (a, b) to the weights of its two scores (``scores``:
    (N, 2, C) from ``classifier_logits(..., parts=True)``) that give these (validation) labels the
    lowest cross-entropy, and return them: a log-linear ensemble of the two halves.

    ``class_weights`` (per category) weigh each label's cross-entropy as training weighed it: the
    trainer passes its own, so the mixture is fitted to the objective both halves were trained on.
    Unweighted, the fit leans on the linear layer, which has learnt that half the names are Russian;
    the language model knows nothing of how common a language is. (The shown probabilities are
    calibrated afterwards, without weights, by ``fit_temperature``.)"""
    if len(labels):
        mix = model.mix.detach().float().cpu().clone().requires_grad_(True)
        opt = torch.optim.LBFGS([mix], lr=0.5, max_iter=100)
        weight = None if class_weights is None else class_weights.float().cpu()

        def closure() -> Tensor:
            opt.zero_grad()
            loss = nn.functional.cross_entropy((mix[:, None] * scores).sum(1), labels, weight=weight)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        if bool(torch.isfinite(mix).all()):
            model.mix.copy_(mix.detach())
    return tuple(model.mix.tolist())


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = 15) -> float:
    """|accuracy − confidence| of the top answer, averaged over equal-width confidence bins,
    weighted by how many answers fall in each."""
    confidence, predicted = probs.max(-1)
    total = 0.0
    for b in range(bins):
        inside = (confidence > b / bins) & (confidence <= (b + 1) / bins)
        if inside.any():
            gap = (predicted[inside] == labels[inside]).float().mean() - confidence[inside].mean()
            total += float(inside.float().mean() * gap.abs())
    return total


def confusion_matrix(preds: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Rows: true class, columns: predicted class."""
    return torch.bincount(labels * num_classes + preds, minlength=num_classes**2).view(num_classes, num_classes)


def classification_report(preds: Tensor, labels: Tensor, num_classes: int) -> dict:
    """Accuracy, macro-F1, balanced accuracy, per-class precision/recall/F1 and the confusion matrix.

    Macro averages run over the classes present in ``labels`` so an absent class cannot
    drag the mean down with an undefined score.
    """
    cm = confusion_matrix(preds, labels, num_classes).double()
    tp = cm.diag()
    support, predicted = cm.sum(1), cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), torch.zeros_like(tp))
    present = support > 0
    return {
        "accuracy": float(tp.sum() / cm.sum().clamp(min=1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.long().tolist(),
        "confusion": cm.long().tolist(),
    }


def perplexity(nll: float) -> float:
    return math.exp(min(nll, 700.0))


# ---------------------------------------------------------------------------------------------
# One record per evaluation


def evaluate_examples(model: nn.Module, examples: list[Example], num_classes: int = 0,
                      fit_mix: bool = False, class_weights: Tensor | None = None) -> dict:
    """The evaluation record of a model on encoded examples.

    Language models: ``nll`` (mean nats per token, ``<eos>`` included), ``ppl`` and ``tokens``.
    Classifiers: ``loss`` (mean cross-entropy per name), ``temperature`` (the softmax temperature
    that calibrates them on these examples, see ``fit_temperature``) and ``classification_report``'s
    figures. ``fit_mix`` (the trainer, on validation data) first fits a generative classifier's
    mixture on these examples (``fit_mixture``, with ``class_weights``), in the same pass over them.
    """
    if getattr(model, "cfg", None) is not None and model.cfg.task == "classify":
        if fit_mix and getattr(model, "lm", None) is not None:
            scores, labels = classifier_logits(model, examples, parts=True)
            fit_mixture(model, scores, labels, class_weights)
            logits = model.mixed(scores)
        else:
            logits, labels = classifier_logits(model, examples)
        loss = nn.functional.cross_entropy(logits, labels).item() if len(labels) else 0.0
        return {"loss": loss, "temperature": fit_temperature(logits, labels),
                **classification_report(logits.argmax(-1), labels, num_classes)}
    nll, tokens = lm_nll(model, examples)
    return {"nll": nll, "ppl": perplexity(nll), "tokens": tokens}


def checkpoint_corpus(ck: Checkpoint, data_dir: Path | str | None = None, *,
                      trained_folder: bool = False) -> Corpus:
    """The corpus a checkpoint was trained on, loaded the way the trainer loaded it (same script,
    forms and splits), from ``data_dir`` when given, else ``$POETGEN_DATA`` / the cache. With
    ``trained_folder`` (the lab's run folders), the folder it was trained from comes before those
    when it still exists."""
    cfg = TrainConfig.from_dict(ck.meta.get("train", {}))
    folder = str(data_dir) if data_dir is not None else None
    if folder is None and trained_folder and cfg.data_dir and Path(cfg.data_dir).expanduser().is_dir():
        folder = cfg.data_dir
    return load_training_corpus(cfg, data_dir=folder, default_folder=False)


def split_samples(ck: Checkpoint, data_dir: Path | str | None, split: str, *,
                  trained_folder: bool = False) -> tuple[Corpus, list[Sample], bool]:
    """The checkpoint's corpus (see ``checkpoint_corpus``), the samples of ``split`` (for a
    classifier, those whose category it knows), and whether the corpus is still the one it was
    trained on."""
    if split not in SPLITS:
        raise unknown("split", split, list(SPLITS))
    corpus = checkpoint_corpus(ck, data_dir, trained_folder=trained_folder)
    samples = corpus.split(split)
    if ck.categories and ck.config.task == "classify":
        known = set(ck.categories)
        samples = [s for s in samples if s.category in known]
    match = corpus.fingerprint == ck.meta.get("corpus", {}).get("fingerprint")
    return corpus, samples, match


def evaluate_split(ck: Checkpoint, data_dir: Path | str | None = None, split: str = "test",
                   allow_empty: bool = False, trained_folder: bool = False) -> dict:
    """``evaluate_examples`` on a split of the checkpoint's own corpus, with ``split``, ``samples``,
    ``fingerprint_match`` and, for classifiers, ``labels``. ``note`` says when the corpus changed
    since training (then the split may overlap what the model saw). An empty split is an error, or
    an empty dict with ``allow_empty`` (tiny corpora may have no test lines)."""
    corpus, samples, match = split_samples(ck, data_dir, split, trained_folder=trained_folder)
    result: dict = {"split": split, "samples": len(samples), "fingerprint_match": match}
    if not match:
        result["note"] = "the corpus changed since training: this split may overlap the training data"
    examples = encode(samples, ck.tokenizer, ck.categories)
    if not examples:
        if allow_empty:
            return {}
        raise PoetgenError(f"the {split} split of corpus '{corpus.name}' is empty: nothing to evaluate")
    result.update(evaluate_examples(ck.model, examples, len(ck.categories)))
    if ck.config.task == "classify":
        result["labels"] = list(ck.categories)
    return result
