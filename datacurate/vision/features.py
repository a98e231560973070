"""A network's features: the vector its final Linear classifies (fit-head and `--head-from` classify them)."""

from __future__ import annotations

import torch
from torch import nn

from datacurate.vision.heads import Head, head_name
from datacurate.vision.models import create_model


def final_linear(model: nn.Module) -> nn.Linear:
    """The Linear layer that produces the logits (inside a datacurate head, or the head itself)."""
    head = model.get_submodule(head_name(model))
    return head.fc if isinstance(head, Head) else head


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The vector the final Linear classifies (the network's features), for a normalised batch."""
    got: list[torch.Tensor] = []
    handle = final_linear(model).register_forward_hook(lambda m, inp, out: got.append(inp[0].detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return got[0].float().flatten(1)


def backbone_model(arch: str, weights: str, device: torch.device) -> nn.Module:
    """A torchvision backbone whose classifier passes its features through (for fit-head --backbone)."""
    model = create_model(arch, 1, weights)
    return model.to(device).eval()
