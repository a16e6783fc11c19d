"""Checkpoints: one safetensors file holding weights, and as JSON metadata the model config, the
vocabulary, the category labels, the corpus fingerprint, metrics and versions.

No pickle anywhere: a file that is not a well-formed poetgen checkpoint is refused with one line.
Writes go to a temporary file in the same folder and are renamed into place, so a crash (or
SIGKILL) mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from poetgen import __version__, paths
from poetgen.config import thread_count
from poetgen.corpora import serves
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.networks import build_model
from poetgen.vocab import Tokenizer, tokenizer_from_dict

FORMAT = "poetgen-checkpoint/1"
TRAIN_PREFIX = "_train/"  # optimizer and RNG tensors, present only in `last`
SEEN_KEY = "_seen"  # int64 hashes of training lines (poems) or names: novelty checks at sampling time
# "ci" is a poem model too (its categories are 词 tunes): the Song ci model that `write --form TUNE` uses.
BUNDLED = {"poems": "tang.safetensors", "ci": "songci.safetensors", "names": "names-gen.safetensors",
           "classify": "names-cls.safetensors"}


@dataclass
class Checkpoint:
    model: nn.Module
    config: ModelConfig
    tokenizer: Tokenizer
    categories: list[str]
    meta: dict
    path: Path
    seen: frozenset[int] = frozenset()
    styles: list[list] = field(default_factory=list)  # [[poet, training poems], ...], "any" first

    @property
    def style_names(self) -> list[str]:
        return [name for name, _ in self.styles]

    def has_seen(self, text: str) -> bool:
        """Was ``text`` a line (poems) or a name (names) of the training data?"""
        return text_hash(text) in self.seen

    @property
    def kind(self) -> str:
        """'poems', 'names' (language model over names) or 'classify'."""
        if self.config.task == "classify":
            return "classify"
        # a model of a text file writes lines, as a poem model does
        return "names" if serves(self.meta.get("corpus", {}).get("name")) == "names" else "poems"


def text_hash(text: str) -> int:
    """A stable 63-bit hash (Python's hash() changes between processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def seen_tensor(texts: Iterable[str]) -> Tensor:
    return torch.tensor(sorted({text_hash(t) for t in texts}), dtype=torch.int64)


def save_checkpoint(
    path: Path, model: nn.Module, meta: dict, train_state: dict[str, Tensor] | None = None,
    seen: Tensor | None = None,
) -> None:
    """Write weights (+ optional training state and seen-text hashes) and metadata atomically."""
    save_checkpoints({Path(path): (meta, train_state)}, model, seen)


def save_checkpoints(files: dict[Path, tuple[dict, dict[str, Tensor] | None]], model: nn.Module,
                     seen: Tensor | None = None) -> None:
    """Write one model into several files, all or none: ``{path: (meta, train_state)}``. Each is
    written to a temporary file first; only when every one is whole are they renamed into place, so
    a full disk cannot leave one file (``best``) a step ahead of another (``last``)."""
    from safetensors import SafetensorError

    weights: dict[str, Tensor] = {}
    stored: set[int] = set()  # data pointers already written
    for name, t in model.state_dict().items():
        if t.data_ptr() in stored:  # tied weights: store once, re-tied by the model on load
            continue
        stored.add(t.data_ptr())
        weights[name] = t.detach().cpu().contiguous()
    if seen is not None:
        weights[SEEN_KEY] = seen
    path = next(iter(files))
    try:
        with paths.atomic_paths(list(files)) as temps:  # Ctrl-C mid-write too: no half-written checkpoint
            for tmp, (target, (meta, train_state)) in zip(temps, files.items(), strict=True):
                path = target  # the file named if this write fails
                tensors = {**weights, **{TRAIN_PREFIX + name: t.detach().cpu().contiguous()
                                         for name, t in (train_state or {}).items()}}
                header = {**meta, "format": FORMAT, "poetgen_version": __version__,
                          "torch_version": torch.__version__, "python": platform.python_version()}
                write_safetensors(tensors, tmp, {"poetgen": json.dumps(header, ensure_ascii=False)})
    except (OSError, SafetensorError) as e:
        # safetensors reports a full disk as SafetensorError ("I/O error: No space left on device")
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise PoetgenError(f"cannot write checkpoint {path}: {reason}", code=1) from None


def write_safetensors(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    """The file's bytes, built in memory and written by us: safetensors' own file writer goes
    through a temporary file of its own (``.tmpXXXXXX``) that a kill leaves behind, under a name
    no cleanup of ours could tell from someone else's file."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with open(path, "wb") as fh:
        fh.write(data)


def read_header(path: Path) -> tuple[dict, dict[str, Tensor]]:
    """Metadata and all tensors of a checkpoint file, after checking it really is one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    _check_file(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise PoetgenError(f"{path} is not a poetgen checkpoint (not a valid safetensors file: {e})") from None
    try:
        meta = json.loads(metadata["poetgen"])
    except (KeyError, json.JSONDecodeError):
        raise PoetgenError(f"{path} is not a poetgen checkpoint (no poetgen metadata)") from None
    except RecursionError:  # `[[[[…]]]]` 100,000 deep: no metadata of ours nests beyond a few levels
        raise PoetgenError(f"{path}: damaged checkpoint metadata (nested too deeply)") from None
    if not isinstance(meta, dict):
        raise PoetgenError(f"{path} is not a poetgen checkpoint (its metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise PoetgenError(f"{path} is not a poetgen checkpoint (format {meta.get('format')!r})")
    _check_meta_shape(meta, path)
    return meta, tensors


def _check_file(path: Path) -> None:
    """``path`` is a regular file that safetensors can open; else one line saying what it is."""
    import stat

    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise PoetgenError(f"checkpoint path {path!s} is not valid UTF-8: rename the file (safetensors opens only "
                           "UTF-8 paths)") from None
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if path.is_symlink() and e.errno == errno.ENOENT:
            raise PoetgenError(f"checkpoint {path} is a symbolic link to {os.readlink(path)}, which does not exist") \
                from None
        if e.errno == errno.ELOOP:
            raise PoetgenError(f"checkpoint {path} is a symbolic link loop") from None
        if e.errno == errno.ENOENT:
            raise PoetgenError(f"checkpoint {path} does not exist") from None
        raise PoetgenError(f"cannot open checkpoint {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
                "not a regular file")
        raise PoetgenError(f"checkpoint {path} is {what}, not a checkpoint file")


# The metadata's parts and their JSON types: code downstream reads them without asking again.
META_SHAPE = {"config": dict, "tokenizer": dict, "categories": list, "styles": list, "corpus": dict, "train": dict,
              "state": dict, "metrics": dict, "calibration": dict, "optimizer_groups": list}


def _check_meta_shape(meta: dict, path: Path) -> None:
    for key, kind in META_SHAPE.items():
        if key in meta and meta[key] is not None and not isinstance(meta[key], kind):
            what = "an object" if kind is dict else "a list"
            raise PoetgenError(f"{path}: damaged checkpoint metadata ('{key}' should be {what}, "
                               f"not {type(meta[key]).__name__})")
    if not all(isinstance(c, str) for c in meta.get("categories") or []):
        raise PoetgenError(f"{path}: damaged checkpoint metadata (category labels must be strings)")
    if not all(isinstance(row, list) and len(row) == 2 and isinstance(row[0], str) and isinstance(row[1], int)
               for row in meta.get("styles") or []):
        raise PoetgenError(f"{path}: damaged checkpoint metadata (styles must be [poet, poems] pairs)")
    for key in ("name", "script", "fingerprint"):
        value = (meta.get("corpus") or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise PoetgenError(f"{path}: damaged checkpoint metadata (corpus {key} should be a string)")
    temperature = (meta.get("calibration") or {}).get("temperature", 1.0)
    # (NaN, which earlier trainers could write, means "not calibrated": names.classify reads it as 1)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature <= 0:
        raise PoetgenError(f"{path}: damaged checkpoint metadata (calibration temperature {temperature!r} "
                           "should be a positive number)")


def load_checkpoint(path: Path | str, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model from a checkpoint file or a run folder (its ``best.safetensors``)."""
    path = resolve(path)
    meta, tensors = read_header(path)
    config, tokenizer, categories = _parts(meta, path)
    check_weights(_expected_weights(config, tensors, path), tensors, path, config.tie)
    check_finite(tensors, path)
    model = build_model(config)
    seen = tensors.get(SEEN_KEY)
    restore_weights(model, tensors, path)
    model.to(device).eval()
    seen_set = frozenset(seen.tolist()) if seen is not None else frozenset()
    return Checkpoint(model, config, tokenizer, categories, meta, path, seen_set, list(meta.get("styles") or []))


def _parts(meta: dict, path: Path) -> tuple[ModelConfig, Tokenizer, list[str]]:
    """The model config, tokenizer and category labels of a checkpoint's metadata, checked
    against each other (a tampered config is the file's fault, never an option's)."""
    if "config" not in meta or "tokenizer" not in meta:
        missing = "config" if "config" not in meta else "tokenizer"
        raise PoetgenError(f"{path}: checkpoint metadata is incomplete (no '{missing}')")
    try:
        config = ModelConfig.from_dict(meta["config"])
    except (PoetgenError, TypeError, ValueError) as e:
        raise PoetgenError(f"{path}: the checkpoint's model config is invalid ({e})") from None
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except PoetgenError as e:
        raise PoetgenError(f"{path}: {e}") from None
    categories = list(meta.get("categories") or [])
    if len(tokenizer) != config.vocab_size:
        raise PoetgenError(f"{path}: vocabulary has {len(tokenizer)} tokens but the model expects {config.vocab_size}")
    if len(categories) != config.num_categories:
        raise PoetgenError(f"{path}: {len(categories)} category labels but the model has {config.num_categories}")
    if len(meta.get("styles") or []) != config.num_styles:
        raise PoetgenError(f"{path}: {len(meta.get('styles') or [])} styles but the model has {config.num_styles}")
    return config, tokenizer, categories


def _expected_weights(config: ModelConfig, tensors: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """The weights ``config`` implies, as shapes and dtypes only: the model is built on the meta
    device, so a config that claims a huge model costs no memory before it is refused."""
    weights = [k for k in tensors if not k.startswith(TRAIN_PREFIX) and k != SEEN_KEY]
    if config.layers > len(weights):  # each layer has weights of its own: refuse before even building
        raise PoetgenError(f"{path}: weights do not match the config ({config.layers} layers, "
                           f"{len(weights)} weight tensors)")
    try:
        with torch.device("meta"):
            model = build_model(config)
    except (TypeError, ValueError, RuntimeError) as e:  # a combination the checks above did not foresee
        raise PoetgenError(f"{path}: the checkpoint's model config is invalid ({e})") from None
    return model.state_dict()


def check_finite(tensors: dict[str, Tensor], path: Path) -> None:
    """A weight holding NaN or infinity (a diverged or damaged model) is refused: it would write
    padding tokens as poems and print NaN scores."""
    for name, t in tensors.items():
        if not name.startswith(TRAIN_PREFIX) and t.is_floating_point() and not torch.isfinite(t).all():
            raise PoetgenError(f"{path}: tensor {name} holds NaN or infinite values (a damaged or diverged model)")


def restore_weights(model: nn.Module, tensors: dict[str, Tensor], path: Path) -> None:
    """Load a checkpoint's weights into ``model``: every tensor must be one of the model's, with
    its shape and a dtype the model's implies, and every weight of the model must be there (a
    tied output layer is stored once). Training state and seen-text hashes are not weights and
    are left alone."""
    check_weights(model.state_dict(), tensors, path, getattr(model.cfg, "tie", False))
    weights = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX) and k != SEEN_KEY}
    # strict=False only for the tied output weight, which the checks allow to be absent
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=False)


# Floating-point weights may be stored in any of these (fp16 halves a shipped file); anything else
# (an integer tensor where the model has floats) is a damaged or tampered file.
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_weights(expected: dict[str, Tensor], tensors: dict[str, Tensor], path: Path, tied: bool) -> None:
    """Every stored weight is one of ``expected`` with its shape and a dtype it implies; every
    expected weight is stored (a tied output layer may be absent); seen-text hashes are int64."""
    weights = {k: v for k, v in tensors.items() if not k.startswith(TRAIN_PREFIX) and k != SEEN_KEY}
    for name, t in weights.items():
        want = expected.get(name)
        if want is None or want.shape != t.shape:
            raise PoetgenError(f"{path}: weights do not match the config (tensor {name})")
        if (want.is_floating_point() and t.dtype not in FLOAT_DTYPES) or (not want.is_floating_point() \
                and t.dtype != want.dtype):
            raise PoetgenError(f"{path}: tensor {name} is stored as {t.dtype}, which the config does not imply")
    missing = [k for k in expected if k not in weights and not (tied and k == "head.weight")]
    if missing:
        raise PoetgenError(f"{path}: weights do not match the config (missing {missing[0]})")
    seen = tensors.get(SEEN_KEY)
    if seen is not None and (seen.dtype != torch.int64 or seen.dim() != 1):
        raise PoetgenError(f"{path}: damaged checkpoint (seen-text hashes should be a 1-D int64 tensor, not a "
                           f"{seen.dim()}-D {str(seen.dtype).removeprefix('torch.')} one)")


def resolve(path: Path | str) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        best = path / "best.safetensors"
        if not best.exists():
            raise PoetgenError(f"no best.safetensors in run folder {path}")
        return best
    return path


def bundled_checkpoint(kind: str) -> Path:
    """The pretrained checkpoint that ships with the package for 'poems', 'ci', 'names' or 'classify'."""
    path = paths.bundled("checkpoints") / BUNDLED[kind]
    if not path.exists():
        raise PoetgenError(f"no bundled {kind} checkpoint at {path}; train one and pass --checkpoint", code=1)
    return path


def load_for(kind: str, path: Path | str | None, device: str = "cpu") -> Checkpoint:
    """Load ``path`` (or the bundled model) and check it is the right kind for the command."""
    # Poems feed a few rows at a time through a small network: one thread is faster than two
    # fighting over tiny matrices (and much faster on a busy machine). Guided names run every
    # candidate under all 18 languages (thousands of rows a step): there threads pay (9.1 → 7.7 s
    # for `names --lang all` on 2 cores). POETGEN_THREADS overrides.
    default = min(4, os.cpu_count() or 1) if kind == "names" else 1
    torch.set_num_threads(thread_count(os.environ.get("POETGEN_THREADS", str(default))))
    ck = load_checkpoint(path if path is not None else bundled_checkpoint(kind), device)
    expected = "poems" if kind == "ci" else kind
    if ck.kind != expected:
        wanted = {"poems": "a poem language model", "names": "a names language model", "classify": "a names classifier"}
        raise PoetgenError(f"{ck.path} is {wanted[ck.kind]}, but this command needs {wanted[expected]}")
    return ck
