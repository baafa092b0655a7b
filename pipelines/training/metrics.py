"""RUN/metrics.jsonl: one JSON line per logged step, as a resumed run must see it.

A resumed run trains the steps after its checkpoint again, so the lines past that
checkpoint are dropped first, and so is a last line a kill cut short.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class MetricsLog:
    def __init__(self, path: Path, d):
        self.path, self.d = path, d

    def log_step(
        self,
        stage: str,
        step: int,
        global_step: int,
        lr: float,
        loss,
        grad_norm,
        logs: dict,
        window: tuple[int, int, float],
    ) -> float:
        """One line: this step's loss (the global batch's mean), lr, grad norm, the other
        logs, and throughput over the steps since the last line; returns the loss. Every
        rank calls it (a collective); rank 0 writes."""
        steps, samples, elapsed = window
        names = [k for k, v in logs.items() if isinstance(v, torch.Tensor) and k != "loss"]
        values = torch.stack([loss.detach().float(), *(logs[k].float() for k in names)])
        values = self.d.all_reduce(values, "mean").tolist()
        record = {
            "stage": stage, "step": step, "global_step": global_step, "loss": values[0],
            "lr": lr, "grad_norm": float(grad_norm), **dict(zip(names, values[1:], strict=True)),
            "samples_per_s": samples / max(elapsed, 1e-9), "step_s": elapsed / max(steps, 1),
        }  # fmt: skip
        if self.d.is_main:
            self.append(record)
        return values[0]

    def append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def trim(self, global_step: int) -> None:
        """Keep the lines of steps up to `global_step` (whole lines only)."""
        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line)["global_step"] <= global_step:
                    keep.append(line)
            except (ValueError, KeyError):
                continue
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        tmp.replace(self.path)
