"""Where a model runs: the device (auto: cuda, then mps, then cpu), autocast dtype and memory format."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from datacurate.core.errors import UserError


@dataclass
class Device:
    """Where and how the model runs: device, autocast dtype (None: fp32), channels_last."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def pick_device(name: str, amp: bool, channels_last: bool) -> Device:
    """auto picks cuda, then mps, then cpu; on CUDA: bf16 autocast where supported (else fp16), channels_last."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this PyTorch (use --device cpu)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: MPS is not available (use --device cpu)")
    if name != "cuda":
        return Device(torch.device(name))
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if amp else None
    return Device(torch.device("cuda"), dtype, channels_last)
