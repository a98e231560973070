"""Model factory: any torchvision classification architecture by name, its head replaced for the classes."""

from __future__ import annotations

import difflib
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from datacurate.core.errors import UserError
from datacurate.vision.heads import head_name, install_head, swap_module

# Environment switches for the ImageNet weights (documented in README.md and docs/workspace.md):
OFFLINE_ENV = "DATACURATE_OFFLINE"  # "1": never download, use torchvision's cache only
WEIGHTS_URL_ENV = "DATACURATE_WEIGHTS_URL"  # a mirror base URL; the file name is torchvision's


def architectures() -> list[str]:
    """Names of torchvision's classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Swap the classifier for a fresh Linear(in_features, num_classes) (a 1x1 Conv2d for SqueezeNet); returns its name."""
    name = head_name(model)

    def fresh(old: nn.Module) -> nn.Module:
        if isinstance(old, nn.Conv2d):  # SqueezeNet: a 1x1 convolution classifies every position, then pooling
            return nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
        return nn.Linear(old.in_features, num_classes, bias=old.bias is not None)

    swap_module(model, name, fresh)
    return name


def create_model(arch: str, num_classes: int, weights: str = "none", *, quiet: bool = False,
                 options: Mapping[str, Any] | None = None) -> nn.Module:
    """Build `arch` with `weights` (imagenet | none | PATH) and a fresh head for `num_classes`.

    `options` (train options or a run's config) may pick the head (head, head_hidden, head_dropout, bilinear,
    bilinear_dim), the norm layer (norm: group) and zero_gamma.
    """
    import torchvision

    options = options or {}
    names = architectures()
    if arch not in names:
        near = difflib.get_close_matches(arch, names, n=4, cutoff=0.5)
        raise UserError(f"unknown architecture {arch!r}" + (f"; did you mean {', '.join(near)}?" if near else "; see torchvision.models.list_models()"))
    group = options.get("norm", "batch") == "group"
    pretrained = weights not in ("none", "", None)
    if options.get("zero_gamma") and pretrained:
        raise UserError("--zero-gamma initialises fresh residual blocks; with pretrained weights it would erase them (use --weights none)")
    try:
        model = torchvision.models.get_model(arch, weights=None, **({"norm_layer": group_norm} if group else {}))
    except TypeError:
        raise UserError(f"--norm group: {arch} takes no norm layer argument; use --norm batch") from None
    if weights == "imagenet" or weights.startswith("imagenet:"):
        state = imagenet_state_dict(arch, weights.partition(":")[2] or "DEFAULT", quiet=quiet)
        if group:  # GroupNorm keeps the affine weights; BatchNorm's running statistics have no place
            state = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
        model.load_state_dict(state)
        replace_head(model, num_classes)
    else:
        replace_head(model, num_classes)
    if options.get("zero_gamma"):
        zero_gamma(model, arch)
    install_head(model, arch, num_classes, options)
    if pretrained and not weights.startswith("imagenet"):
        load_weights_file(model, weights)
    return model


@contextmanager
def empty_weights() -> Iterator[None]:
    """Models built inside keep their parameters and buffers on the meta device: names and shapes, no memory.

    What `--plan` needs, in milliseconds even for the largest architecture (their constructors' own
    arithmetic, e.g. RegNet's widths, still runs on real tensors).
    """
    reg_param, reg_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def param(self: nn.Module, name: str, value: Any) -> None:
        reg_param(self, name, value)
        if value is not None:
            self._parameters[name] = nn.Parameter(value.to("meta"), requires_grad=value.requires_grad)

    def buffer(self: nn.Module, name: str, value: Any, persistent: bool = True) -> None:
        reg_buffer(self, name, value, persistent)
        if value is not None:
            self._buffers[name] = value.to("meta")

    nn.Module.register_parameter, nn.Module.register_buffer = param, buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = reg_param, reg_buffer  # type: ignore[method-assign]


