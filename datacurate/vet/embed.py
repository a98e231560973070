"""Embeddings: one vector per image from a torchvision backbone or a datacurate run, cached by content.

The backbone is built the way `train` builds models (train.models: any torchvision architecture,
ImageNet weights from the torch cache or a download, a local weights file read with
weights_only=True); its classifier is replaced by Identity, so the vector is what the classifier
would have seen. Images are decoded by imageio (draft-decoded JPEGs) in DataLoader workers,
batched, and run on the GPU under autocast where there is one. Vectors are stored in the catalog's
`embeddings` table by (content sha256, model key), so a re-run embeds only new content and a
moved or renamed file keeps its vector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from datacurate.core.catalog import Catalog
from datacurate.core.terminal import progress
from datacurate.core.errors import UserError
from datacurate.vet.options import VetOptions
from datacurate.core.workspace import Workspace


@dataclass
class Backbone:
    """A feature extractor and how to feed it."""

    model: object          # torch.nn.Module with its head replaced by Identity
    pre: object            # train.data.Preprocess
    key: str               # the cache key: architecture, weights identity, preprocessing
    description: str


def load_backbone(ws: Workspace, opts: VetOptions, *, quiet: bool = True) -> Backbone:
    """The model named by the options: `run`, else `backbone` with `weights`."""
    import torch
    from torch import nn

    from datacurate.vision.data import Preprocess
    from datacurate.vision.heads import head_name, swap_module
    from datacurate.vision.models import create_model

    if opts.run:
        from datacurate.vision.runs import load_run

        lr = load_run(ws, opts.run, "cpu")
        model = lr.model
        key = f"run:{_file_digest(lr.checkpoint)}:{_pre_key(lr.pre)}"
        desc = f"run {lr.name} ({lr.checkpoint.name})"
        pre = lr.pre
    else:
        torch.manual_seed(opts.seed)  # weights none: the same random features every run
        model = create_model(opts.backbone, 1, _weights_arg(ws, opts.weights), quiet=quiet)
        pre = Preprocess(round(opts.img_size * 255 / 224), opts.img_size)
        key = f"{opts.backbone}:{_weights_key(ws, opts)}:{_pre_key(pre)}"
        desc = f"{opts.backbone} with {'ImageNet' if opts.weights.startswith('imagenet') else opts.weights} weights"
    swap_module(model, head_name(model), lambda old: nn.Identity())  # vectors from before the classifier
    return Backbone(model.eval(), pre, key, desc)


def _weights_arg(ws: Workspace, weights: str) -> str:
    if weights in ("imagenet", "none") or weights.startswith("imagenet:"):
        return weights
    path = Path(weights).expanduser()
    return str(path if path.is_absolute() or path.exists() else ws.root / path)


def _weights_key(ws: Workspace, opts: VetOptions) -> str:
    if opts.weights == "none":
        return f"none-seed{opts.seed}"
    if opts.weights.startswith("imagenet"):
        return opts.weights
    return "file-" + _file_digest(Path(_weights_arg(ws, opts.weights)))


def _pre_key(pre) -> str:
    return f"{pre.resize}/{pre.crop}/" + ",".join(f"{x:.4f}" for x in (*pre.mean, *pre.std))


def _file_digest(path: Path) -> str:
    from datacurate.core.index import sha256_file

    digest = sha256_file(str(path))
    if digest is None:
        raise UserError(f"cannot read {path}")
    return digest[:16]


# -- the cache ------------------------------------------------------------------------------------
def cached(cat: Catalog, key: str, shas: Sequence[str]) -> dict[str, np.ndarray]:
    """sha256 -> vector for the contents already embedded by the model `key`."""
    wanted = set(shas)
    rows = cat.db.execute("SELECT sha256, vector FROM embeddings WHERE model=?", (key,))
    return {sha: np.frombuffer(blob, dtype=np.float16).astype(np.float32) for sha, blob in rows if sha in wanted}


def store(cat: Catalog, key: str, vectors: dict[str, np.ndarray]) -> None:
    with cat.transaction():
        cat.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?)",
                           [(sha, key, v.astype(np.float16).tobytes()) for sha, v in vectors.items()])


# -- embedding ------------------------------------------------------------------------------------
def embed_files(backbone: Backbone, paths: Sequence[str | os.PathLike], opts: VetOptions, *,
                quiet: bool = True) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """A vector per path (None where the file does not decode) and {index: why} for those."""
    from torch.utils.data import DataLoader

    from datacurate.vision.data import ImageSet

    dev, model = placed(backbone.model, opts.device)
    workers = opts.workers if opts.workers is not None else max(0, min(8, (os.cpu_count() or 2) - 1))
    ds = ImageSet([(str(p), 0) for p in paths], backbone.pre)
    loader = DataLoader(ds, batch_size=opts.batch_size, num_workers=workers if len(ds) > opts.batch_size else 0,
                        collate_fn=_collate_keep_index, pin_memory=dev.device.type == "cuda",
                        prefetch_factor=4 if workers and len(ds) > opts.batch_size else None)
    out: list[np.ndarray | None] = [None] * len(ds)
    bad: dict[int, str] = {}
    for images, index, failed in progress(loader, total=len(loader), desc="embedding", quiet=quiet):
        bad.update(failed)
        for i, v in zip(index, features(model, dev, backbone.pre, images)):
            out[i] = v
    return out, bad


def features(model, dev, pre, images) -> np.ndarray:
    """The model's vectors for a uint8 NCHW batch (the work of one batch, here or on a Ray actor)."""
    import torch

    from datacurate.vision.data import to_input

    if not len(images):
        return np.zeros((0, 0), dtype=np.float32)
    with torch.inference_mode():
        x = to_input(images, dev.device, pre, dev.channels_last)
        with torch.autocast(dev.device.type, dtype=dev.amp_dtype, enabled=dev.amp_dtype is not None):
            feats = model(x)
        return feats.float().flatten(1).cpu().numpy()


