"""Classifier heads: linear (torchvision's own), MLP, SE or CBAM attention, compact or full bilinear pooling.

Every head but `linear` is a `Head`: `features(x)` gives the vector its last Linear (`fc`) classifies, so
freeze specs, parameter groups and fit-head treat it as one module named like the classifier it
replaces (`fc` on ResNets). The attention and bilinear heads need the last feature map: they replace the
model's `avgpool` by an identity and take the flattened map that reaches the classifier. `head_name` finds
the classifier of any model, `swap_module` replaces a submodule by name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from datacurate.core.errors import UserError

SPATIAL = ("se", "cbam", "bilinear")


class Head(nn.Module):
    """Base class: `features` then dropout and the Linear `fc`."""

    def __init__(self, dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


class MLPHead(Head):
    """Linear -> ReLU -> Dropout -> Linear."""

    def __init__(self, in_features: int, num_classes: int, hidden: int, dropout: float):
        super().__init__(hidden, num_classes, dropout)
        self.hidden = nn.Linear(in_features, hidden)

    def features(self, x):
        return torch.relu(self.hidden(x))


class SpatialHead(Head):
    """A head on the last feature map (C channels), which arrives flattened: reshaped to a square map."""

    def __init__(self, channels: int, dim: int, num_classes: int, dropout: float):
        super().__init__(dim, num_classes, dropout)
        self.channels = channels

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return x
        side = math.isqrt(x.shape[1] // self.channels)
        return x.reshape(x.shape[0], self.channels, side, side)


class SEHead(SpatialHead):
    """Squeeze-and-excitation channel attention, then average pooling."""

    def __init__(self, channels: int, num_classes: int, dropout: float, reduction: int = 16):
        super().__init__(channels, channels, num_classes, dropout)
        mid = max(1, channels // reduction)
        self.squeeze = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(inplace=True), nn.Linear(mid, channels), nn.Sigmoid())

    def features(self, x):
        m = self.feature_map(x)
        m = m * self.squeeze(m.mean((2, 3)))[:, :, None, None]
        return m.mean((2, 3))


class CBAMHead(SpatialHead):
    """CBAM: channel attention (average and max pooled, shared MLP), then 7x7 spatial attention, then pooling."""

    def __init__(self, channels: int, num_classes: int, dropout: float, reduction: int = 16):
        super().__init__(channels, channels, num_classes, dropout)
        mid = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(inplace=True), nn.Linear(mid, channels))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def features(self, x):
        m = self.feature_map(x)
        ch = torch.sigmoid(self.mlp(m.mean((2, 3))) + self.mlp(m.amax((2, 3))))
        m = m * ch[:, :, None, None]
        sp = torch.sigmoid(self.spatial(torch.cat([m.mean(1, keepdim=True), m.amax(1, keepdim=True)], 1)))
        return (m * sp).mean((2, 3))


class BilinearHead(SpatialHead):
    """Bilinear pooling: full (outer product of a 1x1-reduced map) or compact (tensor sketch, Gao et al. 2016).

    Both end with a signed square root and L2 normalisation.
    """

    def __init__(self, channels: int, num_classes: int, dropout: float, kind: str = "compact", dim: int | None = None):
        dim = dim or (8192 if kind == "compact" else 256)
        super().__init__(channels, dim * dim if kind == "full" else dim, num_classes, dropout)
        self.kind, self.dim = kind, dim
        if kind == "full":
            self.reduce = nn.Conv2d(channels, dim, 1)
        else:
            g = torch.Generator().manual_seed(0)  # the sketch is fixed: saved as buffers, never trained
            for k in (1, 2):
                self.register_buffer(f"h{k}", torch.randint(0, dim, (channels,), generator=g))
                self.register_buffer(f"s{k}", torch.randint(0, 2, (channels,), generator=g).float() * 2 - 1)

    def _sketch(self, x: torch.Tensor, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], self.dim)
        return out.index_add(1, h, x * s)

    def features(self, x):
        m = self.feature_map(x).float()
        n, c, hgt, wid = m.shape
        if self.kind == "full":
            r = self.reduce(m).flatten(2)  # N, d, HW
            y = torch.bmm(r, r.transpose(1, 2)).flatten(1) / (hgt * wid)
        else:
            v = m.permute(0, 2, 3, 1).reshape(-1, c)  # every location's feature vector
            f1 = torch.fft.rfft(self._sketch(v, self.h1, self.s1))
            f2 = torch.fft.rfft(self._sketch(v, self.h2, self.s2))
            y = torch.fft.irfft(f1 * f2, n=self.dim).reshape(n, hgt * wid, self.dim).mean(1)
        y = torch.sign(y) * torch.sqrt(y.abs() + 1e-8)
        return nn.functional.normalize(y, dim=1)


def head_name(model: nn.Module) -> str:
    """Qualified name of the classifier: a datacurate head, else the last Linear layer (fc, classifier.N, heads.head...),
    else, in a model with none (SqueezeNet), its last 1x1 Conv2d."""
    last = last_conv = None
    for name, mod in model.named_modules():
        if isinstance(mod, Head):
            return name
        if isinstance(mod, nn.Linear):
            last = name
        elif isinstance(mod, nn.Conv2d) and mod.kernel_size == (1, 1):
            last_conv = name
    if last is None and last_conv is None:
        raise UserError(f"{type(model).__name__} has no Linear classifier layer to replace")
    return last or str(last_conv)


def swap_module(model: nn.Module, name: str, make) -> nn.Module:
    """Replace the submodule at qualified `name` (fc, classifier.1, ...) with make(old); returns the new one."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = parent[int(attr)] if attr.isdigit() else getattr(parent, attr)
    new = make(old)
    if attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)
    return new


