"""Freeze specs: module names in the model's order, ranges like layer3.18-, and which parameters train."""

from __future__ import annotations

import difflib
import math
import re

from torch import nn

from datacurate.core.errors import UserError
from datacurate.vision.heads import head_name

_RANGE = re.compile(r"^(?P<parent>.+)\.(?P<lo>\d+)-(?P<hi>\d*)$")


def module_names(model: nn.Module) -> list[str]:
    """Every submodule's qualified name, in the model's (registration) order."""
    return [n for n, _ in model.named_modules() if n]


def _unknown(model: nn.Module, name: str, what: str) -> UserError:
    names = module_names(model) + ["head", "none"]
    near = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = f"; nearest valid names: {', '.join(near)}" if near else f"; valid names start with: {', '.join(n for n, _ in model.named_children())}"
    return UserError(f"{what} {name!r} is not a module of this model{hint} (see `datacurate train --plan`)")


def _under(param: str, module: str) -> bool:
    return param.startswith(module + ".")


def resolve_modules(model: nn.Module, spec: str, what: str = "module") -> set[str]:
    """Parameter names selected by one spec: a module name, 'head', or a range 'parent.K-' / 'parent.J-K'."""
    params = [n for n, _ in model.named_parameters()]
    if spec == "head":
        spec = head_name(model)
    mods = dict(model.named_modules())
    m = _RANGE.match(spec)
    if m and m["parent"] in mods:
        parent = mods[m["parent"]]
        idx = [int(c) for c, _ in parent.named_children() if c.isdigit()]
        lo, hi = int(m["lo"]), int(m["hi"]) if m["hi"] else max(idx, default=-1)
        if lo not in idx or hi not in idx or hi < lo:
            raise UserError(f"{what} {spec!r}: {m['parent']} has children 0-{max(idx, default=-1)}")
        picked = [f"{m['parent']}.{i}" for i in range(lo, hi + 1)]
        return {p for p in params if any(_under(p, c) for c in picked)}
    if spec not in mods or not spec:
        raise _unknown(model, spec, what)
    return {p for p in params if _under(p, spec)}


def frozen_before(model: nn.Module, until: str) -> set[str]:
    """Parameter names of every module that comes before module `until` in the model's order.

    `until` may be 'head' (train the head alone) or 'none' (freeze nothing). Direct parameters of
    modules that enclose `until` (e.g. a ViT's class token) come before it and are frozen too.
    """
    if until == "none":
        return set()
    target = head_name(model) if until == "head" else until
    order = {n: i for i, n in enumerate(n for n, _ in model.named_modules())}
    if target not in order or not target:
        raise _unknown(model, until, "--freeze-until")
    cut = order[target]
    out = set()
    for pname, _ in model.named_parameters():
        owner = pname.rpartition(".")[0]
        if order.get(owner, -1) < cut and not _under(pname, target):
            out.add(pname)
    return out


TRAIN_SHARE = 0.47  # the seed's layer3.18 of resnext101_32x8d trains the last 47% of the body's parameters


def default_freeze_until(model: nn.Module) -> str:
    """The default freeze_until of any architecture: the earliest block from which at most TRAIN_SHARE of
    the body's (non-head) parameters train, the same depth as the seed's layer3.18 of resnext101_32x8d.

    Blocks are the numbered (or named) members of the model's Sequential/ModuleList/ModuleDict containers
    and the model's own children, so the cut never falls inside a block.
    """
    head = head_name(model)
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    mods = dict(model.named_modules())
    total = sum(p.numel() for n, p in model.named_parameters() if not _under(n, head)) or 1
    frozen, best, best_gap = 0, "head", math.inf  # frozen: parameters before this module, which it would freeze
    for name, mod in mods.items():
        if name and name != head and not _under(head, name) and _block(mods, name, containers) \
                and next(mod.parameters(), None) is not None:
            gap = abs(total - frozen - TRAIN_SHARE * total)
            if gap < best_gap:
                best, best_gap = name, gap
        frozen += sum(p.numel() for p in mod.parameters(recurse=False))
    return best


def _block(mods: dict[str, nn.Module], name: str, containers: tuple) -> bool:
    """A child of the model or of containers all the way down (layer3.18, features.5), or one of a run of
    same-kind blocks (encoder.layers.encoder_layer_7); never a layer inside a block (layer3.18.conv1)."""
    parts = name.split(".")
    if all(isinstance(mods[".".join(parts[:i])], containers) for i in range(1, len(parts))):
        return True
    parent = mods[".".join(parts[:-1])]
    kinds = {type(m) for m in parent.children() if next(m.parameters(), None) is not None}
    return isinstance(parent, containers) and len(kinds) == 1 and len(list(parent.children())) > 1 \
        and next(mods[name].children(), None) is not None


def apply_trainable(model: nn.Module, trainable: set[str]) -> None:
    """Set requires_grad: True exactly for the parameter names in `trainable`."""
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)


def set_train_mode(model: nn.Module, bn_update: bool) -> None:
    """model.train(), but BatchNorm layers whose parameters are all frozen keep fixed running statistics."""
    model.train()
    if bn_update:
        return
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            ps = list(mod.parameters(recurse=False))
            if ps and not any(p.requires_grad for p in ps):
                mod.eval()


def summarize(model: nn.Module, selected: set[str]) -> list[str]:
    """Compact module names covering exactly the parameters in `selected` (e.g. layer3.0-17, layer4)."""
    out: list[str] = []

    def walk(prefix: str, mod: nn.Module) -> None:
        run: list[str] = []  # consecutive fully-selected numbered children

        def flush() -> None:
            if run:
                out.append(run[0] if len(run) == 1 else f"{run[0]}-{run[-1].rpartition('.')[2]}")
                run.clear()

        for cname, child in mod.named_children():
            full = f"{prefix}{cname}"
            names = {f"{full}.{n}" for n, _ in child.named_parameters()}
            if not names:
                continue
            hit = names & selected
            if hit == names:
                if cname.isdigit():
                    run.append(full)
                else:
                    flush()
                    out.append(full)
            else:
                flush()
                if hit:
                    walk(full + ".", child)
        flush()
        for pname, _ in mod.named_parameters(recurse=False):
            if f"{prefix}{pname}" in selected:
                out.append(f"{prefix}{pname}")

    walk("", model)
    return out
