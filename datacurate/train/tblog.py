"""`train --tensorboard`: per-epoch scalars in runs/<run>/tensorboard/ for TensorBoard.

tensorboard is an optional extra (`pip install 'datacurate[tensorboard]'`), imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path

from datacurate.core.errors import UserError

EXTRA = "pip install 'datacurate[tensorboard]'"


class Scalars:
    """One SummaryWriter for a run; `epoch` logs loss, accuracy, learning rate per group and images/s."""

    def __init__(self, run_dir: Path):
        SummaryWriter = require()
        self.dir = run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.dir))

    def epoch(self, row: dict, images_per_s: float) -> None:
        step = int(row["epoch"])
        for split in ("train", "valid"):
            self.writer.add_scalar(f"loss/{split}", row[f"{split}_loss"], step)
            self.writer.add_scalar(f"accuracy/{split}", row[f"{split}_acc"], step)
        if "valid_acc_ema" in row:
            self.writer.add_scalar("loss/valid_ema", row["valid_loss_ema"], step)
            self.writer.add_scalar("accuracy/valid_ema", row["valid_acc_ema"], step)
        for key, value in row.items():
            if key.startswith("lr_"):
                self.writer.add_scalar(f"lr/{key[3:]}", value, step)
        self.writer.add_scalar("speed/train_images_per_s", images_per_s, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()



def require():
    """torch's SummaryWriter; a UserError naming the extra when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(f"--tensorboard needs the tensorboard package, which is not installed: {EXTRA}") from None
    return SummaryWriter
