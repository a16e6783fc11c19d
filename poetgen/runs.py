"""Run folders: what a training run keeps on disk, and the checks that keep it consistent.

A run folder holds ``config.json``, ``metrics.jsonl`` (one record per evaluation) and the ``best`` /
``last`` checkpoints (``last`` with the optimizer and RNG state for ``--resume``). Only one process
writes (rank 0 under torchrun); every write is atomic or append-only, so a crash leaves no
half-written checkpoint and no record of an evaluation whose checkpoint is missing.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from poetgen.checkpoint import TRAIN_PREFIX, read_header, restore_weights, save_checkpoints
from poetgen.config import RESUMABLE, TrainConfig
from poetgen.errors import PoetgenError
from poetgen.paths import atomic_path, check_writable

RNG_KEY = "rng/torch"
# Model settings a resume may not change: all but those that follow from the corpus. (Of the
# training settings, only config.RESUMABLE may change: budgets, evaluation cadence, device.)
DERIVED = ("vocab_size", "num_categories", "num_styles", "cutoffs")
# What a fresh run replaces in its folder when an earlier run there died before its first checkpoint.
STALE = ("train.jsonl", "config.json", "curves.png")


@dataclass
class RunState:
    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch index within the epoch
    best: float = math.inf  # best validation loss so far
    bad_evals: int = 0  # evaluations since the last improvement (early stopping, plateau LR)
    lr_scale: float = 1.0  # plateau schedule's current factor
    elapsed: float = 0.0  # training seconds before this process started
    # Running sums since the last evaluation / the last train.jsonl point (plain cross-entropy,
    # objective, steps): kept in the checkpoint, so that the first record after a resume from an
    # interrupt averages the same steps as the uninterrupted run's.
    window: list[float] = field(default_factory=lambda: [0.0, 0.0, 0])
    log_window: list[float] = field(default_factory=lambda: [0.0, 0.0, 0])


@dataclass
class Saved:
    """What ``last.safetensors`` holds for a resume: metadata, tensors (weights, optimizer, RNG)
    and the run's state, checked."""

    meta: dict
    tensors: dict[str, Tensor]
    state: RunState


