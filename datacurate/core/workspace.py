"""The workspace: folder layout and config, with precedence flag > datacurate.yaml > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

import yaml

from datacurate.core.errors import UserError, cut
from datacurate.core.fsutil import path_text, text_path

if TYPE_CHECKING:
    from datacurate.core.options import StageOptions

M = TypeVar("M", bound="StageOptions")
CONFIG_NAME = "datacurate.yaml"
STATE_DIR = ".datacurate"
SOURCES = ("original", "scraped", "test")
INPUTS = ("original", "test")  # folders the user brings: a `paths:` entry for one must exist
MAX_CONFIG_BYTES = 1 << 20  # a settings file; a bigger one is a mistake (and slow to parse)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it: 10-20x faster
QUARANTINE_BESIDE = ".datacurate-quarantine"  # beside a source folder on another file system (see quarantine_for)

# Paths a datacurate.yaml may move (under the `paths:` key), relative to the workspace.
DEFAULT_PATHS = {
    "original": "data/original",
    "scraped": "data/scraped",
    "test": "data/test",
    "quarantine": "data/quarantine",
    "split": "data/split",
    "runs": "runs",
    "reports": "reports",
}


ConfigCheck = Callable[[Mapping[str, Any], str], None]
_config_check: ConfigCheck | None = None  # set by check_config_with()


def check_config_with(check: ConfigCheck) -> None:
    """Have Workspace.open pass every datacurate.yaml to `check(config, where)`, which raises UserError.

    The sections and their options belong to the stages, above core: datacurate/__init__.py hands
    over datacurate.stages.check_config, so every import of the package sets it before a workspace opens.
    """
    global _config_check
    _config_check = check


def _check_config(config: Mapping[str, Any], where: str) -> None:
    if _config_check is None:  # never: importing any datacurate module runs datacurate/__init__.py first
        raise RuntimeError("no datacurate.yaml check was set (datacurate/__init__.py sets it)")
    _config_check(config, where)


@dataclass
class Workspace:
    """A datacurate workspace rooted at `root`; `config` is the parsed datacurate.yaml.

    `Workspace(path)` opens the folder as `Workspace.open(path)` does (its datacurate.yaml read and
    checked); `Workspace(path, config)` takes the config as given.
    """

    root: Path
    config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.config is None:
            opened = Workspace.open(self.root)
            self.root, self.config = opened.root, opened.config
        else:
            self.root = Path(self.root)

    @classmethod
    def open(cls, root: str | os.PathLike | None = None, *, must_exist: bool = True) -> "Workspace":
        """Open the workspace at `root` (default: the current directory)."""
        if isinstance(root, bytes):
            root = os.fsdecode(root)
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise UserError(f"a workspace is a folder (str or os.PathLike), got {str(repr(root))[:80]}")
        path = Path(root if root is not None else os.getcwd()).expanduser()
        if must_exist and not path.is_dir():
            if path.exists():
                raise UserError(f"workspace {path} is a file, not a folder")
            raise UserError(f"workspace folder {path} does not exist; create one with `datacurate -C {path} init`")
        config = load_config(path / CONFIG_NAME)
        _check_config(config, str(path / CONFIG_NAME) if config else CONFIG_NAME)
        ws = cls(root=path.resolve() if path.exists() else path.absolute(), config=config)
        if must_exist:
            ws.check_paths()
        return ws

    # -- layout ---------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Absolute path of a layout entry (original, scraped, test, quarantine, split, runs, reports)."""
        cache = self.__dict__.setdefault("_paths", {})
        if name not in cache:
            paths = self.config.get("paths") or {}
            if not isinstance(paths, Mapping) or name not in DEFAULT_PATHS:
                raise UserError(f"{CONFIG_NAME}: `paths` must map names among {', '.join(DEFAULT_PATHS)} to folders")
            value = DEFAULT_PATHS[name] if paths.get(name) is None else paths[name]
            if isinstance(value, (bool, list, dict)) or "\0" in str(value) or not str(value).strip():
                raise UserError(f"{CONFIG_NAME}: paths.{name} must be a folder name"
                                + (" (it holds a NUL byte)" if "\0" in str(value) else f", not {_shown(value)!r}"))
            rel = os.path.expanduser(str(value))
            # not resolved: a symlinked folder keeps its name in the workspace (and the catalog's keys with it)
            cache[name] = Path(os.path.abspath(os.path.join(self.root, rel)))
        return cache[name]

    def relayout(self) -> None:
        """Forget the folders worked out so far (after `config` changed) and check `paths:` again."""
        self.__dict__.pop("_paths", None)
        self.__dict__.pop("_quarantines", None)
        self.check_paths()

    def check_paths(self) -> None:
        """Every layout folder (a `paths:` entry or its default) and .datacurate must be usable: UserError
        (one line) when not.

        An input given in `paths:` (original, test) must exist; an output folder may be made later, but
        its parent must exist when it lies outside the workspace (an unmounted disk); no folder may be a
        file or a symbolic link to nothing, and no two may be one folder or nest (check_overlap).
        """
        given = self.config.get("paths") or {}
        given = given if isinstance(given, Mapping) else {}
        for name in DEFAULT_PATHS:
            folder = self.path(name)
            if name in given and given[name] is not None:
                what = f"{CONFIG_NAME}: paths.{name} {_shown(given[name])}"
            else:
                what = f"the {name} folder {self.rel(folder)}"
            _check_folder(folder, what)
            if folder.exists() or not (name in given and given[name] is not None):
                continue
            if name in INPUTS:
                raise UserError(f"{what}: no such folder ({folder})")
            if not self.inside(folder) and not folder.parent.is_dir():
                raise UserError(f"{what}: neither the folder nor {folder.parent} exists (is the disk mounted?)")
        _check_folder(self.state_dir, f"the workspace's state folder {STATE_DIR}")
        self.check_overlap()

    def check_overlap(self) -> None:
        """No two layout folders may be one folder or lie one inside the other (symbolic links followed):
        a test folder inside the originals would set every original aside, a split inside them mix its
        copies into the data."""
        given = self.config.get("paths") or {}

        def named(n: str) -> str:
            return f"paths.{n} ({_shown(given.get(n, DEFAULT_PATHS[n]))})"

        real = {name: os.path.realpath(self.path(name)) for name in DEFAULT_PATHS}
        names = list(DEFAULT_PATHS)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if real[a] == real[b]:
                    raise UserError(f"{CONFIG_NAME}: {named(a)} and {named(b)} are the same folder; each needs its own")
                for inner, outer in ((a, b), (b, a)):
                    if real[inner].startswith(real[outer].rstrip(os.sep) + os.sep):
                        raise UserError(f"{CONFIG_NAME}: {named(inner)} lies inside {named(outer)}; "
                                        f"each needs a folder of its own, apart from the others")

    def inside(self, path: str | os.PathLike) -> bool:
        """Whether `path` (absolute, not resolved) lies inside the workspace folder."""
        return os.path.abspath(path).startswith(str(self.root) + os.sep)

    def quarantine_for(self, source: str) -> Path:
        """The quarantine files of `source` move into: the workspace's when it is on the same file system,
        else a `.datacurate-quarantine` folder beside the source folder's real location, so setting a
        file aside is a rename and never a copy across devices."""
        cache = self.__dict__.setdefault("_quarantines", {})
        if source not in cache:
            real = Path(os.path.realpath(self.path(source)))
            here = device(real)
            cache[source] = self.quarantine if here is None or here == device(self.quarantine) else real.parent / QUARANTINE_BESIDE
        return cache[source]

    def quarantines(self) -> list[Path]:
        """Every quarantine folder of this layout (the workspace's first)."""
        return list(dict.fromkeys([self.quarantine] + [self.quarantine_for(s) for s in SOURCES if s != "test"]))

    @property
    def original(self) -> Path:
        return self.path("original")

    @property
    def scraped(self) -> Path:
        return self.path("scraped")

    @property
    def test(self) -> Path:
        return self.path("test")

    @property
    def quarantine(self) -> Path:
        return self.path("quarantine")

    @property
    def split_dir(self) -> Path:
        return self.path("split")

    @property
    def runs(self) -> Path:
        return self.path("runs")

    @property
    def reports(self) -> Path:
        return self.path("reports")

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def catalog_path(self) -> Path:
        return self.state_dir / "catalog.sqlite"

    def rel(self, path: str | os.PathLike) -> str:
        """The catalog's key for a file: its workspace-relative POSIX path, or its absolute path when it lies
        outside the workspace (a `paths:` entry pointing elsewhere)."""
        text = os.path.abspath(os.path.join(self.root, path))
        root = str(self.root)
        if text.startswith(root + os.sep):
            return path_text(text[len(root) + 1:].replace(os.sep, "/"))
        return path_text(text.replace(os.sep, "/"))

    def abs(self, rel: str) -> Path:
        """Absolute path of a catalog key (an absolute key stays as it is)."""
        return self.root / text_path(rel)

    def source_of(self, path: str | os.PathLike) -> tuple[str, str] | None:
        """(source, class) of a file under data/original, data/scraped or data/test, else None."""
        text = os.path.abspath(path)
        for source in SOURCES:
            base = str(self.path(source)) + os.sep
            if text.startswith(base):
                parts = text[len(base):].split(os.sep)
                return source, (parts[0] if len(parts) > 1 else "")
        return None

    def class_names(self, source: str = "original") -> list[str]:
        """Class folder names under a source folder, sorted (ImageFolder order)."""
        base = self.path(source)
        if not base.is_dir():
            return []
        return sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))

    # -- options --------------------------------------------------------------------------------
    def options(self, model: type[M], flags: Mapping[str, Any] | None = None) -> M:
        """A stage's validated options (a datacurate.core.options model): flag > datacurate.yaml > default."""
        return model.resolve(self.config.get(model.SECTION), flags)


def _check_folder(folder: Path, what: str) -> None:
    """UserError when `folder` is a file, or a symbolic link to nothing (a missing folder is fine)."""
    if os.path.islink(folder) and not folder.exists():
        raise UserError(f"{what} is a symbolic link to {os.readlink(folder)}, which does not exist")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} is a file, not a folder; move it away")


def _shown(value: Any) -> str:
    """A `paths:` value for an error line (cut when long)."""
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def device(path: Path) -> int | None:
    """st_dev of `path`, or of its nearest existing parent (None when nothing can be stat'ed)."""
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except OSError:
            continue
    return None


def load_config(path: Path) -> dict[str, Any]:
    """Parse datacurate.yaml; a missing file is an empty config, a broken one a UserError."""
    if not path.exists():
        return {}
    if path.is_dir():
        raise UserError(f"{path} is a folder; it should be a YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise UserError(f"{path} is {size / 2**20:.1f} MB; a datacurate.yaml over {MAX_CONFIG_BYTES >> 20} MB is refused "
                            f"(it holds settings: keep long lists such as queries in files it names)")
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML ({cut(str(getattr(exc, 'problem', exc)))})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of sections (clean:, scrape:, ...)")
    return data
