"""The console scripts (``setup.cfg``) and the top-level scripts: each runs its command's ``main`` as the whole
process (``interrupts.for_process``), the command's module imported under its handlers. A console script imports
its target before anything else runs, so the targets are here, in a module that imports nothing heavy: a signal at
any instant, imports included, ends the command with 130 / 143 and one line, never a traceback."""
from __future__ import annotations

import importlib

from ..interrupts import for_process


def run(command: str) -> None:
    """Run ``rls_lightning.cli.<command>``'s ``main`` as the whole process. Never returns."""
    def main() -> int:
        return importlib.import_module(f"rls_lightning.cli.{command}").main()

    for_process(main)


def invert() -> None:
    run("invert")


def train_flow() -> None:
    run("train_flow")


def evaluate() -> None:
    run("evaluate")


def make_lr() -> None:
    run("make_lr")


def weights() -> None:
    run("weights")


def flow_report() -> None:
    run("flow_report")


def inspect_generator() -> None:
    run("inspect_generator")


def train_stylegan() -> None:
    run("train_stylegan")


def experiments() -> None:
    run("experiments")


def app() -> None:
    run("app")
