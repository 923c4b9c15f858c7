"""Console helpers shared by the command-line tools."""
from __future__ import annotations

import warnings

from lightning.pytorch.callbacks import RichProgressBar


class CleanRichProgressBar(RichProgressBar):
    """Lightning's rich progress bar without the logger's version number, which means nothing to users."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def silence_known_lightning_warnings() -> None:
    """Warnings about choices made on purpose: a sized seed stream whose seeds follow the global step (so it
    needs no loader state to resume), frozen (eval-mode) networks, checkpoints of GANs taken after the step."""
    for pattern in (r".*IterableDataset.*has `__len__` defined.*", r".*module\(s\) in eval mode.*",
                    r".*isinstance\(treespec, LeafSpec\).*", r".*litlogger.*",
                    r".*ModelCheckpoint with manual optimization.*", r".*smaller than the logging interval.*",
                    r".*your dataloader is not resumable.*"):
        warnings.filterwarnings("ignore", message=pattern)
