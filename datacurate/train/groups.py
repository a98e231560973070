"""Parameter groups: which parameters each group owns, and one torch optimizer per optimizer kind.

Every group is in its optimizer from the first step; stages only toggle requires_grad, so no
scheduler ever sees a group appear mid-run. Biases and norm weights (1-d tensors) get no decay
(`no_bias_decay`, on by default).
"""

from __future__ import annotations

import torch
from torch import nn

from datacurate.core.errors import UserError
from datacurate.vision.freeze import resolve_modules
from datacurate.train.options import GENERIC_GROUPS, SEED_GROUPS, GroupSpec, parse_groups


def default_groups(model: nn.Module) -> list[GroupSpec]:
    """The seed's three groups when the model has layer3.18- and layer4, else body + head."""
    try:
        for g in SEED_GROUPS:
            for spec in g["modules"]:
                if not resolve_modules(model, spec):
                    raise UserError(spec)
        return parse_groups(SEED_GROUPS)
    except UserError:
        return parse_groups(GENERIC_GROUPS)


def assign(model: nn.Module, groups: list[GroupSpec]) -> dict[str, list[str]]:
    """Group name -> its parameter names, in model order. '*' takes what no other group names."""
    order = [n for n, _ in model.named_parameters()]
    owner: dict[str, str] = {}
    for g in groups:
        for spec in g.modules:
            if spec == "*":
                continue
            for p in resolve_modules(model, spec, f"train.groups[{g.name}] module"):
                if p in owner and owner[p] != g.name:
                    raise UserError(f"train.groups: parameter {p} is in both {owner[p]!r} and {g.name!r}")
                owner[p] = g.name
    for g in groups:
        if "*" in g.modules:
            for p in order:
                owner.setdefault(p, g.name)
    return {g.name: [p for p in order if owner.get(p) == g.name] for g in groups}


def _decays(p: torch.Tensor, no_bias_decay: bool) -> bool:
    return p.ndim > 1 or not no_bias_decay


def build_optimizers(model: nn.Module, groups: list[GroupSpec], members: dict[str, list[str]],
                     no_bias_decay: bool = True) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per kind; each group gives two torch param groups (decay / no decay: biases and norm weights)."""
    params = dict(model.named_parameters())
    by_kind: dict[str, list[dict]] = {}
    for g in groups:
        names = members[g.name]
        for decay in (True, False):
            ps = [params[n] for n in names if _decays(params[n], no_bias_decay) == decay]
            if ps:
                by_kind.setdefault(g.optimizer, []).append({
                    "params": ps, "lr": g.lr, "weight_decay": g.weight_decay if decay else 0.0,
                    "group": g.name, "decay": decay, **_extra(g)})
    return {kind: _make(kind, pgs) for kind, pgs in sorted(by_kind.items())}


def _extra(g: GroupSpec) -> dict:
    return {"momentum": g.momentum} if g.optimizer == "sgd" else {"betas": tuple(g.betas)}


def _make(kind: str, pgs: list[dict]) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "nadam": torch.optim.NAdam}[kind]
    fused = kind in ("adam", "adamw", "sgd") and all(p.is_cuda for pg in pgs for p in pg["params"])
    return cls(pgs, lr=pgs[0]["lr"], **({"fused": True} if fused else {}))


def set_lrs(optimizers: dict[str, torch.optim.Optimizer], lrs: dict[str, float]) -> None:
    """Set each torch param group's learning rate from its datacurate group's."""
    for opt in optimizers.values():
        for pg in opt.param_groups:
            pg["lr"] = lrs[pg["group"]]


def param_count(model: nn.Module, names: list[str] | set[str]) -> int:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in names)
