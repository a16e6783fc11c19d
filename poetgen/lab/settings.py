"""The report's training settings: what each run was asked to do, told truly and briefly.

Only settings a network actually has are listed (the tutorial RNN reads one-hot letters: no
embedding, one layer, no dropout in its classifier; adaptive softmax and tied weights belong to
language models, a second direction and n-grams to classifiers). The runs of one kind are told in
one table of the settings they share and one of what differs, folded away under a summary line.
"""

from __future__ import annotations

from poetgen.lab.blocks import KINDS, Block, Details, Para, Table

MODEL_KEYS = ("model", "cell", "embed", "hidden", "layers", "dropout", "bidirectional", "ngram", "adaptive", "tie")
TRAIN_KEYS = ("corpus", "task", "tokenizer", "epochs", "max_steps", "max_time", "batch_size", "optimizer", "lr",
              "weight_decay", "schedule", "warmup", "clip", "class_weight_power", "label_smoothing", "seed",
              "precision", "threads")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def applicable(train: dict) -> dict[str, str]:
    """The settings of one run (its checkpoint's ``meta["train"]``) that its network has."""
    model = train.get("model") or {}
    classify = train.get("task") == "classify"
    lacks = {"adaptive", "tie"} if classify else {"bidirectional", "ngram"}
    if classify:
        lacks |= {"precision"} if train.get("precision", "fp32") == "fp32" else set()
    if not classify:
        lacks |= {"label_smoothing"}
    if model.get("model") == "tutorial-rnn":  # one-hot letters into Linear layers, as the tutorial wrote it
        lacks |= {"embed", "layers", "bidirectional", "ngram", "cell", "adaptive", "tie"}
        if classify:
            lacks.add("dropout")
    if not train.get("max_steps"):
        lacks.add("max_steps")
    values = {key: _fmt(model[key]) for key in MODEL_KEYS if key in model and key not in lacks}
    values |= {key: _fmt(train[key]) for key in TRAIN_KEYS if key in train and key not in lacks}
    if values.get("threads") == "0":
        values["threads"] = "default"
    return values


def settings_blocks(metas: dict[str, dict], kind: str) -> list[Block]:
    """One folded block for the runs of one kind: label → the checkpoint's metadata."""
    values = {label: applicable(meta.get("train", {})) for label, meta in metas.items()}
    keys = [k for k in (*MODEL_KEYS, *TRAIN_KEYS) if any(k in v for v in values.values())]
    shared = [k for k in keys if all(k in v for v in values.values())
              and len({v[k] for v in values.values()}) == 1]
    differ = [k for k in keys if k not in shared]
    inner: list[Block] = [Table(["setting", "value"], [[k, next(iter(values.values()))[k]] for k in shared])]
    if differ and len(values) > 1:
        inner += [Para("What differs (– where a network has no such setting):"),
                  Table(["run", *differ], [[label, *(v.get(k, "–") for k in differ)] for label, v in values.items()])]
    summary = (f"Training settings of the {KINDS[kind]}: {len(shared)} shared"
               + (f", {len(differ)} differing ({', '.join(differ)})" if differ and len(values) > 1 else ""))
    return [Details(summary, inner)]
