"""The console scripts (``setup.cfg``) and the top-level scripts: each runs its command's ``main`` as the whole
process (``interrupts.for_process``), the command's module imported under its handlers. A console script imports
its target before anything else runs, so the targets are here, in a module that imports nothing heavy: a signal at
any instant, imports included, ends the command with 130 / 143 and one line, never a traceback."""
from __future__ import annotations

import importlib
from typing import Callable

from ..interrupts import for_process


def run(command: str) -> None:
    """Run ``rls_lightning.cli.<command>``'s ``main`` as the whole process. Never returns."""
    def main() -> int:
        return importlib.import_module(f"rls_lightning.cli.{command}").main()

    for_process(main)


def _console_script(command: str) -> Callable[[], None]:
    def console_script() -> None:
        run(command)

    console_script.__name__ = command
    console_script.__doc__ = f"``rls-{command.replace('_', '-')}``: ``run({command!r})``."
    return console_script


(invert, train_flow, evaluate, make_lr, weights, flow_report, inspect_generator, train_stylegan, experiments,
 app) = map(_console_script, ("invert", "train_flow", "evaluate", "make_lr", "weights", "flow_report",
                               "inspect_generator", "train_stylegan", "experiments", "app"))
