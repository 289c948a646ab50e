"""Device selection and mixed precision.

Why: the same training and scoring code must run on a laptop CPU and on a CUDA
server. Every model asks :func:`resolve_device` for its device and wraps its
forward passes in :func:`autocast_context`, which is bf16/fp16 autocast on CUDA and
a no-op on CPU, so there is exactly one code path.
"""

from __future__ import annotations

import contextlib
import re
from contextlib import AbstractContextManager

import torch

_EXPLICIT = re.compile(r"^(cpu|cuda(:\d+)?)$")


def resolve_device(preference: str | torch.device | None = "auto") -> torch.device:
    """Turn a user preference ("auto", "cpu", "cuda", "cuda:1") into a torch.device.

    "auto" picks CUDA when available, else CPU. Asking explicitly for CUDA on a
    machine without it raises ValueError rather than silently running on CPU,
    because a silent fallback hides mis-configured workers.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not _EXPLICIT.match(pref):
        raise ValueError(
            f"Unknown device {preference!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {preference!r} requested but CUDA is not available on this "
                "machine; use device='auto' or 'cpu'."
            )
        if ":" in pref:
            index = int(pref.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                raise ValueError(
                    f"Device {preference!r} requested but only "
                    f"{torch.cuda.device_count()} CUDA device(s) are present."
                )
    return torch.device(pref)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype used on ``device`` (None = full precision)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_context(device: torch.device) -> AbstractContextManager:
    """Mixed-precision autocast on CUDA (bf16 when supported, else fp16); null on CPU."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def needs_grad_scaler(device: torch.device) -> bool:
    """fp16 autocast needs loss scaling; bf16 and fp32 do not."""
    return autocast_dtype(device) == torch.float16
