"""vet's embedding on a Ray cluster: actors that each hold the model (on a GPU with `num_gpus` where the
cluster has them) and embed batches of paths, the same batches a local run makes, in the same order."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable, Sequence

import numpy as np

from datacurate.core.fsutil import atomic_path
from datacurate.executors.base import Executor
from datacurate.executors.batches import chunks
from datacurate.executors.ray import RayExecutor
from datacurate.vet.embed import _collate_keep_index, features, placed

PER_ACTOR = 2  # batches queued on an actor: the next one is there when it finishes one


class Embedder:
    """A Ray actor: the model on this worker's device; embed() decodes a batch of files and runs it."""

    def __init__(self, model_file: str, pre, device: str, threads: int):
        import torch

        model = torch.load(model_file, map_location="cpu", weights_only=False)  # the file the driver just wrote
        self.dev, self.model = placed(model, device)
        self.pre = pre
        self.pool = ThreadPoolExecutor(max(1, threads))

    def embed(self, paths: Sequence[str]) -> tuple[list[int], np.ndarray, dict[int, str]]:
        """(positions in `paths` that decoded, their vectors, {position: why} for the others)."""
        from datacurate.vision.data import ImageSet

        ds = ImageSet([(p, 0) for p in paths], self.pre)
        images, index, bad = _collate_keep_index(list(self.pool.map(ds.__getitem__, range(len(ds)))))
        return index, features(self.model, self.dev, self.pre, images), bad


def embedder_for(executor: Executor) -> Callable | None:
    """What embeds for vet.embed.embed_with_cache on `executor`: actors on a cluster, else None (embed here)."""
    return partial(embed_on_cluster, executor) if executor.remote else None


def embed_on_cluster(executor: RayExecutor, backbone, paths: Sequence[str], opts, *,
                     quiet: bool = True) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """What vet.embed.embed_files returns, computed by the cluster's actors: at most PER_ACTOR batches
    queued on each; an actor whose worker dies is restarted and its batch run again (ray.max_retries)."""
    import torch

    # The model goes through the shared workspace, not the object store: a restarted actor finds it there.
    model_file = executor.scratch / f"ray-model-{uuid.uuid4().hex}.pt"
    with atomic_path(model_file) as tmp:
        torch.save(backbone.model, tmp)
    batches = chunks(list(paths), opts.batch_size)
    out: list[np.ndarray | None] = [None] * len(paths)
    bad: dict[int, str] = {}
    try:
        init = (str(model_file), backbone.pre, opts.device, int(executor.num_cpus) or 1)
        found = executor.actor_map(Embedder, init, "embed", batches, desc="embedding", quiet=quiet, per_actor=PER_ACTOR)
    finally:
        model_file.unlink(missing_ok=True)
    for b, (index, vectors, failed) in enumerate(found):
        start = b * opts.batch_size
        for i, v in zip(index, vectors):
            out[start + i] = v
        bad.update({start + i: why for i, why in failed.items()})
    return out, bad
