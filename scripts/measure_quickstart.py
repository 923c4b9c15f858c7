"""What the README says a newcomer's machine spends: the size of each part of the environment, and the time of the
README's first command (the demo job) and, with ``--suite``, of the test suite. Prints one JSON line naming the CPU.

    python scripts/measure_quickstart.py            # sizes and the demo job (about a minute or two)
    python scripts/measure_quickstart.py --suite    # also the whole test suite and its quick part (-m "not slow")

The demo job runs exactly as the README writes it, into a temporary folder; CPU seconds are the children's user
plus system time (what a loaded machine cannot hide), wall seconds what the newcomer waits.
"""
from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

from make_readme_figure import readme_program  # noqa: E402


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.exists() else 0


def environment_sizes() -> dict[str, float]:
    """GB of the virtual environment the tests run in, and of its largest parts."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    parts = {"venv": Path(sys.prefix), "torch": site / "torch", "nvidia (CUDA libraries)": site / "nvidia",
             "triton": site / "triton", "gradio and its web assets": site / "gradio"}
    return {name: round(folder_bytes(path) / 1e9, 2) for name, path in parts.items()}


def timed(command: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="store_true", help="also time the test suite (about 10 minutes)")
    args = parser.parse_args()
    from _common import _cpu_flags, _cpu_name

    report = {"cpu": _cpu_name(), "cpu_flags": _cpu_flags(), "cores": len(__import__("os").sched_getaffinity(0)),
              "sizes_gb": environment_sizes()}
    with tempfile.TemporaryDirectory(prefix="rls-quickstart-") as work:
        report["readme_demo_job"] = timed([sys.executable, *readme_program(), "--out-dir", str(Path(work) / "out")])
    report["readme_demo_job"]["command"] = shlex.join(["python", *readme_program()])
    if args.suite:
        report["test_suite"] = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        report["test_suite_not_slow"] = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                               "-m", "not slow"])
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
