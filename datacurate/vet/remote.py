"""vet's embedding on a Ray cluster: actors that each hold the model (on a GPU with `num_gpus` where the
cluster has them) and embed batches of paths, the same batches a local run makes, in the same order."""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from datacurate.executors.ray import Cluster
from datacurate.scrape.remote import _result, chunks

PER_ACTOR = 2  # batches queued on an actor: the next one is there when it finishes one


class Embedder:
    """A Ray actor: the model on this worker's device; embed() decodes a batch of files and runs it."""

    def __init__(self, model_file: str, pre, device: str, threads: int):
        import torch

        from datacurate.vet.embed import placed

        model = torch.load(model_file, map_location="cpu", weights_only=False)  # the file the driver just wrote
        self.dev, self.model = placed(model, device)
        self.pre = pre
        self.pool = ThreadPoolExecutor(max(1, threads))

    def embed(self, paths: Sequence[str]) -> tuple[list[int], np.ndarray, dict[int, str]]:
        """(positions in `paths` that decoded, their vectors, {position: why} for the others)."""
        from datacurate.vision.data import ImageSet
        from datacurate.vet.embed import _collate_keep_index, features

        ds = ImageSet([(p, 0) for p in paths], self.pre)
        images, index, bad = _collate_keep_index(list(self.pool.map(ds.__getitem__, range(len(ds)))))
        return index, features(self.model, self.dev, self.pre, images), bad


def embed_on_cluster(cluster: Cluster, backbone, paths: Sequence[str], opts, *,
                     quiet: bool = True) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """What vet.embed.embed_files returns, computed by cluster.actors actors: at most PER_ACTOR batches
    queued on each; an actor whose worker dies is restarted and its batch run again (ray.max_retries)."""
    import ray
    import torch
    from tqdm import tqdm

    from datacurate.core.fsutil import atomic_path

    retries = cluster.opts.max_retries
    actor = ray.remote(Embedder).options(num_cpus=cluster.opts.num_cpus, num_gpus=cluster.num_gpus,
                                         max_restarts=retries, max_task_retries=retries)
    # The model goes through the shared workspace, not the object store: a restarted actor finds it there.
    model_file = cluster.scratch / f"ray-model-{uuid.uuid4().hex}.pt"
    with atomic_path(model_file) as tmp:
        torch.save(backbone.model, tmp)
    actors = [actor.remote(str(model_file), backbone.pre, opts.device, int(cluster.opts.num_cpus) or 1)
              for _ in range(min(cluster.actors, max(1, -(-len(paths) // opts.batch_size))))]
    batches = chunks(list(paths), opts.batch_size)
    out: list[np.ndarray | None] = [None] * len(paths)
    bad: dict[int, str] = {}
    load = {i: 0 for i in range(len(actors))}
    pending: dict = {}
    bar = tqdm(total=len(paths), desc="embedding (ray)", disable=True if quiet else None, file=sys.stderr,
               leave=False, dynamic_ncols=True)
    nxt = 0
    try:
        while nxt < len(batches) or pending:
            for a in sorted(load, key=load.get):
                while nxt < len(batches) and load[a] < PER_ACTOR:
                    pending[actors[a].embed.remote(batches[nxt])] = (a, nxt)
                    load[a] += 1
                    nxt += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                a, b = pending.pop(ref)
                load[a] -= 1
                index, vectors, failed = _result(ray, ref, "embedding", cluster)
                start = b * opts.batch_size
                for i, v in zip(index, vectors):
                    out[start + i] = v
                bad.update({start + i: why for i, why in failed.items()})
                bar.update(len(batches[b]))
    finally:
        bar.close()
        for a in actors:
            ray.kill(a)
        model_file.unlink(missing_ok=True)
    return out, bad
