"""The CUDA paths: training steps per cell type and task, bf16 / fp16 autocast (fp16 with loss
scaling), a checkpoint trained on the GPU that loads and samples on the CPU, constrained poem
decoding with its masks on the device, and torchrun with nccl. Collected everywhere, run only
where CUDA is available (``pytest -m gpu``; ``benchmarks/gpu_check.sh`` runs them first)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import train_tiny

from poetgen.checkpoint import load_checkpoint
from poetgen.config import TrainConfig
from poetgen.model import ModelConfig
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.train import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def gpu_config(data: Path, corpus: str, task: str, **overrides) -> TrainConfig:
    model = {"embed": 16, "hidden": 32, "layers": 2, "dropout": 0.1, **overrides.pop("model", {})}
    return TrainConfig(corpus=corpus, task=task, data_dir=str(data), device="cuda", max_steps=4, batch_size=8,
                       eval_every=4, warmup=1, model=ModelConfig(task=task, **model), **overrides)


@pytest.mark.parametrize("cell", ["torch", "custom"])
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("corpus", "task"), [("tang", "lm"), ("names", "lm"), ("names", "classify")])
def test_a_training_step_runs_on_cuda(tiny_data: Path, tmp_path: Path, model: str, cell: str, corpus: str,
                                      task: str) -> None:
    trainer = Trainer(gpu_config(tiny_data, corpus, task, model={"model": model, "cell": cell}), tmp_path / "run")
    assert next(trainer.model.parameters()).is_cuda
    record = trainer.fit()
    assert record["step"] == 4 and record["val_loss"] == record["val_loss"]  # finite, not NaN


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_trains_and_fp16_scales_its_loss(tiny_data: Path, tmp_path: Path, precision: str) -> None:
    trainer = Trainer(gpu_config(tiny_data, "tang", "lm", precision=precision, max_steps=8), tmp_path / "run")
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    first = trainer.evaluate()["val_loss"]
    trainer.fit()
    assert trainer.evaluate()["val_loss"] < first


def test_a_gpu_checkpoint_samples_on_the_cpu(tiny_data: Path, tmp_path: Path) -> None:
    """Same seed, same text on cuda and on the CPU where the kernels agree to the last bit; cuDNN's
    LSTM and the CPU's differ by rounding, so a near-tie between two characters may fall the other
    way: the poems must keep their form either way, and most must match."""
    Trainer(gpu_config(tiny_data, "tang", "lm", max_steps=30), tmp_path / "run").fit()
    on_gpu = load_checkpoint(tmp_path / "run", device="cuda")
    on_cpu = load_checkpoint(tmp_path / "run", device="cpu")
    sampling = Sampling(temperature=0.8, seed=7)
    gpu_poems = write_poems(on_gpu, "白日", n=8, sampling=sampling, form="五绝")
    cpu_poems = write_poems(on_cpu, "白日", n=8, sampling=sampling, form="五绝")
    assert all(p.check["rules"]["form"] for p in gpu_poems + cpu_poems)
    same = sum(a.text == b.text for a, b in zip(gpu_poems, cpu_poems, strict=True))
    assert same >= 6, [(a.text, b.text) for a, b in zip(gpu_poems, cpu_poems, strict=True)]


def test_constrained_decoding_keeps_its_masks_on_the_device(tiny_models: dict[str, Path]) -> None:
    from poetgen.poems.masks import vocab_masks

    ck = load_checkpoint(tiny_models["poems"], device="cuda")
    poems = write_poems(ck, "", n=16, form="七律", sampling=Sampling(seed=3))
    assert all(p.check["rules"]["form"] and p.check["rules"]["rhyme"] for p in poems)
    masks = vocab_masks(ck).on(torch.device("cuda", 0))
    assert masks.cjk.is_cuda and masks.level.is_cuda and masks.tone_bias.is_cuda


def test_torchrun_one_process_with_nccl(tiny_data: Path, tmp_path: Path) -> None:
    args = ["--corpus", "tang", "--data-dir", str(tiny_data), "--max-steps", "4", "--batch-size", "8", "--hidden", "16",
            "--embed", "8", "--layers", "1", "--eval-every", "2", "--quiet", "--device", "cuda", "--out",
            str(tmp_path / "ddp")]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           "-m", "poetgen", "train", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(tmp_path / "ddp").config.hidden == 16


def test_the_shared_tiny_models_train_on_cuda_as_well(tiny_data: Path, tmp_path: Path) -> None:
    run = train_tiny(tiny_data, tmp_path / "names", "names", device="cuda", max_steps=10)
    assert load_checkpoint(run).meta["train"]["device"] == "cuda"
