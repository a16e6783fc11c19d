"""Where a training run computes: the device, the precision autocast runs in, the processes of a
``torchrun`` job (rank, world size, sums over ranks) and the random state dropout draws from.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from poetgen.errors import PoetgenError


def pick_device(name: str) -> torch.device:
    """The device ``--device`` names; ``auto``: CUDA (this rank's GPU), else Apple's GPU, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", env_int("LOCAL_RANK", 0))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PoetgenError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise PoetgenError("--device mps: no Apple GPU is available")
    if name == "cuda":
        return torch.device("cuda", env_int("LOCAL_RANK", 0))
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype ``--precision`` runs autocast in; None for fp32 (no autocast)."""
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise PoetgenError("--precision fp16 needs a CUDA device; use bf16 on CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def rng_state(device: torch.device) -> tuple:
    """The random state that dropout draws from on ``device`` (the CPU's, and the GPU's on CUDA)."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def set_rng_state(device: torch.device, state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def probe_autocast(model: nn.Module, device: torch.device, dtype: torch.dtype, name: str) -> None:
    """Fail at start, with one line, where the device's RNN kernels lack this precision (oneDNN's
    fused LSTM on many CPUs has no bf16 forward), rather than crash at the first step."""
    tokens = torch.ones(1, 2, dtype=torch.long, device=device)
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
            if model.cfg.task == "classify":
                model(tokens, torch.tensor([2]))
            else:
                model.features(tokens, torch.zeros(1, dtype=torch.long, device=device))
    except RuntimeError as e:
        raise PoetgenError(f"--precision {name} is not supported by this model on {device.type} "
                           f"({str(e).splitlines()[0][:80]}); use --precision fp32") from None


def distributed_setup() -> tuple[int, int]:
    """This process's rank and the number of processes: (0, 1) unless started by torchrun."""
    world = env_int("WORLD_SIZE", 1)
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def env_int(name: str, default: int) -> int:
    """A whole number torchrun puts in the environment (``WORLD_SIZE``, ``LOCAL_RANK``); anything
    else there is one line naming the variable."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise PoetgenError(f"{name} must be a whole number (torchrun sets it), got '{text}'")
    return int(text)


def all_reduce_sum(value: float, world: int, device: torch.device) -> float:
    return all_reduce_sums([value], world, device)[0]


def all_reduce_sums(values: list[float], world: int, device: torch.device) -> list[float]:
    """Sums over all ranks, in one collective."""
    if world <= 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
