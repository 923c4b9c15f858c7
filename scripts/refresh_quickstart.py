"""Re-run ``examples/quickstart.ipynb`` and save its outputs into it, made by today's code and default settings.

    .venv/bin/python scripts/refresh_quickstart.py                 # full: the paper's 200 + 50 steps, ~150 CPU s
    .venv/bin/python scripts/refresh_quickstart.py --mode quick    # 4 + 2 steps, ~85 CPU s (outputs rougher)
    .venv/bin/python scripts/refresh_quickstart.py --output /tmp/q.ipynb   # leave the notebook as it is

The notebook is executed with nbclient as ``tests/test_quickstart_notebook.py`` executes it (kernel ``python3``,
working directory ``examples/``, ``RLS_QUICKSTART`` set to the mode), from cleared outputs. Only a run that finishes
without an error is written. ``metadata["rls_lightning"]`` then records the mode, the date, the CPU, the run time
(wall clock, and the kernel's CPU time, which other jobs on the machine do not inflate), the load average at the end
and the fingerprint of the default settings (``build_settings("rls+")``); the test fails when that fingerprint is
no longer today's, i.e. when a default changed and this script was not run again.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
MODES = ("quick", "full")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what decides the CPU's speed here


def settings_fingerprint() -> str:
    """16 hex digits of the default RLS+ settings (the same formula as the test's)."""
    from rls_lightning.api.settings import build_settings
    settings = dataclasses.asdict(build_settings("rls+"))
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpu() -> dict:
    """The CPU's name, its count of usable cores and which of ``FLAGS`` it has (Linux; else what platform says)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": name, "cpu_cores": cores, "cpu_flags": [flag for flag in FLAGS if flag in flags]}


def refresh(mode: str = "full", output: Path = NOTEBOOK, timeout: int | None = None) -> dict:
    """Execute the notebook in ``mode``, store its outputs and metadata in ``output``; return the metadata."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    os.environ["RLS_QUICKSTART"] = mode  # the kernel inherits it
    started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    seconds = time.perf_counter() - started
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel's, once it has exited: the load-free measure
    cpu_seconds = (ended.ru_utime + ended.ru_stime) - (children.ru_utime + children.ru_stime)
    record = {"mode": mode, "date": datetime.date.today().isoformat(), **cpu(), "run_seconds": round(seconds, 1),
              "cpu_seconds": round(cpu_seconds, 1), "load_average": round(os.getloadavg()[0], 1),
              "settings_fingerprint": settings_fingerprint()}
    notebook.metadata["rls_lightning"] = record
    nbformat.write(notebook, output)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default="full", help="RLS_QUICKSTART for the run (default: full)")
    parser.add_argument("--output", type=Path, default=NOTEBOOK, help="where to write (default: the notebook itself)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args(argv)
    try:
        record = refresh(args.mode, args.output, args.timeout)
    except nbclient.exceptions.CellExecutionError as error:
        print(f"the notebook failed, nothing written:\n{error}", file=sys.stderr)
        return 1
    print(f"{args.output}: {record['mode']} run in {record['run_seconds']:.0f} s "
          f"({record['cpu_seconds']:.0f} CPU s, load {record['load_average']}) on {record['cpu']} "
          f"({record['cpu_cores']} cores; {', '.join(record['cpu_flags']) or 'none of ' + ', '.join(FLAGS)}); "
          f"settings {record['settings_fingerprint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
