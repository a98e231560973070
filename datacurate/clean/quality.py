"""Quality flags (cleanvision's issue types) from the metrics measured in clean's single decode.

Per picture, from imageio.quality_metrics: `dark`, `light`, `blurry`, `low-information`,
`grayscale`. Per dataset: `odd-size` (the side, sqrt of the area, is `odd_size_factor` times
off the median). By content: `placeholder` ("image not available" pictures that hosts serve
instead of a 404): a phash or sha256 in the placeholder list, or one scraped picture (same
perceptual hash) filed under several classes while carrying little information (two classes)
or whatever it shows (three classes): no real photograph answers three different queries.

Flags are reported for every image. By default the DEFAULT_DROP flags set aside scraped images
only; `drop` names flags that set aside any image; `keep_flags` sets nothing aside.
The default thresholds were measured with benchmarks/bench_quality.py on real photographs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from datacurate.clean.model import Decision, Item
from datacurate.core.errors import UserError

FLAGS = ("placeholder", "low-information", "dark", "light", "blurry", "odd-size", "grayscale")  # reason priority
DEFAULT_DROP = ("placeholder", "low-information", "dark", "light")  # blurry depends most on content: asked for only
# option name -> (flag, default); measured by benchmarks/bench_quality.py (see benchmarks/RESULTS.md)
THRESHOLDS = {
    "dark_below": ("dark", 0.35),                # brightest 1% of pixels under this luminance (0..1)
    "light_above": ("light", 0.65),              # darkest 5% of pixels over this luminance (washed out)
    "blown_above": ("light", 0.5),               # share of the middle's pixels blown out (>= 250) over this,
                                                 # the rest bright too (overexposed; bench_light.py)
    "blurry_below": ("blurry", 0.10),            # strongest edges (99.9th pct |Laplacian| / 255) under this
    "low_information_below": ("low-information", 0.44),  # luminance entropy (bits / 8) under this
    "grayscale_below": ("grayscale", 0.01),      # mean spread between R, G and B under this
    "odd_size_factor": ("odd-size", 10.0),       # side this many times over or under the median side
}
DEFAULT_THRESHOLDS = {name: default for name, (_, default) in THRESHOLDS.items()}
BRIGHT_REST = 0.5  # overexposed: the pixels not blown out average at least this luminance (bench_light.py)
PLACEHOLDER_BITS = 4  # a phash within this many bits of a listed placeholder matches
MIN_FOR_ODD_SIZE = 10  # fewer images than this: no median to be odd against
# Known placeholder pictures (hex phash or sha256). None ships verified: extend with
# `placeholder_hashes` (values or a file, one a line) from the placeholders your hosts serve.
KNOWN_PLACEHOLDERS: tuple[str, ...] = ()


@dataclass
class QualityOptions:
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    drop: tuple[str, ...] | None = None   # None: DEFAULT_DROP for scraped images
    keep_flags: bool = False
    placeholders: tuple[str, ...] = KNOWN_PLACEHOLDERS

    @classmethod
    def from_options(cls, opts: dict) -> "QualityOptions":
        thresholds = {name: float(opts.get(name, default)) for name, (_, default) in THRESHOLDS.items()}  # checked by CleanOptions
        return cls(thresholds, _parse_drop(opts.get("drop")), bool(opts.get("keep_flags")),
                   KNOWN_PLACEHOLDERS + _parse_placeholders(opts.get("placeholder_hashes")))

    def drops(self, flag: str, source: str) -> bool:
        if self.keep_flags:
            return False
        if self.drop is None:
            return source == "scraped" and flag in DEFAULT_DROP
        return flag in self.drop


def _parse_drop(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in FLAGS]
    if unknown:
        raise UserError(f"--drop {unknown[0]!r} is not a quality flag; known: {', '.join(FLAGS)}")
    return tuple(names)


def _parse_placeholders(value) -> tuple[str, ...]:
    """A list of hex hashes, or the path of a file holding one a line (# comments allowed)."""
    if value is None:
        return ()
    if isinstance(value, str):
        path = Path(value).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--placeholder-hashes {value}: cannot read it ({exc})") from None
        value = [line.split("#")[0].strip() for line in lines]
    out = []
    for v in value:
        v = str(v).strip().lower()
        if not v:
            continue
        if len(v) not in (16, 64) or any(c not in "0123456789abcdef" for c in v):
            raise UserError(f"placeholder hash {v!r} is neither a 16-hex perceptual hash nor a 64-hex sha256")
        out.append(v)
    return tuple(out)


def image_flags(metrics: dict | None, mode: str | None, thresholds: dict = DEFAULT_THRESHOLDS) -> list[str]:
    """The per-picture flags a set of metrics raises (empty when nothing was measured)."""
    if not metrics:
        return []
    # a bilevel picture (fax, scan) has at most 1 bit of entropy: judge it against that, not 8 bits
    entropy = metrics["entropy"] * (8 if mode == "1" else 1)
    low_info = entropy < thresholds["low_information_below"]
    raised = {
        "dark": metrics["bright"] < thresholds["dark_below"],
        "light": metrics["shadow"] > thresholds["light_above"] or _overexposed(metrics, thresholds),
        "blurry": metrics["sharpness"] < thresholds["blurry_below"] and not low_info,  # flat is not blurry
        "low-information": low_info,
        "grayscale": metrics["colour"] < thresholds["grayscale_below"],
    }
    return [f for f in FLAGS if raised.get(f)]


def _overexposed(m: dict, t: dict) -> bool:
    """Blown out in the middle and bright in the rest (a subject on a white background keeps its own tones)."""
    return m.get("centre_clipped", 0.0) > t["blown_above"] and m.get("unclipped_mean", 0.0) >= BRIGHT_REST


def _describe(flag: str, m: dict, t: dict) -> str:
    if flag == "light" and m and m["shadow"] <= t["light_above"]:
        return (f"light (overexposed: {m['centre_clipped']:.0%} of the middle blown out > {t['blown_above']:g}, "
                f"the rest at {m['unclipped_mean']:.2f})")
    return {
        "dark": f"dark (brightest 1% at {m['bright']:.2f} < {t['dark_below']:g})",
        "light": f"light (darkest 5% at {m['shadow']:.2f} > {t['light_above']:g})",
        "blurry": f"blurry (edges {m['sharpness']:.3f} < {t['blurry_below']:g})",
        "low-information": f"low-information (entropy {m['entropy']:.2f} < {t['low_information_below']:g})",
        "grayscale": "grayscale",
    }.get(flag, flag) if m else flag


def flag_items(items: list[Item], metrics: dict[str, dict], opts: QualityOptions) -> dict[str, list[str]]:
    """path -> quality flags, for every item."""
    t = opts.thresholds
    flags = {it.path: image_flags(metrics.get(it.sha256), it.mode, t) for it in items}
    sides = [(it.width * it.height) ** 0.5 for it in items if it.width and it.height]
    if len(sides) >= MIN_FOR_ODD_SIZE:
        median = statistics.median(sides)
        factor = t["odd_size_factor"]
        for it in items:
            side = (it.width * it.height) ** 0.5
            if side > median * factor or side < median / factor:
                flags[it.path].append("odd-size")
    for path in _placeholders(items, flags, opts.placeholders):
        flags[path].insert(0, "placeholder")
    return {p: sorted(set(f), key=FLAGS.index) for p, f in flags.items()}


def _placeholders(items: list[Item], flags: dict[str, list[str]], listed: tuple[str, ...]) -> set[str]:
    shas = {v for v in listed if len(v) == 64}
    codes = [int(v, 16) for v in listed if len(v) == 16]
    found = {it.path for it in items if it.sha256 in shas or (
        it.hash and any((int(it.hash, 16) ^ c).bit_count() <= PLACEHOLDER_BITS for c in codes))}
    classes: dict[str, set[str]] = {}
    for it in items:
        if it.source == "scraped" and it.hash:
            classes.setdefault(it.hash, set()).add(it.klass)
    for it in items:
        n = len(classes.get(it.hash or "", ()))
        if it.source == "scraped" and (n >= 3 or (n >= 2 and "low-information" in flags[it.path])):
            found.add(it.path)
    return found


def quality_decisions(items: list[Item], metrics: dict[str, dict], opts: QualityOptions
                      ) -> tuple[dict[str, list[str]], list[Decision]]:
    """(flags per path, decisions for the images a dropped flag sets aside)."""
    flags = flag_items(items, metrics, opts)
    decisions = []
    for it in items:
        dropped = [f for f in flags[it.path] if opts.drops(f, it.source)]
        if dropped:
            m = metrics.get(it.sha256) or {}
            detail = "; ".join(_describe(f, m, opts.thresholds) for f in flags[it.path])
            decisions.append(Decision(it.path, dropped[0], detail=f"quality: {detail}"))
    return flags, decisions
