"""The training loop: one trainer for language models (poems, names) and classifiers (names).

corpus → tokenizer → encoded examples → model → AdamW + clipping + LR schedule → evaluation →
``metrics.jsonl`` + ``best``/``last`` checkpoints. Runs as is, or under ``torchrun`` with DDP.

The corpus is read whole when the trainer starts, so changing or deleting the raw files during a
run changes nothing (``--resume`` later checks the corpus fingerprint). Checkpoints are written
before the evaluation's ``metrics.jsonl`` record, each atomically: a crash, a full disk or SIGKILL
leaves the previous checkpoints whole and no record of an evaluation whose checkpoint is missing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from poetgen.checkpoint import read_header, save_checkpoint, seen_tensor
from poetgen.corpora import FORMS, Corpus, load_corpus, poem_lines
from poetgen.data import batch_order, collate_classify, collate_lm, encode, shard
from poetgen.errors import PoetgenError, unknown
from poetgen.metrics import classification_report, classifier_predictions, lm_nll
from poetgen.model import Classifier, ModelConfig, build_model, count_parameters
from poetgen.paths import atomic_path
from poetgen.vocab import Tokenizer, build_tokenizer, tokenizer_from_dict

SCHEDULES = ("cosine", "plateau", "constant")
OPTIMIZERS = ("adamw", "adam")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class TrainConfig:
    corpus: str = "tang"
    task: str = "lm"
    data_dir: str | None = None
    forms: list[str] = field(default_factory=list)  # tang: empty means the four regulated forms
    script: str = "simplified"
    tokenizer: str = "char"
    min_freq: int = 1
    max_vocab: int = 0  # 0: no limit
    max_len: int = 0  # truncate samples to this many tokens (0: no limit)
    conditional: bool = True  # lm: feed the category (form / language) at every step
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 10
    max_steps: int = 0  # 0: run the epochs
    max_time: float = 0.0  # seconds of training (0: no limit); for fixed-budget comparisons
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.01
    # Loss of each sample weighted by (N / count of its category)^power, normalised to a mean of 1
    # per training sample: 0 = plain mean, 1 = fully class-balanced (names: Russian is half the data).
    class_weight_power: float = 0.0
    label_smoothing: float = 0.0  # classifiers only
    schedule: str = "cosine"
    warmup: int = 100
    clip: float = 1.0  # max gradient norm (0: off)
    eval_every: int = 500
    patience: int = 0  # early stopping after this many evaluations without improvement (0: off)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0  # torch CPU threads (0: torch's default)

    def validate(self) -> TrainConfig:
        for name, value, choices in (
            ("schedule", self.schedule, SCHEDULES), ("optimizer", self.optimizer, OPTIMIZERS),
            ("precision", self.precision, PRECISIONS), ("device", self.device, DEVICES),
        ):
            if value not in choices:
                raise unknown(name, value, list(choices))
        checks = [
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr > 0 and math.isfinite(self.lr), "--lr must be a positive number"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.max_steps >= 0, "--max-steps must not be negative"),
            (self.clip >= 0, "--clip must be a number >= 0 (0 = off)"),
            (self.eval_every >= 1, "--eval-every must be at least 1"),
            (self.warmup >= 0, "--warmup must not be negative"),
            # 0 means "no limit"; NaN would silently mean the same, negative would stop at once
            (self.max_time >= 0, "--max-time must be a number of seconds >= 0 (0 = no limit)"),
            (self.patience >= 0, "--patience must not be negative (0 = off)"),
            (0 <= self.seed <= 2**63 - 1, f"--seed must be between 0 and {2**63 - 1}"),
            (self.weight_decay >= 0 and math.isfinite(self.weight_decay), "--weight-decay must be a number >= 0"),
            (0 <= self.class_weight_power <= 1, "--class-weight-power must be in [0, 1]"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.task == "classify" or not self.label_smoothing, "--label-smoothing applies to --task classify"),
            (self.task == "classify" or self.conditional or not self.class_weight_power,
             "--class-weight-power needs categories: a classifier or a conditional language model"),
            (self.min_freq >= 1 and self.max_vocab >= 0 and self.max_len >= 0 and self.threads >= 0,
             "min_freq must be >= 1 and max_vocab, max_len, threads >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise PoetgenError(message)
        self.model.task = self.task
        self.model.validate_choices()
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}
        data["model"] = ModelConfig(**data.get("model", {}))
        return cls(**data)


def preset(corpus: str, task: str) -> TrainConfig:
    """Defaults that train a good model for each job on a 2-core CPU (see checkpoints/README.md)."""
    if task == "classify":
        # The shipped names classifier. A bidirectional GRU of 128 matches a 2×256 bi-LSTM's test
        # accuracy at a tenth of the time; p = 0.3 and smoothing lift macro-F1 without losing
        # accuracy (p = 1 drops validation accuracy to 0.50).
        model = ModelConfig(task="classify", model="gru", embed=64, hidden=128, layers=1, dropout=0.3,
                            bidirectional=True)
        return TrainConfig(corpus=corpus, task=task, model=model, epochs=15, batch_size=64, lr=5e-3,
                           weight_decay=0.05, eval_every=450, class_weight_power=0.3, label_smoothing=0.1)
    if corpus == "names":
        # The shipped generator. p = 0.5 costs 0.06 nats/char of held-out NLL but makes small
        # languages recognisable: classifier agreement rises from 0.83 to 0.88-0.90.
        model = ModelConfig(model="lstm", embed=64, hidden=256, layers=2, dropout=0.2)
        return TrainConfig(corpus=corpus, task=task, model=model, epochs=15, batch_size=64, lr=3e-3,
                           eval_every=500, class_weight_power=0.5)
    # Poems: adaptive softmax makes the ~7k-character output layer cheap on a CPU.
    model = ModelConfig(model="lstm", embed=192, hidden=384, layers=2, dropout=0.2, adaptive=True)
    return TrainConfig(corpus=corpus, task=task, model=model, epochs=12, batch_size=64, lr=2e-3,
                       warmup=200, eval_every=300)


# Settings that may change when a run is resumed; everything else must match.
RESUMABLE = {"epochs", "max_steps", "max_time", "eval_every", "patience", "device", "threads", "data_dir"}


@dataclass
class RunState:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch index within the epoch
    best: float = math.inf  # best validation loss so far
    bad_evals: int = 0  # evaluations since the last improvement (early stopping, plateau LR)
    lr_scale: float = 1.0  # plateau schedule's current factor
    elapsed: float = 0.0  # training seconds before this process started


# ---------------------------------------------------------------------------------------------
# Setup


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PoetgenError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise PoetgenError("--device mps: no Apple GPU is available")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise PoetgenError("--precision fp16 needs a CUDA device; use bf16 on CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def load_training_corpus(cfg: TrainConfig) -> Corpus:
    forms = cfg.forms
    if cfg.corpus == "tang" and not forms:
        forms = list(FORMS)  # the product writes regulated verse; 古体 can be asked for
    return load_corpus(cfg.corpus, cfg.data_dir, script=cfg.script, forms=forms or None)


def corpus_categories(cfg: TrainConfig, corpus: Corpus) -> list[str]:
    if cfg.task == "classify":
        return corpus.categories
    return corpus.categories if cfg.conditional else []


def seen_texts(corpus: Corpus) -> list[str]:
    """What "copied from the training data" means: whole lines for poems, whole samples otherwise."""
    train = corpus.split("train")
    if corpus.name in ("tang", "songci"):
        return [line for s in train for line in poem_lines(s.text)]
    return [s.text for s in train]


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


# ---------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, *, resume: bool = False, quiet: bool = False,
                 log=None) -> None:
        self.cfg = cfg.validate()
        self.out = Path(out)
        self.quiet = quiet
        self.log = log
        self.rank, self.world = _distributed_setup()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        self.amp = autocast_dtype(cfg.precision, self.device)
        self.corpus = load_training_corpus(cfg)
        resumed = self._check_resume() if resume else None
        if resumed is None:
            self._check_fresh_out()
        if self.rank == 0:
            _remove_stale_temp_files(self.out)
        meta = resumed[0] if resumed else None
        self.tokenizer = tokenizer_from_dict(meta["tokenizer"]) if meta else build_vocab(cfg, self.corpus)
        self.categories = meta["categories"] if meta else corpus_categories(cfg, self.corpus)
        self.train_set = encode(self.corpus.split("train"), self.tokenizer, self.categories, cfg.max_len)
        self.val_set = encode(self.corpus.split("val"), self.tokenizer, self.categories, cfg.max_len)
        if not self.train_set:
            raise PoetgenError("the training split is empty")
        if not self.val_set:  # tiny custom corpora: evaluate on training data rather than fail
            self.val_set = self.train_set[: max(1, len(self.train_set) // 10)]
        if cfg.batch_size > len(self.train_set):
            n = len(self.train_set)
            raise PoetgenError(f"--batch-size {cfg.batch_size} is larger than the training set ({n} samples)")
        self.class_weights = class_weights(self.train_set, len(self.categories), cfg.class_weight_power)
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(self.device)
        cfg.model.task = cfg.task
        cfg.model.vocab_size = len(self.tokenizer)
        cfg.model.num_categories = len(self.categories)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model).to(self.device)
        if self.amp is not None:
            _probe_autocast(self.model, self.device, self.amp, cfg.precision)
        self.optimizer = self._optimizer()
        self.seen = seen_tensor(seen_texts(self.corpus))
        self.state = RunState()
        if resumed:
            self._restore(*resumed)
            if self.rank == 0:
                _trim_metrics(self.out / "metrics.jsonl", self.state.step)
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- checks ----------------------------------------------------------------------------

    def _check_fresh_out(self) -> None:
        if (self.out / "last.safetensors").exists() or (self.out / "metrics.jsonl").exists():
            raise PoetgenError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            # A probe file of our own: under torchrun every rank checks at once, and a shared name
            # let one rank delete another's probe (a spurious "cannot write" on a healthy folder).
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.out)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise PoetgenError(f"cannot write to --out {self.out}: {e.strerror or e}") from None

    def _check_resume(self):
        last = self.out / "last.safetensors"
        if not last.exists():
            raise PoetgenError(f"--resume: no last.safetensors in {self.out}")
        meta, tensors = read_header(last)
        saved = TrainConfig.from_dict(meta.get("train", {})).to_dict()
        now = self.cfg.to_dict()
        for key in now:
            if key in RESUMABLE or key == "model":
                continue
            if saved.get(key) != now[key]:
                raise PoetgenError(f"--resume: {self.out} was trained with {key}={saved.get(key)!r}, not {now[key]!r}")
        for key in ("model", "cell", "embed", "hidden", "layers", "adaptive", "tie", "bidirectional"):
            before, after = saved["model"].get(key), now["model"].get(key)
            if before != after:
                raise PoetgenError(f"--resume: {self.out} has {key}={before!r}, not {after!r}")
        if meta.get("corpus", {}).get("fingerprint") != self.corpus.fingerprint:
            raise PoetgenError(f"--resume: {self.out} was trained on a different corpus (fingerprint changed)")
        return meta, tensors

    # -- optimisation ----------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2 and "embed" not in n]
        rest = [p for n, p in self.model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        # The fused kernel updates each tensor in one pass: 1.1 ms instead of 5.7 ms per step for
        # the 2.3M-parameter benchmark model on 2 CPU cores (BENCHMARKS.md).
        fused = self.device.type in ("cpu", "cuda")
        if self.cfg.optimizer == "adam":
            return torch.optim.Adam(groups, lr=self.cfg.lr, fused=fused)
        return torch.optim.AdamW(groups, lr=self.cfg.lr, fused=fused)

    def total_steps(self) -> int:
        per_epoch = math.ceil(len(self.train_set) / self.cfg.batch_size)
        full = per_epoch * self.cfg.epochs
        return min(full, self.cfg.max_steps) if self.cfg.max_steps else full

    def lr_at(self, step: int) -> float:
        """Linear warmup, then cosine decay to 10% (or the plateau factor, or constant)."""
        cfg = self.cfg
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        if cfg.schedule == "cosine":
            total = max(self.total_steps(), cfg.warmup + 1)
            progress = min(1.0, (step - cfg.warmup) / (total - cfg.warmup))
            return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        return cfg.lr * self.state.lr_scale

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Summed loss of the batch and the number of items it sums over (tokens or names)."""
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            if self.cfg.task == "lm":
                category = batch["category"] if self.categories else None
                weights = None if self.class_weights is None else self.class_weights[batch["category"]]
                loss = self.net(batch["tokens"], batch["targets"], category, weights)
                return loss, int((batch["targets"] != 0).sum())
            logits = self.net(batch["tokens"], batch["lengths"])
        labels = batch["labels"]
        loss = nn.functional.cross_entropy(logits.float(), labels, reduction="none",
                                           label_smoothing=self.cfg.label_smoothing)
        if self.class_weights is not None:  # weighted sum (not torch's weighted mean): DDP-safe normalisation
            loss = loss * self.class_weights[labels]
        return loss.sum(), len(labels)

    def _collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        examples = [self.train_set[i] for i in idx]
        batch = collate_lm(examples) if self.cfg.task == "lm" else collate_classify(examples)
        return {k: v.to(self.device) for k, v in batch.items()}

    def train_step(self, idx: list[int]) -> tuple[float, int]:
        """One optimiser step on a global batch; returns (mean loss, useful target count)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.state.step)
        batch = self._collate(shard(idx, self.rank, self.world))
        loss_sum, count = self._loss(batch)
        total = _all_reduce_sum(float(count), self.world, self.device)
        # DDP averages gradients over ranks, so scale each rank's sum by world/total: the result
        # is the mean over the whole global batch, exactly as in a single process.
        loss = loss_sum * (self.world / max(total, 1.0))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.optimizer.step()
        mean = _all_reduce_sum(loss_sum.item(), self.world, self.device) / max(total, 1.0)
        return mean, int(total)

    # -- evaluation and checkpoints --------------------------------------------------------

    def evaluate(self) -> dict:
        if self.cfg.task == "lm":
            nll, _ = lm_nll(self.model, self.val_set, device=str(self.device))
            return {"val_loss": nll}
        preds, labels, loss = classifier_predictions(self.model, self.val_set, device=str(self.device))
        report = classification_report(preds, labels, len(self.categories))
        return {"val_loss": loss, "val_accuracy": report["accuracy"], "val_macro_f1": report["macro_f1"]}

    def meta(self, metrics: dict | None = None) -> dict:
        return {
            "config": self.cfg.model.to_dict(),
            "train": self.cfg.to_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "categories": self.categories,
            "corpus": {"name": self.corpus.name, "fingerprint": self.corpus.fingerprint,
                       "script": self.corpus.script, "forms": self.cfg.forms},
            "metrics": metrics or {},
            "state": asdict(self.state),
        }

    def save(self, name: str, metrics: dict | None = None, with_state: bool = False) -> None:
        if self.rank != 0:
            return
        train_state = None
        if with_state:
            train_state = _flatten_optimizer(self.optimizer.state_dict())
            train_state["rng/torch"] = torch.get_rng_state()
        meta = self.meta(metrics)
        if with_state:
            meta["optimizer_groups"] = [
                {k: v for k, v in g.items() if k != "params"} for g in self.optimizer.state_dict()["param_groups"]
            ]
        save_checkpoint(self.out / f"{name}.safetensors", self.model, meta, train_state, seen=self.seen)

    def _restore(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        weights = {k: v for k, v in tensors.items() if not k.startswith("_train/")}
        self.model.load_state_dict(weights, strict=False)
        opt = {k[len("_train/"):]: v for k, v in tensors.items() if k.startswith("_train/")}
        rng = opt.pop("rng/torch", None)
        state = _unflatten_optimizer(opt, meta.get("optimizer_groups", []), self.optimizer.state_dict())
        self.optimizer.load_state_dict(state)
        if rng is not None:
            torch.set_rng_state(rng)
        self.state = RunState(**meta.get("state", {}))

    def _append_metrics(self, record: dict) -> None:
        if self.rank != 0:
            return
        try:
            with (self.out / "metrics.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as e:
            raise PoetgenError(f"cannot write {self.out / 'metrics.jsonl'}: {e.strerror or e}", code=1) from None

    # -- the loop --------------------------------------------------------------------------

    def fit(self) -> dict:
        """Train until the epochs, --max-steps or --max-time run out, or early stopping.

        Returns the last evaluation record. Ctrl-C saves ``last`` and re-raises KeyboardInterrupt.
        """
        cfg, st = self.cfg, self.state
        if self.rank == 0:
            try:
                (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, ensure_ascii=False))
            except OSError as e:
                raise PoetgenError(f"cannot write {self.out / 'config.json'}: {e.strerror or e}", code=1) from None
        self.model.train()
        start = time.perf_counter() - st.elapsed
        window_start, window_items, window_loss, window_steps = time.perf_counter(), 0, 0.0, 0
        record: dict = {}
        stop = False
        interrupted = _InterruptFlag()
        progress = self.log
        lengths = [len(e.ids) for e in self.train_set]
        orders: dict[int, list[list[int]]] = {}
        try:
            with interrupted:
                while st.epoch < cfg.epochs and not stop:
                    if st.epoch not in orders:
                        orders = {st.epoch: batch_order(lengths, cfg.batch_size, cfg.seed, st.epoch)}
                    order = orders[st.epoch]
                    loss, items = self.train_step(order[st.batch])
                    if not math.isfinite(loss):
                        raise PoetgenError(
                            f"loss became {loss} at step {st.step + 1}; stopped, last good checkpoint kept "
                            f"in {self.out} (try a lower --lr)", code=1)
                    st.step += 1
                    st.batch += 1
                    end_of_epoch = st.batch >= len(order)
                    if end_of_epoch:  # roll over now, so a checkpoint taken here resumes at the next epoch
                        st.epoch, st.batch = st.epoch + 1, 0
                    window_items += items
                    window_loss += loss
                    window_steps += 1
                    st.elapsed = time.perf_counter() - start
                    if progress:
                        progress({"step": st.step, "total": self.total_steps(), "loss": loss,
                                  "chars_per_s": window_items / max(time.perf_counter() - window_start, 1e-9)})
                    out_of_time = bool(cfg.max_time) and st.elapsed >= cfg.max_time
                    out_of_steps = bool(cfg.max_steps) and st.step >= cfg.max_steps
                    if st.step % cfg.eval_every == 0 or out_of_time or out_of_steps or end_of_epoch:
                        now = time.perf_counter()
                        record = self._eval_and_save(window_loss / window_steps,
                                                     window_items / max(now - window_start, 1e-9))
                        window_start, window_items, window_loss, window_steps = time.perf_counter(), 0, 0.0, 0
                        stop = record.get("early_stop", False)
                    if interrupted.hit:
                        raise KeyboardInterrupt
                    stop = stop or out_of_time or out_of_steps
        except KeyboardInterrupt:
            self.save("last", record, with_state=True)
            raise
        finally:
            _distributed_teardown(self.world)
        return record

    def _eval_and_save(self, train_loss: float, chars_per_s: float) -> dict:
        st = self.state
        metrics = self.evaluate()
        if not math.isfinite(metrics["val_loss"]):  # the weights diverged: never save them
            raise PoetgenError(
                f"validation loss became {metrics['val_loss']} at step {st.step}; stopped, last good checkpoint "
                f"kept in {self.out} (try a lower --lr)", code=1)
        record = {"step": st.step, "epoch": st.epoch, "wall_s": round(st.elapsed, 3),
                  "train_loss": train_loss, **metrics, "useful_chars_per_s": round(chars_per_s, 1),
                  "lr": self.lr_at(max(st.step - 1, 0))}
        improved = metrics["val_loss"] < st.best - 1e-4
        if improved:
            st.best, st.bad_evals = metrics["val_loss"], 0
        else:
            st.bad_evals += 1
            if self.cfg.schedule == "plateau" and st.bad_evals >= 2:
                st.lr_scale *= 0.5
        if self.cfg.patience and st.bad_evals >= self.cfg.patience:
            record["early_stop"] = True
        # Checkpoints first, the metrics line last: a failed save (disk full) or a kill leaves no
        # record of an evaluation whose checkpoint does not exist.
        if improved:
            self.save("best", record)
        self.save("last", record, with_state=True)
        self._append_metrics(record)
        return record


def describe(trainer: Trainer) -> dict:
    """Facts about a prepared run, for the CLI to print before training."""
    return {"parameters": count_parameters(trainer.model), "vocab": len(trainer.tokenizer),
            "train": len(trainer.train_set), "val": len(trainer.val_set),
            "steps": trainer.total_steps(), "device": str(trainer.device), "world": trainer.world}


# ---------------------------------------------------------------------------------------------
# Helpers: optimizer state ↔ flat tensors, signals, torch.distributed


def _remove_stale_temp_files(out: Path) -> None:
    """Half-written checkpoints left by a killed process (``.last.safetensors.abc123.tmp``)."""
    for name in ("best", "last"):
        for tmp in out.glob(f".{name}.safetensors.*.tmp"):
            tmp.unlink(missing_ok=True)


def _trim_metrics(path: Path, step: int) -> None:
    """Keep the complete records up to ``step``, the step a run resumes from: a kill mid-append
    can leave half a line, and records past the checkpoint would be written again."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if line.endswith("\n") and isinstance(record, dict) and isinstance(record.get("step"), int) \
                and record["step"] <= step:
            kept.append(line)
    if kept != lines:
        with atomic_path(path) as tmp:
            tmp.write_text("".join(kept), encoding="utf-8")


