"""Train on what you trust: a run fitted on the originals alone, for vetting without ImageNet weights.

The originals of the vetted classes are linked into .datacurate/vet/trusted-split/{train,valid}
(a fifth of each class in valid, drawn by a seeded content hash as split draws), and `train` runs
there with the workspace's `train:` recipe under the run name given by --run. A run that exists
already is used as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from datacurate.core.imageio import IMAGEFOLDER_EXTENSIONS
from datacurate.vet.options import VetOptions
from datacurate.core.workspace import Workspace

VALID_SHARE = 0.2


def needs_training(ws: Workspace, opts: VetOptions) -> bool:
    """Whether run `opts.run` does not exist yet (train_first will train it)."""
    name = str(opts.run)
    return not ((ws.runs / name / "last.pt").is_file() or Path(name).is_file())


def ensure_trusted_run(ws: Workspace, opts: VetOptions, originals, *, quiet: bool = True,
                       echo: Callable[[str], None] = lambda s: None) -> None:
    """Train run `opts.run` on the originals (rows of the catalog) unless it exists."""
    from datacurate.train import train  # the train stage's public entry point

    name = str(opts.run)
    if not needs_training(ws, opts):
        return
    if "/" in name or name.startswith("."):
        from datacurate.core.errors import UserError

        raise UserError(f"vet: --run {name!r} does not exist, and a run to train first needs a plain name")
    folder = _trusted_split(ws, opts.seed, originals)
    paths = {**(ws.config.get("paths") or {}), "split": str(folder)}
    recipe = {**(ws.config.get("train") or {}), "name": name}
    echo(f"training run {name} on the originals alone (the model vet judges with)")
    train(Workspace(ws.root, {**ws.config, "paths": paths, "train": recipe}), {}, quiet=quiet, echo=echo)


def _trusted_split(ws: Workspace, seed: int, originals) -> Path:
    from datacurate.core.fsutil import free_path, link_or_copy
    from datacurate.split.eligible import rank_of

    folder = ws.state_dir / "vet" / "trusted-split"
    shutil.rmtree(folder, ignore_errors=True)
    by_class: dict[str, list] = {}
    for row in originals:
        if row["path"].lower().endswith(IMAGEFOLDER_EXTENSIONS):
            by_class.setdefault(row["class"], []).append(row)
    for klass, rows in by_class.items():
        rows.sort(key=lambda r: rank_of(r["sha256"], seed))
        n_valid = max(1, round(len(rows) * VALID_SHARE)) if len(rows) > 1 else 0
        for n, row in enumerate(rows):
            part = "valid" if n < n_valid else "train"
            dst = folder / part / klass / row["path"].rsplit("/", 1)[-1]
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst = free_path(dst)  # circle/a.jpg and circle/sub/a.jpg: a.jpg and a-1.jpg
            link_or_copy(ws.abs(row["path"]), dst)
    return folder
