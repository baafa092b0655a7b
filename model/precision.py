"""The one mixed-precision policy for training, caching latents and sampling.

`precision` is "auto", "bf16" or "fp32": auto means bf16 autocast on CUDA (tensor cores)
and float32 elsewhere, because bf16 matmuls on CPUs are slow and lose accuracy that a
small model trained there would notice.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def uses_bf16(precision: str, device: torch.device | str) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device_type = torch.device(device).type
    return precision == "bf16" or (precision == "auto" and device_type == "cuda")


def autocast(device: torch.device | str, precision: str = "auto"):
    """A context that runs its ops in bf16 where the policy says so, else does nothing."""
    if uses_bf16(precision, device):
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