def _flatten_optimizer(state: dict) -> dict[str, torch.Tensor]:
    flat = {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            flat[f"opt/{pid}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return flat


def _unflatten_optimizer(flat: dict[str, torch.Tensor], groups: list[dict], template: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in flat.items():
        _, pid, key = name.split("/", 2)
        state.setdefault(int(pid), {})[key] = value
    merged = template["param_groups"]
    if groups:
        merged = [{**g, **saved} for g, saved in zip(merged, groups, strict=True)]
    return {"state": state, "param_groups": merged}


class _InterruptFlag:
    """Turn SIGINT into a flag checked between steps, so a step is never cut in half."""

    def __init__(self) -> None:
        self.hit = False
        self._old = None

    def __enter__(self) -> _InterruptFlag:
        def handler(signum, frame):
            if self.hit:  # a second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self.hit = True

        try:
            self._old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (e.g. inside a test runner thread)
            self._old = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _probe_autocast(model: nn.Module, device: torch.device, dtype: torch.dtype, name: str) -> None:
    """Fail at start, with one line, where the device's RNN kernels lack this precision (oneDNN's
    fused LSTM on many CPUs has no bf16 forward), rather than crash at the first step."""
    tokens = torch.ones(1, 2, dtype=torch.long, device=device)
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
            if isinstance(model, Classifier):
                model(tokens, torch.tensor([2]))
            else:
                model.features(tokens, torch.zeros(1, dtype=torch.long, device=device))
    except RuntimeError as e:
        raise PoetgenError(f"--precision {name} is not supported by this model on {device.type} "
                           f"({str(e).splitlines()[0][:80]}); use --precision fp32") from None


def _distributed_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _distributed_teardown(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _all_reduce_sum(value: float, world: int, device: torch.device) -> float:
    if world <= 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())
