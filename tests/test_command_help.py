"""Every command's ``--help`` comes without importing torch or Lightning (they cost seconds; each is imported
once work starts), and reads cleanly: dashed option names, types as in code, paths never cut at a hyphen."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["invert.py", "train_flow.py", "rls_lightning.cli.weights", "rls_lightning.cli.evaluate",
            "rls_lightning.cli.make_lr", "rls_lightning.cli.experiments", "rls_lightning.cli.inspect_generator",
            "rls_lightning.cli.train_stylegan", "rls_lightning.cli.flow_report", "rls_lightning.cli.app",
            # the old spellings, which run the commands above
            "rls_lightning.weights", "rls_lightning.evaluate", "rls_lightning.make_lr", "rls_lightning.flow.report",
            "rls_lightning.experiments", "rls_lightning.app"]
HEAVY = ["torch", "lightning", "scipy", "matplotlib", "gradio", "nflows", "torchvision"]

# runs the command as `python <file> --help` / `python -m <module> --help` would, then lists the heavy modules
PROBE = """
import contextlib, io, json, runpy, sys
target = sys.argv[1]
sys.argv = [target, "--help"]
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        if target.endswith(".py"):
            runpy.run_path(target, run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as end:
    code = end.code
print(json.dumps({"code": code, "help": out.getvalue(),
                  "imported": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def help_of(command: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, command, *HEAVY], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_neither_torch_nor_lightning(command):
    shown = help_of(command)
    assert shown["code"] in (0, None) and shown["help"].startswith("usage:")
    assert shown["imported"] == []


@pytest.mark.parametrize("command", ["invert.py", "train_flow.py", "rls_lightning.cli.train_stylegan"])
def test_help_reads_cleanly(command):
    text = help_of(command)["help"]
    assert "--print-config" in text and "--print_config" not in text
    assert "<class" not in text and "type: Path" in text
    lines = text.splitlines()
    assert not any(line.rstrip().endswith("-") and not line.strip().startswith("-") for line in lines), \
        [line for line in lines if line.rstrip().endswith("-")]
    assert str(ROOT / "checkpoints" / "demo64") in text.replace("\n", " ")


def test_print_config_writes_a_config_the_command_reads(tmp_path):
    config = subprocess.run([sys.executable, str(ROOT / "train_flow.py"), "--print-config"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert config.returncode == 0, config.stderr
    (tmp_path / "flow.yaml").write_text(config.stdout.replace("blocks: 5", "blocks: 0"))
    checked = subprocess.run([sys.executable, str(ROOT / "train_flow.py"), "--config", str(tmp_path / "flow.yaml")],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert checked.returncode == 2 and checked.stderr.strip().splitlines()[-1].startswith("error: --blocks 0")


def test_the_evaluator_offers_the_channels_the_metrics_know():
    from rls_lightning.metrics import evaluator, fidelity

    assert evaluator.CHANNELS == fidelity.CHANNELS


def test_invert_help_wraps_its_description_and_its_options_at_one_width():
    """``invert.py --help`` wrapped its description at the source's 115 columns and its options at the terminal's
    (two widths in one screen); now every line but the indented examples fits the terminal."""
    for columns in (80, 100):
        result = subprocess.run([sys.executable, str(ROOT / "invert.py"), "--help"], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "COLUMNS": str(columns)})
        assert result.returncode == 0
        lines = result.stdout.splitlines()
        long = [line for line in lines if len(line) > columns and not line.startswith("    python ")]
        assert not long, long[:3]
        prose = [line for line in lines[lines.index("") + 1:] if line and not line.startswith(" ")]
        assert max(len(line) for line in prose) > columns - 15  # paragraphs fill the width, not one word a line