def _spatial_slot(model: nn.Module, arch: str, kind: str) -> tuple[str, int]:
    """(attribute of the classifier, channels of the last feature map) where an avgpool feeds it, else a UserError."""
    pool = getattr(model, "avgpool", None)
    fc, cls = getattr(model, "fc", None), getattr(model, "classifier", None)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        if isinstance(fc, nn.Linear):
            return "fc", fc.in_features
        if isinstance(cls, nn.Sequential) and all(isinstance(m, (nn.Dropout, nn.Linear)) for m in cls) \
                and sum(isinstance(m, nn.Linear) for m in cls) == 1:
            return "classifier", next(m for m in cls if isinstance(m, nn.Linear)).in_features
    raise UserError(f"--head {kind} needs the last feature map, which {arch} does not hand to a pooled linear classifier; "
                    "use it with resnet, resnext, wide_resnet, regnet or efficientnet models, or --head linear / mlp")


def install_head(model: nn.Module, arch: str, num_classes: int, options: Mapping[str, Any]) -> str:
    """Put the head `options['head']` on `model` (whose classifier is already a Linear for num_classes); returns its name."""
    kind = str(options.get("head", "linear"))
    dropout = float(options.get("head_dropout", 0.0) or 0.0)
    if kind == "linear":
        return head_name(model)
    if kind == "mlp":
        name = head_name(model)
        if not isinstance(model.get_submodule(name), nn.Linear):
            raise UserError(f"--head mlp: {arch} classifies with a convolution ({name}), not a Linear layer; use --head linear")
        hidden = int(options.get("head_hidden", 512))
        swap_module(model, name, lambda old: MLPHead(old.in_features, num_classes, hidden, dropout))
        return name
    attr, channels = _spatial_slot(model, arch, kind)
    if kind == "se":
        head: Head = SEHead(channels, num_classes, dropout)
    elif kind == "cbam":
        head = CBAMHead(channels, num_classes, dropout)
    else:
        head = BilinearHead(channels, num_classes, dropout, str(options.get("bilinear", "compact")), options.get("bilinear_dim"))
    model.avgpool = nn.Identity()
    setattr(model, attr, head)
    return attr


def describe(options: Mapping[str, Any]) -> str:
    """The head in words, for --plan."""
    kind = str(options.get("head", "linear"))
    drop = float(options.get("head_dropout", 0.0) or 0.0)
    tail = f", dropout {drop:g}" if drop and kind != "linear" else ""
    if kind == "mlp":
        return f"mlp (hidden {options.get('head_hidden', 512)}{tail})"
    if kind == "bilinear":
        b = str(options.get("bilinear", "compact"))
        dim = options.get("bilinear_dim") or (8192 if b == "compact" else 256)
        return f"bilinear {b} ({'sketch size' if b == 'compact' else 'channels'} {dim}{tail})"
    return {"linear": "linear", "se": "squeeze-and-excitation attention + pool + linear",
            "cbam": "CBAM attention + pool + linear"}[kind] + tail
