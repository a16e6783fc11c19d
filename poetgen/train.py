"""The training loop: one trainer for language models (poems, names) and classifiers (names).

corpus → tokenizer → encoded examples → model → AdamW + clipping + LR schedule → evaluation →
``metrics.jsonl`` + ``best``/``last`` checkpoints. Runs as is, or under ``torchrun`` with DDP.

The corpus is read whole when the trainer starts, so changing or deleting the raw files during a
run changes nothing (``--resume`` later checks the corpus fingerprint). Checkpoints are written
before the evaluation's ``metrics.jsonl`` record, each atomically: a crash, a full disk or SIGKILL
leaves the previous checkpoints whole and no record of an evaluation whose checkpoint is missing.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from poetgen.config import TrainConfig, training_threads
from poetgen.data import Example, batch_order, collate_classify, collate_lm, load_training_corpus, shard
from poetgen.devices import (
    all_reduce_sum,
    all_reduce_sums,
    autocast_dtype,
    distributed_setup,
    pick_device,
    probe_autocast,
    rng_state,
    set_rng_state,
)
from poetgen.errors import PoetgenError
from poetgen.evaluate import evaluate_examples
from poetgen.interrupts import DeferredInterrupt
from poetgen.model import count_parameters
from poetgen.networks import build_model
from poetgen.runs import RunFolder, RunState, state_dict
from poetgen.training_data import model_config, prepare_data
from poetgen.vocab import Tokenizer

EVALS_PER_RUN = 20  # evaluations along any run at the least, so that its curves have points
LOG_POINTS = 100  # points of the dense training-loss curve (train.jsonl) along a run


# ---------------------------------------------------------------------------------------------
# The trainer


class Step(NamedTuple):
    """What one optimiser step measured over its global batch."""

    objective: float  # mean of what is optimised (label smoothing, class weights, a generative LM's NLL)
    plain: float  # mean plain cross-entropy: the training curve, comparable with the validation loss
    items: int  # the targets both are means over (tokens or names), padding excluded


class Trainer:
    """Trains one model into one run folder: ``Trainer(cfg, out).fit()``."""

    def __init__(self, cfg: TrainConfig, out: Path, *, resume: bool = False) -> None:
        self.cfg = cfg.validate()
        self.rank, self.world = distributed_setup()
        torch.set_num_threads(training_threads(cfg.threads))  # see config.default_training_threads
        self.device = pick_device(cfg.device)
        self.amp = autocast_dtype(cfg.precision, self.device)
        self.run = RunFolder(Path(out), writer=self.rank == 0)
        self.corpus = load_training_corpus(cfg)
        saved = self.run.open_resume(cfg, self.corpus.fingerprint) if resume else None
        if saved is None:
            self.run.check_fresh()
        self.data = prepare_data(cfg, self.corpus, self.device, saved.meta if saved else None)
        self.model_cfg = model_config(cfg, self.data)
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_cfg).to(self.device)
        if self.amp is not None:
            probe_autocast(self.model, self.device, self.amp, cfg.precision)
        self.optimizer = self._optimizer()
        # fp16 gradients underflow without loss scaling; every other precision runs unscaled.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.state = RunState()
        self.finished = False  # set by fit(): the run reached its end
        self.record: dict = {}  # the last evaluation's record
        # eval_every 0 (the presets'): EVALS_PER_RUN evaluations whatever the run's length, so that
        # its curves have points; a time budget is shared out in time instead (see fit).
        self.eval_every = cfg.eval_every or max(1, self.total_steps() // EVALS_PER_RUN)
        self.log_every = max(1, self.total_steps() // LOG_POINTS)
        if saved is None:
            self.run.create()  # only now: options that fail their checks leave no empty folder
        self.run.clean_temp_files()
        if saved is not None:
            self.state = self.run.restore(saved, self.model, self.optimizer,
                                          math.ceil(len(self.train_set) / cfg.batch_size))
            self.record = dict(saved.meta.get("metrics") or {})
            self.run.trim_metrics(self.state.step, self.record)
        # This run's own random numbers (dropout masks): kept between fit() calls, so that runs
        # taking turns in one process draw exactly what each would draw alone.
        self.rng = rng_state(self.device)
        # What a step runs: a language model's forward is its NLL; a classifier's training outputs
        # are not its forward (that gives the logits it decides by), so a module runs them.
        self.net = self.model if cfg.task == "lm" else _ClassifierTraining(self.model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)

    @property
    def out(self) -> Path:
        return self.run.path

    @property
    def tokenizer(self) -> Tokenizer:
        return self.data.tokenizer

    @property
    def categories(self) -> list[str]:
        return self.data.categories

    @property
    def train_set(self) -> list[Example]:
        return self.data.train

    @property
    def val_set(self) -> list[Example]:
        return self.data.val

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

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The batch's summed training objective (what is optimised: with label smoothing and class
        weights; a generative classifier adds its language model's NLL per character), its summed
        plain cross-entropy (what validation measures; no gradient; for a generative classifier, that
        of its linear layer) and the number of items both sum over (tokens or names)."""
        weights = self.data.class_weights
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            if self.cfg.task == "lm":
                category = batch["category"] if self.categories else None
                style = batch["style"] if self.data.styles else None
                nll = self.net(batch["tokens"], batch["targets"], category, style).float()  # (B,)
                objective = nll if weights is None else nll * weights[batch["category"]]
                return objective.sum(), nll.detach().sum(), int((batch["targets"] != 0).sum())
            labels = batch["labels"]
            logits, lm_nll = self.net(batch["tokens"], batch["lengths"], labels)  # generative: both halves learn
        loss = nn.functional.cross_entropy(logits.float(), labels, reduction="none",
                                           label_smoothing=self.cfg.label_smoothing)
        if lm_nll is not None:
            loss = loss + lm_nll.float()
        if weights is not None:  # weighted sum (not torch's weighted mean): DDP-safe normalisation
            loss = loss * weights[labels]
        plain = nn.functional.cross_entropy(logits.detach().float(), labels, reduction="sum")
        return loss.sum(), plain, len(labels)

    def _collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        examples = [self.train_set[i] for i in idx]
        batch = collate_lm(examples) if self.cfg.task == "lm" else collate_classify(examples)
        return {k: v.to(self.device) for k, v in batch.items()}

    def train_step(self, idx: list[int]) -> Step:
        """One optimiser step on the global batch ``idx`` (this rank trains on its share)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.state.step)
        batch = self._collate(shard(idx, self.rank, self.world))
        loss_sum, plain_sum, count = self._loss(batch)
        total = all_reduce_sum(float(count), self.world, self.device)
        # DDP averages gradients over ranks, so scale each rank's sum by world/total: the result
        # is the mean over the whole global batch, exactly as in a single process.
        loss = loss_sum * (self.world / max(total, 1.0))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.clip:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip)
        self.scaler.step(self.optimizer)  # skips the step when fp16 gradients overflowed
        self.scaler.update()
        objective, plain = all_reduce_sums([loss_sum.item(), plain_sum.item()], self.world, self.device)
        return Step(objective / max(total, 1.0), plain / max(total, 1.0), int(total))

    # -- evaluation and checkpoints --------------------------------------------------------

    def evaluate(self) -> dict:
        result = evaluate_examples(self.model, self.val_set, len(self.categories), fit_mix=True,
                                   class_weights=self.data.class_weights)
        if self.cfg.task == "lm":
            return {"val_loss": result["nll"]}
        return {"val_loss": result["loss"], "val_accuracy": result["accuracy"], "val_macro_f1": result["macro_f1"],
                "val_temperature": result["temperature"]}

    def meta(self, metrics: dict | None = None) -> dict:
        return {
            "config": self.model_cfg.to_dict(),
            "train": {**self.cfg.to_dict(), "model": self.model_cfg.to_dict()},
            "tokenizer": self.tokenizer.to_dict(),
            "categories": self.categories,
            **({"styles": self.data.styles} if self.data.styles else {}),
            "corpus": {"name": self.corpus.name, "fingerprint": self.corpus.fingerprint,
                       "script": self.corpus.script, "forms": self.cfg.forms},
            "metrics": metrics or {},
            "state": state_dict(self.state),
            **_calibration(metrics),
        }

    def save(self, names: tuple[str, ...], metrics: dict | None = None) -> None:
        """Checkpoints ``names`` (``best``, ``last``: the latter with the optimizer), all or none."""
        self.run.save(names, self.model, self.meta(metrics), self.optimizer, self.data.seen)

    # -- the loop --------------------------------------------------------------------------

    def done(self) -> str | None:
        """Why the run is over (its epochs, step or time budget spent, or stopped early), or None."""
        cfg, st = self.cfg, self.state
        if cfg.max_steps and st.step >= cfg.max_steps:
            return f"step {st.step} of {cfg.max_steps}"
        if cfg.max_time and st.elapsed >= cfg.max_time:
            return f"{st.elapsed:.0f} s of a {cfg.max_time:g} s budget"
        if st.epoch >= cfg.epochs:
            return f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} done"
        if cfg.patience and st.bad_evals >= cfg.patience:
            return f"stopped early: no better validation loss in {st.bad_evals} evaluations"
        return None

    def fit(self, slice_steps: int = 0, slice_seconds: float = 0.0,
            log: Callable[[dict], None] | None = None) -> dict:
        """Train until the epochs, --max-steps or --max-time run out, or early stopping; then
        ``finished`` is True. A run that is already over (a finished run resumed) trains nothing.
        ``log`` (a progress bar, say) receives ``{"step", "total", "loss", "chars_per_s"}`` after
        every step.

        With ``slice_steps`` / ``slice_seconds``, evaluate and return after that many steps /
        seconds of this trainer's own training instead, to be called again later: models that take
        turns this way (``lab.compare``) share the machine's conditions, ``max_time`` counts only
        each one's own time, and every slice adds a point to the curves. Returns the last
        evaluation record. Ctrl-C saves ``last`` and re-raises KeyboardInterrupt, unless it comes
        during the run's last step: then the run completes as usual.
        """
        cfg, st = self.cfg, self.state
        first_step, sliced = st.step, False
        # A time slice ends at the next multiple of slice_seconds, not slice_seconds after this
        # call: a step's overshoot past one boundary is not carried into the next turn, so a time
        # budget in N slices gives N turns (N curve points) however loaded the machine.
        slice_end = (math.floor(st.elapsed / slice_seconds + 1e-9) + 1) * slice_seconds if slice_seconds else math.inf
        # The dense training curve: a point every ~1% of the run (of the time budget, if that ends it).
        log_interval = cfg.max_time / LOG_POINTS if cfg.max_time and not cfg.max_steps else math.inf
        next_log = (math.floor(st.elapsed / log_interval) + 1) * log_interval
        timed = bool(cfg.max_time) and not cfg.eval_every  # evaluate at even shares of the time budget
        interval = cfg.max_time / EVALS_PER_RUN if timed else math.inf
        next_timed_eval = (math.floor(st.elapsed / interval) + 1) * interval if timed else math.inf
        set_rng_state(self.device, self.rng)
        self.run.write_config(cfg.to_dict())
        self.model.train()
        start = time.perf_counter() - st.elapsed
        window_start, window_items = time.perf_counter(), 0
        stop = False
        interrupted = DeferredInterrupt()
        lengths = [len(e.ids) for e in self.train_set]
        orders: dict[int, list[list[int]]] = {}
        with interrupted:  # Ctrl-C, once or more, stops the run at the next step boundary
            try:
                while not stop and self.done() is None:
                    if st.epoch not in orders:
                        orders = {st.epoch: batch_order(lengths, cfg.batch_size, cfg.seed, st.epoch)}
                    order = orders[st.epoch]
                    step = self.train_step(order[st.batch])
                    if not math.isfinite(step.objective):
                        raise self._diverged(f"loss became {step.objective} at step {st.step + 1}")
                    st.step += 1
                    st.batch += 1
                    end_of_epoch = st.batch >= len(order)
                    if end_of_epoch:  # roll over now, so a checkpoint taken here resumes at the next epoch
                        st.epoch, st.batch = st.epoch + 1, 0
                    window_items += step.items
                    st.window = _added(st.window, step.plain, step.objective)
                    st.log_window = _added(st.log_window, step.plain, step.objective)
                    st.elapsed = time.perf_counter() - start
                    if (st.elapsed >= next_log) if log_interval < math.inf else st.step % self.log_every == 0:
                        self._log_point()
                        next_log = (math.floor(st.elapsed / log_interval) + 1) * log_interval
                    if log is not None:
                        log({"step": st.step, "total": self.total_steps(), "loss": step.objective,
                             "chars_per_s": window_items / max(time.perf_counter() - window_start, 1e-9)})
                    out_of_time = bool(cfg.max_time) and st.elapsed >= cfg.max_time
                    out_of_steps = bool(cfg.max_steps) and st.step >= cfg.max_steps
                    slice_over = ((bool(slice_steps) and st.step - first_step >= slice_steps) or
                                  (bool(slice_seconds) and st.elapsed >= slice_end))
                    due = st.elapsed >= next_timed_eval if timed else st.step % self.eval_every == 0
                    if due or out_of_time or out_of_steps or end_of_epoch or slice_over:
                        self.record = self._eval_and_save(
                            window_items / max(time.perf_counter() - window_start, 1e-9))
                        window_start, window_items = time.perf_counter(), 0
                        stop = self.record.get("early_stop", False)
                        next_timed_eval = (math.floor(st.elapsed / interval) + 1) * interval if timed else math.inf
                    if interrupted.hit and self.done() is None:
                        raise KeyboardInterrupt
                    sliced = slice_over and self.done() is None
                    if sliced:
                        break
            except KeyboardInterrupt:
                if self.done() is None:  # a run that is over has saved its last step already
                    self.save(("last",), self.record)
                raise
            finally:
                self.rng = rng_state(self.device)
                if not sliced:
                    self._teardown()
        self.finished = not sliced
        return self.record

    def _teardown(self) -> None:
        if self.world > 1:
            # DDP's reducer sits in reference cycles that hold the process group: left to interpreter
            # exit, gloo's threads die unjoined there and abort the process ("terminate called
            # without an active exception", ~1 run in 10 on torch 2.13). Free it while Python lives.
            import torch.distributed as dist

            self.net = self.net.module
            gc.collect()
            if dist.is_initialized():
                dist.destroy_process_group()

    def _log_point(self) -> None:
        st = self.state
        plain, objective, steps = st.log_window
        self.run.append_train_log({"step": st.step, "wall_s": round(st.elapsed, 3),
                                   "train_loss": plain / steps, "train_objective": objective / steps})
        st.log_window = [0.0, 0.0, 0]

    def _eval_and_save(self, chars_per_s: float) -> dict:
        st = self.state
        plain, objective, steps = st.window
        train_loss, train_objective = plain / steps, objective / steps
        st.window = [0.0, 0.0, 0]
        metrics = self.evaluate()
        if not math.isfinite(metrics["val_loss"]):  # the weights diverged: never save them
            raise self._diverged(f"validation loss became {metrics['val_loss']} at step {st.step}")
        record = {"step": st.step, "epoch": st.epoch, "wall_s": round(st.elapsed, 3),
                  # train_loss: plain cross-entropy, as val_loss; train_objective: what is optimised
                  "train_loss": train_loss, "train_objective": train_objective, **metrics,
                  "useful_chars_per_s": round(chars_per_s, 1),
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
        # Checkpoints first (both or neither), the metrics line last: a failed save (disk full) or a
        # kill leaves no record of an evaluation whose checkpoint does not exist.
        self.save(("best", "last") if improved else ("last",), record)
        self.run.append_metrics(record)
        return record

    def _diverged(self, what: str) -> PoetgenError:
        kept = (f"the last good checkpoint (step {self.run.saved_step}) is kept in {self.out}"
                if self.run.saved_step is not None else "no checkpoint was written")
        return PoetgenError(f"{what}; stopped, {kept} (try a lower --lr)", code=1)


class _ClassifierTraining(nn.Module):
    """A classifier's training outputs (``Classifier.training_outputs``) as a module's forward:
    DDP synchronises the gradients of what runs through the forward of the module it wraps."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, tokens: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.classifier.training_outputs(tokens, lengths, labels)


def _added(window: list[float], plain: float, objective: float) -> list[float]:
    return [window[0] + plain, window[1] + objective, window[2] + 1]


def _calibration(metrics: dict | None) -> dict:
    """A classifier's softmax temperature, fitted on the validation split at this evaluation: the
    probabilities it shows are calibrated with it (``names.classify``)."""
    if metrics and "val_temperature" in metrics:
        return {"calibration": {"temperature": metrics["val_temperature"], "split": "val"}}
    return {}


def describe(trainer: Trainer) -> dict:
    """Facts about a prepared run, for the CLI to print before training."""
    return {"parameters": count_parameters(trainer.model), "vocab": len(trainer.tokenizer),
            "train": len(trainer.train_set), "val": len(trainer.val_set),
            "steps": trainer.total_steps(), "device": str(trainer.device), "world": trainer.world}
