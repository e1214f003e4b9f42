"""Per-step metrics: one JSON line per step in RUN_DIR/metrics.jsonl, mirrored to TensorBoard when it imports."""
from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["MetricsLog", "read_metrics"]


def read_metrics(path: Path) -> list[dict]:
    """The metric lines of a run (blank or cut-off last lines, as a killed run may leave, are skipped)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class MetricsLog:
    """Appends step metrics; on resume, first drops the lines of steps after the checkpoint being resumed."""

    def __init__(self, run_dir: Path, *, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= resume_step] if resume_step else []
        self.path.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the tensorboard package is optional; metrics.jsonl is the record
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=resume_step + 1)

    def write(self, metrics: dict) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(metrics, default=_plain) + "\n")
        if self.writer is not None:
            step = int(metrics["step"])
            for key, value in metrics.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
