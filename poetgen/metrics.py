"""Evaluation: held-out negative log-likelihood for language models, accuracy / macro-F1 /
confusion matrix for classifiers. Padding never counts."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from poetgen.data import Example, batch_order, collate_classify, collate_lm


@torch.no_grad()
def lm_nll(model: nn.Module, examples: list[Example], batch_size: int = 128, device: str = "cpu") -> tuple[float, int]:
    """Mean NLL per target token (nats; ``<eos>`` included) and the number of tokens."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for idx in batch_order([len(e.ids) for e in examples], batch_size, 0, 0, shuffle=False):
        batch = {k: v.to(device) for k, v in collate_lm([examples[i] for i in idx]).items()}
        total += model(batch["tokens"], batch["targets"], _category(model, batch)).item()
        count += int((batch["targets"] != 0).sum())
    model.train(was_training)
    return total / max(count, 1), count


def _category(model: nn.Module, batch: dict[str, Tensor]) -> Tensor | None:
    return batch["category"] if getattr(model, "category", None) is not None else None


@torch.no_grad()
def classifier_predictions(
    model: nn.Module, examples: list[Example], batch_size: int = 512, device: str = "cpu"
) -> tuple[Tensor, Tensor, float]:
    """Predicted labels, true labels (in the order of ``examples``) and mean cross-entropy."""
    was_training = model.training
    model.eval()
    preds = torch.empty(len(examples), dtype=torch.long)
    loss = 0.0
    for idx in batch_order([len(e.ids) for e in examples], batch_size, 0, 0, shuffle=False):
        batch = {k: v.to(device) for k, v in collate_classify([examples[i] for i in idx]).items()}
        logits = model(batch["tokens"], batch["lengths"])
        loss += nn.functional.cross_entropy(logits.float(), batch["labels"], reduction="sum").item()
        preds[idx] = logits.argmax(-1).cpu()
    model.train(was_training)
    labels = torch.tensor([e.category for e in examples], dtype=torch.long)
    return preds, labels, loss / max(len(examples), 1)


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
