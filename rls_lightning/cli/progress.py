"""Console helpers shared by the command-line tools: the progress of a job (a live bar on a terminal, plain lines in
a log), Lightning's bar for the training commands, and the Lightning warnings silenced on purpose. Lightning is
imported only when its bar is asked for, so that ``--help`` stays fast."""
from __future__ import annotations


def job_progress(console, *, enabled: bool = True):
    """What an ``InversionJob`` reports to: rich's live bar when ``console`` (a rich ``Console``) writes to a
    terminal, else ``progress_lines.LineProgress`` writing plain lines to the same stream (one per finished image,
    and every few steps of a long stage), so that a redirected log shows progress as it happens. Both are context
    managers; ``enabled=False`` (ranks other than 0) shows nothing."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    if console.is_terminal or not enabled:
        columns = [TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn()]
        return Progress(*columns, console=console, disable=not enabled)
    from ..progress_lines import LineProgress

    return LineProgress(console.file)


def __getattr__(name: str):
    if name == "CleanRichProgressBar":
        return _clean_rich_progress_bar()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _clean_rich_progress_bar():
    from lightning.pytorch.callbacks import RichProgressBar

    class CleanRichProgressBar(RichProgressBar):
        """Lightning's rich progress bar without the logger's version number, which means nothing to users."""

        def get_metrics(self, trainer, pl_module):
            metrics = super().get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)
            return metrics

    globals()["CleanRichProgressBar"] = CleanRichProgressBar  # one class, built once
    return CleanRichProgressBar
