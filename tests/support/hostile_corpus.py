"""The hostile-user corpus (issue 16): commands run as a user runs them, on inputs made to break them.

Each ``Case`` builds its files in a fresh folder and returns the command line; ``run_case`` runs the command's
``main`` in-process (an exception escaping it is what a user would see as a traceback), then checks the exit
code, that exactly one ``error:`` line names the culprit, that no traceback was printed, that every file which
existed before the run is byte-for-byte unchanged (inputs are never touched) and, per case, the state of the
output folder. Signals and kills need a real process: those cases live in ``test_hostile_corpus.py``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import os
import traceback
from pathlib import Path
from typing import Callable

COMMANDS = {
    "invert": "rls_lightning.cli.invert",
    "train_flow": "rls_lightning.cli.train_flow",
    "train_stylegan": "rls_lightning.cli.train_stylegan",
    "inspect_generator": "rls_lightning.cli.inspect_generator",
    "evaluate": "rls_lightning.cli.evaluate",
    "make_lr": "rls_lightning.cli.make_lr",
    "experiments": "rls_lightning.cli.experiments",
}


@dataclasses.dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in (self.stdout + "\n" + self.stderr).splitlines() if line.startswith("error:")]


@dataclasses.dataclass
class Case:
    """``setup(folder) -> argv`` makes the inputs; ``check(folder, outcome)`` asserts the state afterwards."""

    id: str
    command: str
    setup: Callable[[Path], list[str]]
    code: int = 2
    culprit: str | None = None  # text the one error line must contain; None: no error line expected
    check: Callable[[Path, Outcome], None] | None = None
    mutable: tuple[str, ...] = ()  # files (relative to the folder) the case expects to change
    cwd: str | None = None  # run from this folder (relative to the case's folder); default: unchanged

    def __str__(self) -> str:
        return self.id


def checksums(folder: Path) -> dict[str, str]:
    sums = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                sums[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
    return sums


def run_command(command: str, argv: list[str]) -> Outcome:
    """Run ``command``'s ``main(argv)`` in this process, capturing what it prints; ``SystemExit`` is an exit code
    (argparse's), any other exception a traceback the user would have seen."""
    main = importlib.import_module(COMMANDS[command]).main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if not isinstance(exit_.code, (int, type(None))):
                print(exit_.code, file=err)
        except BaseException:  # noqa: BLE001 - what the user would see
            traceback.print_exc(file=err)
            code = -1
    return Outcome(code=code, stdout=out.getvalue(), stderr=err.getvalue())


def run_case(case: Case, folder: Path) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    argv = case.setup(folder)
    before = checksums(folder)
    previous_cwd = os.getcwd()
    try:
        if case.cwd is not None:
            os.chdir(folder / case.cwd)
        outcome = run_command(case.command, argv)
    finally:
        os.chdir(previous_cwd)
    shown = f"exit {outcome.code}\n--- stdout\n{outcome.stdout[-3000:]}\n--- stderr\n{outcome.stderr[-3000:]}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, shown
    assert outcome.code == case.code, shown
    if case.culprit is None:
        assert not outcome.error_lines, shown
    else:
        assert len(outcome.error_lines) == 1, shown
        assert case.culprit in outcome.error_lines[0], shown
    after = checksums(folder)
    changed = sorted(k for k, v in before.items() if after.get(k) != v and k not in case.mutable)
    assert not changed, f"files changed or deleted: {changed}\n{shown}"
    if case.check is not None:
        case.check(folder, outcome)
    return outcome


def finished_stems(out: Path) -> list[str]:
    """Images whose row says ok (a row is first written as 'incomplete', before the image's files)."""
    done = []
    for path in sorted((out / ".progress").glob("*.json")) if (out / ".progress").is_dir() else []:
        try:
            done += [path.stem] if json.loads(path.read_text()).get("status") == "ok" else []
        except ValueError:  # being replaced at this instant
            continue
    return done
