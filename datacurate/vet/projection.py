"""A map of the collection: vet's cached embeddings projected to 2-D, per class and all together.

UMAP (umap-learn, when installed) or else PCA (scikit-learn) of the vectors the embeddings table
holds for vet's model, one point per file the catalog knows: originals, scraped, flagged (set
aside by vet, or listed by it) and relabelled (a person's label) in different marks. The same
points feed the review app's /map and the static reports/vet-map.html `datacurate report vet` writes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from datacurate.core.catalog import Catalog
from datacurate.core.workspace import Workspace

ALL = ""  # the layout of every class together
MAP_PAGE = "vet-map.html"


@dataclass
class Point:
    path: str       # where the file is now
    sha256: str
    klass: str
    kind: str       # original | scraped | flagged | relabelled
    reason: str     # off-topic | wrong-class | '' (vet's flag)
    x: float
    y: float


def model_key(cat: Catalog) -> str | None:
    """The embeddings model that covers most of vet's scored contents (the latest vet's, in practice)."""
    row = cat.db.execute("SELECT model, COUNT(*) n, MAX(rowid) r FROM embeddings WHERE sha256 IN "
                         "(SELECT sha256 FROM vet_scores) GROUP BY model ORDER BY n DESC, r DESC LIMIT 1").fetchone()
    return row[0] if row else None


def method() -> str:
    """umap when umap-learn imports, else pca."""
    try:
        import umap  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or broken by its numba: PCA is the fallback either way
        return "pca"
    return "umap"


def project(x: np.ndarray, how: str | None = None, seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of the rows of `x`, scaled into [0, 1] (one or two points: fixed places)."""
    n = len(x)
    if n == 0:
        return np.zeros((0, 2))
    if n < 3:
        return np.array([[0.5, 0.5], [0.75, 0.5]][:n])
    how = how or method()
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if how == "umap" and n >= 10:
        import umap

        xy = umap.UMAP(n_neighbors=min(15, n - 1), random_state=seed, metric="cosine").fit_transform(x)
    else:
        from sklearn.decomposition import PCA

        xy = PCA(2, svd_solver="full").fit_transform(x)
    lo, hi = xy.min(0), xy.max(0)
    return (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)


def points(cat: Catalog, how: str | None = None) -> dict[str, list[Point]]:
    """{class: its points, ALL: every point}, each layout projected on its own."""
    from datacurate.core.overrides import load

    key = model_key(cat)
    if key is None:
        return {}
    labels = load(cat).labels
    flags = {r[0]: r[1] for r in cat.db.execute("SELECT sha256, flag FROM vet_scores WHERE flag != ''")}
    rows = cat.db.execute(
        "SELECT f.path, f.sha256, f.class, f.source, f.status, f.reason, e.vector FROM files f "
        "JOIN embeddings e ON e.sha256 = f.sha256 AND e.model = ? WHERE f.source IN ('original','scraped') "
        "AND f.class != '' AND (f.status = 'ok' OR f.reason IN ('off-topic','wrong-class')) ORDER BY f.path",
        (key,)).fetchall()
    seen: set[str] = set()
    items, vectors = [], []
    for r in rows:
        if r["sha256"] in seen:
            continue
        seen.add(r["sha256"])
        kind = ("relabelled" if r["sha256"] in labels else
                "flagged" if r["status"] != "ok" or r["sha256"] in flags else r["source"])
        items.append(Point(r["path"], r["sha256"], r["class"], kind, r["reason"] or flags.get(r["sha256"], ""), 0, 0))
        vectors.append(np.frombuffer(r["vector"], dtype=np.float16).astype(np.float32))
    out: dict[str, list[Point]] = {}
    groups = {ALL: list(range(len(items)))}
    for i, p in enumerate(items):
        groups.setdefault(p.klass, []).append(i)
    for name, members in sorted(groups.items()):
        xy = project(np.stack([vectors[i] for i in members]), how) if members else np.zeros((0, 2))
        out[name] = [Point(**{**asdict(items[i]), "x": round(float(a), 4), "y": round(float(b), 4)})
                     for i, (a, b) in zip(members, xy)]
    return out


def map_data(cat: Catalog, how: str | None = None) -> dict:
    """The map as JSON-able data: {"method", "layouts": {class: [point dicts]}}."""
    how = how or method()
    return {"method": how, "layouts": {k: [asdict(p) for p in v] for k, v in points(cat, how).items()}}


def render(data: dict, *, title: str, thumbs: dict[str, str], full: dict[str, str], app: dict | None = None) -> str:
    """The map page: `thumbs` and `full` map sha256 -> URL; `app` (token, ...) makes clicks open the card."""
    from datacurate.report.review import environment

    blob = json.dumps({**data, "thumbs": thumbs, "full": full, "app": app}, ensure_ascii=False).replace("<", "\\u003c")
    return environment().get_template("review-map.html.j2").render(title=title, data=blob, app=app is not None)


def write_map(ws: Workspace, cat: Catalog, *, quiet: bool = True) -> str | None:
    """reports/vet-map.html (thumbnails as files under reports/thumbs/, small pictures as they are); its workspace
    path, None with no embeddings."""
    from datacurate.core.fsutil import atomic_write_text
    from datacurate.report.review import Pic, Pictures

    data = map_data(cat)
    if not data["layouts"]:
        return None
    pics = Pictures(ws, quiet)
    every = {p["sha256"]: p["path"] for p in data["layouts"][ALL]}
    pics.want(Pic(path, sha) for sha, path in every.items())
    pics.make()
    thumbs = {sha: t for sha in every if (t := pics.thumb(Pic(every[sha], sha)))}
    full = {sha: h for sha in every if (h := pics.href(Pic(every[sha], sha)))}
    target = ws.reports / MAP_PAGE
    atomic_write_text(target, render(data, title="vet: the collection as the model sees it", thumbs=thumbs, full=full))
    return ws.rel(target)