def check_state(data: object, path: Path) -> RunState:
    """The run state a checkpoint's metadata holds, field by field: a hand-edited or damaged one
    (an unknown field, a NaN time, a negative step) is named here, not met later as a torch error."""
    def damaged(what: str) -> PoetgenError:
        return PoetgenError(f"--resume: {path} has a damaged resume state ({what})")

    if not isinstance(data, dict):
        raise damaged("no 'state' object")
    known = {f.name: f for f in fields(RunState)}
    for key, value in data.items():
        if key not in known:
            raise damaged(f"unknown field '{key}'")
        kind = str(known[key].type)
        if kind == "list[float]":
            ok = (isinstance(value, list) and len(value) == 3 and all(_number(v) and v >= 0 for v in value))
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:  # float: the best loss may still be infinite (no evaluation yet), nothing else may
            ok = (_number(value) and value >= 0) or (key == "best" and value == math.inf)
            ok = ok and (key != "lr_scale" or value > 0)
        if not ok:
            raise damaged(f"{key} = {value!r}")
    return RunState(**data)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class RunFolder:
    def __init__(self, path: Path, writer: bool = True) -> None:
        self.path = Path(path)
        self.writer = writer  # False on torchrun ranks other than 0: they check, never write
        self.saved_step: int | None = None  # the step of the run's last.safetensors, once there is one

    # -- starting ----------------------------------------------------------------------------

    def check_fresh(self) -> None:
        """Refuse a folder that already holds a run or could not be written; create nothing yet."""
        if (self.path / "last.safetensors").exists() or (self.path / "metrics.jsonl").exists():
            raise PoetgenError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
        if (self.path / "best.safetensors").exists():
            raise PoetgenError(f"{self.path} holds the best.safetensors of an earlier run (but no last.safetensors "
                               "to resume from); choose another --out or remove it")
        check_writable(self.path)

    def create(self) -> None:
        """Create the folder (once every option has been checked) and check it can be written."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # A probe file of our own: under torchrun every rank checks at once, and a shared name
            # let one rank delete another's probe (a spurious "cannot write" on a healthy folder).
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.path)
            os.close(fd)
            os.unlink(probe)
            # What a run that died before its first checkpoint left (diverged, killed, a full disk):
            # a new run starts its records over rather than append to them.
            if self.writer:
                for name in STALE:
                    (self.path / name).unlink(missing_ok=True)
        except OSError as e:
            raise PoetgenError(f"cannot write to --out {self.path}: {e.strerror or e}") from None

    def open_resume(self, cfg: TrainConfig, fingerprint: str) -> Saved:
        """``last.safetensors``, after checking that ``cfg`` and the corpus are the run's own."""
        last = self.path / "last.safetensors"
        if not last.exists():
            raise PoetgenError(f"--resume: no last.safetensors in {self.path}")
        meta, tensors = read_header(last)
        try:
            saved = TrainConfig.from_dict(meta.get("train") or {}).to_dict()
        except (PoetgenError, TypeError, ValueError) as e:
            raise PoetgenError(f"--resume: {last} has a damaged training config ({e})") from None
        now = cfg.to_dict()
        for key in now:
            if key not in RESUMABLE and key != "model" and saved.get(key) != now[key]:
                hint = (f"; resume it with --{key.replace('_', '-')} {saved.get(key)}"
                        if isinstance(saved.get(key), int | float) and not isinstance(saved.get(key), bool) else "")
                raise PoetgenError(f"--resume: {self.path} was trained with {key}={saved.get(key)!r}, "
                                   f"not {now[key]!r}{hint}")
        for key in now["model"]:
            if key in DERIVED:
                continue
            before, after = saved["model"].get(key), now["model"].get(key)
            if before != after:
                raise PoetgenError(f"--resume: {self.path} has {key}={before!r}, not {after!r}")
        if meta.get("corpus", {}).get("fingerprint") != fingerprint:
            raise PoetgenError(f"--resume: {self.path} was trained on a different corpus (fingerprint changed)")
        state = check_state(meta.get("state"), last)
        self.saved_step = state.step
        return Saved(meta, tensors, state)

    def clean_temp_files(self) -> None:
        """Half-written files left by a killed process: our own (``.last.safetensors.abc123.tmp``,
        ``.metrics.jsonl.abc123.tmp``) and those of safetensors' own file writer, which earlier
        checkpoints were saved through (``.tmpAbC123``, six letters or digits)."""
        if not self.writer:
            return
        for name in ("best.safetensors", "last.safetensors", "metrics.jsonl", "train.jsonl"):
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)
        for tmp in self.path.glob(".tmp*"):
            if re.fullmatch(r"\.tmp[A-Za-z0-9]{6}", tmp.name) and tmp.is_file():
                tmp.unlink(missing_ok=True)

    # -- records -----------------------------------------------------------------------------

    def write_config(self, config: dict) -> None:
        self._write(self.path / "config.json", json.dumps(config, indent=2, ensure_ascii=False))

    def append_metrics(self, record: dict) -> None:
        """One evaluation's record, to ``metrics.jsonl``."""
        self._append("metrics.jsonl", record)

    def append_train_log(self, record: dict) -> None:
        """One point of the dense training curve (about 1% of the run), to ``train.jsonl``."""
        self._append("train.jsonl", record)

    def _append(self, name: str, record: dict) -> None:
        if not self.writer:
            return
        path = self.path / name
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as e:
            raise PoetgenError(f"cannot write {path}: {e.strerror or e}", code=1) from None

    def trim_metrics(self, step: int, record: dict | None = None) -> None:
        """Keep the complete records up to ``step``, the step a run resumes from, in both logs: a
        kill mid-append can leave half a line, and records past the checkpoint would be written again.
        ``record``, the evaluation ``last`` was saved with, is written back when it is of ``step`` and
        missing (the disk filled up, or the process was killed, between the checkpoint and its record)."""
        for name in ("metrics.jsonl", "train.jsonl"):
            path = self.path / name
            if not self.writer or not (path.exists() or name == "metrics.jsonl"):
                continue
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
            kept = [line for line in lines if line.endswith("\n") and _record_step(line) is not None
                    and _record_step(line) <= step]
            if name == "metrics.jsonl" and record and record.get("step") == step and \
                    all(_record_step(line) != step for line in kept):
                kept.append(json.dumps(record) + "\n")
            if kept != lines:
                try:
                    with atomic_path(path) as tmp:
                        tmp.write_text("".join(kept), encoding="utf-8")
                except OSError as e:
                    raise PoetgenError(f"cannot write {path}: {e.strerror or e}", code=1) from None

    def _write(self, path: Path, text: str) -> None:
        if not self.writer:
            return
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise PoetgenError(f"cannot write {path}: {e.strerror or e}", code=1) from None

    # -- checkpoints -------------------------------------------------------------------------

    def save(self, names: tuple[str, ...], model: nn.Module, meta: dict,
             optimizer: torch.optim.Optimizer | None = None, seen: Tensor | None = None) -> None:
        """``NAME.safetensors`` for each of ``names``, all or none (``checkpoint.save_checkpoints``);
        ``last`` also holds the optimizer's state and the RNG state, for resume."""
        step = meta.get("state", {}).get("step") if "last" in names else self.saved_step
        if not self.writer:
            self.saved_step = step  # every rank knows, for the message of a run that diverges later
            return
        files = {}
        for name in names:
            train_state = None
            saved_meta = meta
            if name == "last" and optimizer is not None:
                state = optimizer.state_dict()
                train_state = {**_flatten_optimizer(state), RNG_KEY: torch.get_rng_state()}
                saved_meta = {**meta, "optimizer_groups": [{k: v for k, v in g.items() if k != "params"}
                                                           for g in state["param_groups"]]}
            files[self.path / f"{name}.safetensors"] = (saved_meta, train_state)
        save_checkpoints(files, model, seen)
        self.saved_step = step

    def restore(self, saved: Saved, model: nn.Module, optimizer: torch.optim.Optimizer, batches: int) -> RunState:
        """Weights (checked strictly against the model), optimizer and RNG state of ``saved``, each
        checked before it is used (``batches``: the batches of one epoch)."""
        last = self.path / "last.safetensors"
        if saved.state.batch >= batches:
            raise PoetgenError(f"--resume: {last} has a damaged resume state (batch {saved.state.batch} of an epoch "
                               f"of {batches})")
        restore_weights(model, saved.tensors, last)
        flat = {k[len(TRAIN_PREFIX):]: v for k, v in saved.tensors.items() if k.startswith(TRAIN_PREFIX)}
        rng = flat.pop(RNG_KEY, None)
        if rng is not None and (rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape):
            raise PoetgenError(f"--resume: {last} has a damaged resume state (its random state is {rng.numel()} "
                               f"{str(rng.dtype).removeprefix('torch.')} values)")
        optimizer.load_state_dict(_unflatten_optimizer(flat, saved.meta.get("optimizer_groups") or [],
                                                       optimizer.state_dict(), optimizer, last))
        if rng is not None:
            torch.set_rng_state(rng)
        return saved.state


