"""`export`: a run's network as ONNX or TorchScript, its description beside it, checked against PyTorch.

The exported model takes float32 NCHW images normalised with the run's mean and std (any batch size)
and returns logits. FILE.json beside it holds the classes, the label map and the preprocessing
(resize, crop, mean, std), so `datacurate predict --model FILE` needs nothing else; each format has its
own (t.onnx.json, t.pt.json). Only a regular file (or nothing) at either path is replaced. The check runs real
images of the split through both and reports the largest difference of the logits.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from datacurate.core.errors import UserError
from datacurate.core.fsutil import atomic_path, atomic_write_text, check_target, write_error
from datacurate.train.labels import read_label_map
from datacurate.vision.data import ImageSet, collate, list_images, to_input
from datacurate.vision.runs import load_run
from datacurate.core.workspace import Workspace

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-3


@dataclass
class ExportResult:
    path: Path
    meta_path: Path
    format: str
    checked: int  # images compared
    max_diff: float | None  # None: not checked (onnxruntime missing)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.max_diff is None or self.max_diff <= TOLERANCE


def onnx_session(path: Path):
    """An onnxruntime CPU session (a UserError when onnxruntime is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("running an ONNX file needs onnxruntime: pip install 'datacurate[export]'") from None
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types
        raise UserError(f"{path} is not a loadable ONNX model ({str(exc)[:120]})") from None


def export(ws: Workspace, run: str, *, fmt: str = "onnx", out: str | None = None, label_map: str | None = None,
           ema: bool = False, check: int = 16) -> ExportResult:
    """Write run `run` as `fmt` to `out` (default: the run folder), its .json beside it, and check it on split images."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    lr = load_run(ws, run, "cpu", what="export", ema=ema)
    names = read_label_map(label_map, lr.classes) if label_map else {}
    path = Path(out) if out else lr.run_dir / ("model.onnx" if fmt == "onnx" else "model.torchscript.pt")
    if path.suffix == ".json":
        raise UserError(f"-o {path}: the description is written to FILE.json beside the model; pick another name")
    if path.is_dir():
        raise UserError(f"-o {path} is a folder; give a file name")
    meta_path = sidecar(path)
    check_target(path)  # a device node, FIFO or link given as -o: refused before anything is written
    check_target(meta_path)
    if fmt == "onnx" and lr.config.get("head") == "bilinear" and lr.config.get("bilinear", "compact") == "compact":
        raise UserError("the compact bilinear head uses an FFT, which ONNX cannot express; use --format torchscript")
    model = lr.model.float().eval()
    dummy = torch.zeros(2, 3, lr.pre.crop, lr.pre.crop)
    try:
        with atomic_path(path) as tmp:
            if fmt == "onnx":
                _onnx(model, dummy, tmp)
            else:
                with torch.no_grad(), quiet_jit():
                    torch.jit.trace(model, dummy).save(str(tmp))
    except UserError:
        raise
    except OSError as exc:  # the disk, not the model: "cannot write PATH: ..."
        raise write_error(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - an operator the exporter cannot express
        raise UserError(f"{lr.config.get('arch', 'the model')} (head {lr.config.get('head', 'linear')}) cannot be exported to {fmt}: "
                        f"{type(exc).__name__}: {str(exc)[:150]}") from None
    meta = {"format": fmt, "run": lr.name, "arch": lr.config.get("arch"), "classes": lr.classes, "label_map": names,
            "preprocess": lr.pre.as_dict(), "input": "float32 NCHW, RGB scaled to [0, 1], minus mean, divided by std",
            "output": "logits (softmax gives the probabilities)", "ema": ema, "config": lr.config}
    atomic_write_text(meta_path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    x = _check_batch(ws, lr.pre, check)
    if x is None:
        return ExportResult(path, meta_path, fmt, 0, None, "no decodable image in data/split: not checked")
    with torch.no_grad():
        ref = model(x)
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return ExportResult(path, meta_path, fmt, 0, None, "onnxruntime is not installed: not checked")
        got = torch.from_numpy(onnx_session(path).run(None, {"input": x.numpy()})[0])
    else:
        with torch.no_grad(), quiet_jit():
            got = torch.jit.load(str(path)).eval()(x)
    return ExportResult(path, meta_path, fmt, len(x), float((ref - got).abs().max()))


def sidecar(path: Path) -> Path:
    """The description beside an exported file: FILE.json (model.onnx.json), one per format and stem."""
    return path.with_name(path.name + ".json")


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """torch.jit's deprecation notes are not the user's business (TorchScript is the format they asked for)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks folded into constants: the parity check tests the result
        yield


def _onnx(model, dummy, path: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError("--format onnx needs the onnx package: pip install 'datacurate[export]'") from None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        kw = dict(input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                  opset_version=17)
        try:
            torch.onnx.export(model, (dummy,), str(path), dynamo=False, **kw)  # the TorchScript-based exporter: no onnxscript
        except TypeError:  # torch before 2.5 has no `dynamo` argument and only that exporter
            torch.onnx.export(model, (dummy,), str(path), **kw)


def _check_batch(ws: Workspace, pre, n: int) -> torch.Tensor | None:
    """Up to `n` normalised images from data/split/valid (else train), spread over the classes."""
    files: list[Path] = []
    for part in ("valid", "train"):
        folder = ws.split_dir / part
        if folder.is_dir():
            files = list_images(folder)
            if files:
                break
    if not files or n < 1:
        return None
    step = max(1, len(files) // n)
    picked = files[::step][:n]
    ds = ImageSet([(str(p), 0) for p in picked], pre)
    images, _, _ = collate([ds[i] for i in range(len(ds))])
    return to_input(images, torch.device("cpu"), pre, False) if len(images) else None
