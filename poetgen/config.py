"""What a training run is asked to do: ``TrainConfig`` (read, never written, downstream) and the
presets that train the shipped models on a 2-core CPU."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace

from poetgen.corpora import CORPORA, serves
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.model import ModelConfig

MAX_SEED = 2**63 - 1  # seeds are integers from 0 to 2^63 - 1 (torch.Generator's range)
SCHEDULES = ("cosine", "plateau", "constant")
OPTIMIZERS = ("adamw", "adam")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def max_threads() -> int:
    """The most compute threads poetgen asks torch for: past a few per core they only slow it
    down, and OpenMP fails on tens of thousands (a raw libgomp line, or a segfault)."""
    return 4 * (os.cpu_count() or 1)


def thread_count(text: str, name: str = "POETGEN_THREADS") -> int:
    """``text`` (an environment variable's value) as a thread count in 1..max_threads()."""
    if not text.strip().isdigit() or not 1 <= int(text) <= max_threads():
        raise PoetgenError(f"{name} must be a whole number from 1 to {max_threads()} (4 per core), got '{text}'")
    return int(text)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's limit),
    else every core the machine has."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity on macOS and Windows
        return os.cpu_count() or 1


def default_training_threads(cores: int | None = None) -> int:
    """Torch threads for training when neither ``--threads`` nor ``$POETGEN_THREADS`` says: half
    the usable cores, 1 to 4. Recurrent steps are small matrix products; a second thread buys
    1.0-1.3x on a quiet 2-core machine, but when another process wants a core, torch's threads
    spin against it and 2 threads train many times slower than 1 (BENCHMARKS.md, "Threads for
    training": benchmarks/threads.py)."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(4, cores // 2))


def training_threads(requested: int = 0) -> int:
    """The torch thread count of a training run: ``requested`` (``--threads``) when above 0, else
    ``$POETGEN_THREADS``, else :func:`default_training_threads`."""
    if requested:
        return requested
    text = os.environ.get("POETGEN_THREADS")
    return thread_count(text) if text is not None else default_training_threads()


def check_seed(seed: int | None) -> None:
    """Seeds are whole numbers from 0 to ``MAX_SEED``; None asks for a random one."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise bad_value("seed", f"must be between 0 and {MAX_SEED}, got {seed}")


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
    augment: bool = False  # names: add spelling variants to the training names (names/augment.py)
    conditional: bool = True  # lm: feed the category (form / language) at every step
    styles: int = 0  # poems: condition on the corpus's N most prolific poets too (0 = no poets)
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
    eval_every: int = 0  # steps between evaluations; 0: 20 evaluations per run, whatever its length
    patience: int = 0  # early stopping after this many evaluations without improvement (0: off)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0  # torch CPU threads (0: $POETGEN_THREADS, else training_threads()'s default)

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
            (self.eval_every >= 0, "--eval-every must be a number of steps >= 0 (0 = 20 evaluations per run)"),
            (self.warmup >= 0, "--warmup must not be negative"),
            # 0 means "no limit"; NaN would silently mean the same, negative would stop at once
            (self.max_time >= 0, "--max-time must be a number of seconds >= 0 (0 = no limit)"),
            (self.patience >= 0, "--patience must not be negative (0 = off)"),
            (0 <= self.seed <= MAX_SEED, f"--seed must be between 0 and {MAX_SEED}"),
            (self.weight_decay >= 0 and math.isfinite(self.weight_decay), "--weight-decay must be a number >= 0"),
            (0 <= self.class_weight_power <= 1, "--class-weight-power must be in [0, 1]"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.task == "classify" or not self.label_smoothing, "--label-smoothing applies to --task classify"),
            (serves(self.corpus) == "names" or not self.augment, "--augment applies to --corpus names"),
            (self.task == "classify" or self.conditional or not self.class_weight_power,
             "--class-weight-power needs categories: a classifier or a conditional language model"),
            (self.min_freq >= 1 and self.max_vocab >= 0 and self.max_len >= 0,
             "min_freq must be >= 1 and max_vocab, max_len >= 0"),
            (0 <= self.threads <= max_threads(),
             f"--threads must be a whole number from 1 to {max_threads()} (4 per core; 0 = the default)"),
            (0 <= self.styles <= 200, "--styles must be a number of poets from 0 to 200"),
        ]
        for ok, message in checks:
            if not ok:
                raise PoetgenError(message)
        replace(self.model, task=self.task).validate_choices()
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
        # accuracy at a tenth of the time. Character 1-4-grams beside it, class weights with p = 0.6
        # and spelling variants (feminine forms, no diacritics) lift balanced accuracy and the
        # out-of-sample surnames without losing accuracy. A 2×384 language model of each language's
        # names beside it (a generative classifier) lifts both again (BENCHMARKS.md, issue 16).
        model = ModelConfig(task="classify", model="gru", embed=64, hidden=128, layers=1, dropout=0.3,
                            bidirectional=True, ngram=4, generative=384)
        return TrainConfig(corpus=corpus, task=task, model=model, epochs=15, batch_size=64, lr=5e-3,
                           weight_decay=0.05, class_weight_power=0.6, label_smoothing=0.1,
                           augment=serves(corpus) == "names")
    if serves(corpus) == "names":
        # The shipped generator. p = 0.5 costs 0.06 nats/char of held-out NLL but makes small
        # languages recognisable: classifier agreement rises from 0.83 to 0.88-0.90.
        model = ModelConfig(model="lstm", embed=64, hidden=256, layers=2, dropout=0.2)
        return TrainConfig(corpus=corpus, task=task, model=model, epochs=15, batch_size=64, lr=3e-3,
                           class_weight_power=0.5)
    # Poems: the shipped Tang model (about 85 minutes on 2 quiet cores). Adaptive softmax makes the
    # ~7k-character output layer cheap on a CPU; the 24 most prolific poets are its styles.
    model = ModelConfig(model="lstm", embed=256, hidden=512, layers=2, dropout=0.3, adaptive=True)
    return TrainConfig(corpus=corpus, task=task, model=model, epochs=26, batch_size=64, lr=2e-3,
                       warmup=200, styles=CORPORA[corpus].styles if corpus in CORPORA else 0)


# Settings that may change when a run is resumed; everything else must match.
RESUMABLE = {"epochs", "max_steps", "max_time", "eval_every", "patience", "device", "threads", "data_dir"}