def state_dict(state: RunState) -> dict:
    return asdict(state)


def _record_step(line: str) -> int | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


def _flatten_optimizer(state: dict) -> dict[str, Tensor]:
    flat = {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            flat[f"opt/{pid}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return flat


def _unflatten_optimizer(flat: dict[str, Tensor], groups: list, template: dict, optimizer: torch.optim.Optimizer,
                         path: Path) -> dict:
    """The optimizer's state dict from its flattened tensors, each checked against the parameter it
    belongs to: a damaged file is named here rather than failing at the first step."""
    def damaged(what: str) -> PoetgenError:
        return PoetgenError(f"--resume: {path} has a damaged resume state ({what})")

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict] = {}
    for name, value in flat.items():
        _, pid, key = [*name.split("/", 2), "", ""][:3]
        if not pid.isdigit() or int(pid) >= len(params):
            raise damaged(f"optimizer tensor {name} belongs to no parameter")
        if key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") and value.shape != params[int(pid)].shape:
            raise damaged(f"optimizer tensor {name} has shape {list(value.shape)}, not "
                          f"{list(params[int(pid)].shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise damaged(f"optimizer tensor {name} is not finite numbers")
        state.setdefault(int(pid), {})[key] = value
    merged = template["param_groups"]
    if groups:
        if len(groups) != len(merged) or not all(isinstance(g, dict) for g in groups):
            raise damaged(f"{len(groups)} optimizer groups where the model has {len(merged)}")
        merged = [{**g, **saved} for g, saved in zip(merged, groups, strict=True)]
        for group in merged:
            if not all(_number(group.get(key, 0.0)) for key in ("lr", "weight_decay", "eps")):
                raise damaged("an optimizer group setting is not a finite number")
    return {"state": state, "param_groups": merged}
