"""Peak memory of ``invert.py --photos`` on large photographs, measured as a user runs it (issue 20 item 5).

    python scripts/measure_photo_memory.py --source some_photo.jpg
    python scripts/measure_photo_memory.py --source some_photo.jpg --sizes 4000x3000 --work-dir /tmp/photo-memory

Each size is made from ``--source`` (a real photograph, resized with Pillow's bicubic and saved as JPEG quality
90 in ``--work-dir``; nothing is kept in the repository), then ``invert.py --photos`` runs on it in a child process
with every default (``--upscale 4``, the demo model); the child's peak resident memory comes from ``wait4``'s
``ru_maxrss``. Faces of a photo enlarged this much are far larger than the demo model draws, so no face is
inverted: what is measured is what grows with the photo (decoding, detection, the restored photo), not the
inversion. Prints one Markdown row per size: exit status, peak RSS, seconds, the restored photo's size, and the
command's last line.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_photo(source: Path, size: tuple[int, int], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"photo_{size[0]}x{size[1]}.jpg"
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.BICUBIC).save(target, quality=90)
    return target


def measure(photos: Path, out: Path, extra: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(ROOT / "invert.py"), "--photos", str(photos), "--out-dir", str(out),
                              *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    restored = sorted(out.glob("*_restored.png")) if out.is_dir() else []
    size = None
    if restored:
        with Image.open(restored[0]) as image:
            size = image.size
    lines = [line for line in output.splitlines() if line.strip()]
    return {"exit": os.waitstatus_to_exitcode(status), "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,
            "seconds": seconds, "restored": size, "last": lines[-1] if lines else "", "output": output}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="a real photograph to enlarge")
    parser.add_argument("--sizes", nargs="+", default=["12000x9000", "4000x3000"])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/photo-memory"))
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more invert.py options")
    args = parser.parse_args(argv)
    print("| photo | exit | peak RSS | seconds | restored | last line |\n|---|---|---|---|---|---|")
    for text in args.sizes:
        size = tuple(int(v) for v in text.lower().split("x"))
        folder = args.work_dir / f"photos_{text}"
        shutil.rmtree(folder, ignore_errors=True)
        make_photo(args.source, size, folder)
        result = measure(folder, args.work_dir / f"out_{text}", args.extra)
        restored = "x".join(map(str, result["restored"])) if result["restored"] else "-"
        print(f"| {text} | {result['exit']} | {result['peak_rss_gb']:.2f} GB | {result['seconds']:.0f} | {restored} "
              f"| {result['last'][:160]} |", flush=True)
        (args.work_dir / f"log_{text}.txt").write_text(result["output"])


if __name__ == "__main__":
    main()