def group_norm(channels: int, *_, **__) -> nn.GroupNorm:
    """GroupNorm with 32 groups (fewer when the channels do not divide), for --norm group."""
    return nn.GroupNorm(math.gcd(32, channels), channels)


RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck", "ResBottleneckBlock")


def zero_gamma(model: nn.Module, arch: str) -> int:
    """Zero the weight of the last norm layer of each residual block (Goyal et al.); returns how many."""
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
    n = 0
    for mod in model.modules():
        if type(mod).__name__ in RESIDUAL_BLOCKS:
            last = [m for name, m in mod.named_modules() if isinstance(m, norms) and not name.startswith(("downsample", "proj"))]
            if last and last[-1].weight is not None:
                nn.init.zeros_(last[-1].weight)
                n += 1
    if not n:
        raise UserError(f"--zero-gamma: {arch} has no residual block with a norm layer (resnet, resnext, wide_resnet and regnet do)")
    return n


def imagenet_weights_enum(arch: str, tag: str = "DEFAULT"):
    """torchvision's Weights entry for `arch` (DEFAULT, IMAGENET1K_V1, ...)."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
        return enum.DEFAULT if tag == "DEFAULT" else enum[tag]
    except (KeyError, ValueError):
        raise UserError(f"torchvision has no ImageNet weights {tag} for {arch}") from None


def imagenet_state_dict(arch: str, tag: str = "DEFAULT", *, quiet: bool = False) -> dict:
    """ImageNet weights from torchvision's cache (TORCH_HOME), else downloaded; one-line error when neither works."""
    entry = imagenet_weights_enum(arch, tag)
    file_name = os.path.basename(entry.url)
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache_dir / file_name
    base = os.environ.get(WEIGHTS_URL_ENV)
    url = f"{base.rstrip('/')}/{file_name}" if base else entry.url
    how = f"put {file_name} in {cache_dir} or pass a local file with --weights PATH"
    if not cached.is_file() and os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise UserError(f"ImageNet weights for {arch} are not in the torch cache and {OFFLINE_ENV} forbids downloading; {how}")
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(cache_dir), map_location="cpu", progress=not quiet,
                                                  weights_only=True)
    except Exception as exc:  # noqa: BLE001 - urllib, socket and HTTP errors all mean "cannot be had"
        import urllib.error

        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
        raise UserError(f"ImageNet weights for {arch} are not cached and could not be downloaded from {url} ({reason}); {how}") from None


def read_weights_file(path: str | os.PathLike) -> dict:
    """A state dict from a plain state-dict file or a datacurate checkpoint (torch.load weights_only=True)."""
    from datacurate.vision.checkpoint import torch_load

    data = torch_load(path, f"--weights {path}: no such file (use imagenet, none or a path to a .pt/.pth file)",
                      f"--weights {path} is not a loadable PyTorch weights file")
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    elif isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserError(f"--weights {path} holds neither a state dict nor a datacurate checkpoint")
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_weights_file(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a local weights file into `model`; a head of another shape is skipped. Returns skipped keys."""
    state = read_weights_file(path)
    own = model.state_dict()
    head = head_name(model)
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    bad = [k for k in skipped if not k.startswith(head + ".")]
    if bad:
        raise UserError(f"--weights {path}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, the model wants {tuple(own[bad[0]].shape)}")
    for k in skipped:
        del state[k]
    missing = [k for k in own if k not in state and not (k in skipped or k.startswith(head + "."))]
    unexpected = [k for k in state if k not in own and not k.startswith(head + ".")]
    for k in [k for k in state if k not in own]:
        del state[k]  # another head's parameters (a run trained with another --head)
    if missing or unexpected:
        what = f"misses {missing[0]}" if missing else f"has unknown key {unexpected[0]}"
        raise UserError(f"--weights {path} does not fit this architecture: it {what} ({len(missing)} missing, {len(unexpected)} unknown)")
    model.load_state_dict(state, strict=False)
    return skipped