def placed(model, device: str):
    """(vision.device.Device, the model on it): channels-last on CUDA."""
    import torch

    from datacurate.vision.device import pick_device

    dev = pick_device(device, True, True)
    model = model.to(dev.device)
    if dev.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return dev, model


def _collate_keep_index(batch):
    """train.data.collate, plus the dataset indices of the decodable samples."""
    from datacurate.vision.data import collate

    images, _, bad = collate(batch)
    return images, [b[2] for b in batch if b[0] is not None], bad


def embed_with_cache(cat: Catalog, backbone: Backbone, items: Sequence[tuple[str, str]], opts: VetOptions, *,
                     quiet: bool = True, embed: Callable | None = None) -> tuple[dict[str, np.ndarray], int, dict[str, str]]:
    """Vectors by sha256 for (absolute path, sha256) items: from the cache, the rest embedded (here by
    embed_files, or by `embed`, which takes and returns the same: vet.remote's actors on a Ray cluster) and stored.

    Returns (vectors, how many were embedded now, {path: why} for files that did not decode).
    """
    have = cached(cat, backbone.key, [sha for _, sha in items])
    todo: dict[str, str] = {}
    queued: set[str] = set()
    for path, sha in items:
        if sha not in have and sha not in queued:
            todo[path] = sha
            queued.add(sha)
    failed: dict[str, str] = {}
    if todo:
        paths = list(todo)
        vectors, bad = (embed or embed_files)(backbone, paths, opts, quiet=quiet)
        # rounded as the cache keeps them, so a first run and a cached re-run judge the same numbers
        new = {todo[p]: v.astype(np.float16).astype(np.float32) for p, v in zip(paths, vectors) if v is not None}
        failed = {paths[i]: why for i, why in bad.items()}
        store(cat, backbone.key, new)
        have.update(new)
    return have, len(todo) - len(failed), failed
