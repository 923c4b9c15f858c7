"""Peak resident memory of ``--photos`` on a large photograph, against the 4 GB a run with the default
``--photo-memory`` is promised (issue 6); prints one JSON line per measurement.

    python benchmarks/photo_memory.py                                  # 12000x9000, plain and EXIF-rotated
    python benchmarks/photo_memory.py --phases decode prepare restore  # the photo steps alone, faster
    python benchmarks/photo_memory.py --sizes 4000x3000 --orientations 1 --phases run

The photo is made from ``--source`` (default: the demo photo, four faces), enlarged with Pillow's bicubic to the
size asked and saved as JPEG quality 90 (``--format png``: PNG) in ``--work-dir``; with orientation 6 the same
pixels carry the EXIF tag a camera writes for a photo taken upright, so the decoder has to turn 108 megapixels.
Every measurement is a fresh child process (the parent imports nothing heavy first), and its peak comes from the
kernel: ``ru_maxrss`` of ``os.wait4``, the process's whole peak resident set (Python, torch, the models and every
buffer), not an allocator's count. While it runs, the child's resident set is sampled (``/proc/<pid>/status``,
every 50 ms) next to the last line it printed, so ``peak_during`` says after which line the peak fell (the sampled
peak can miss a short-lived spike; ``peak_rss_gb`` cannot). Not a test: a whole run takes minutes.

Phases (``--phases``):

* ``run``: ``invert.py --photos <folder>`` with every default (the demo model, ``--upscale 4``), as a user runs it;
* ``decode``: ``restoration.read_photo_uint8`` alone (the photo as the 8-bit array the pipeline keeps);
* ``prepare``: ``restoration.prepare_photos`` (decode, face detection on tiles, alignment, crops);
* ``restore``: the photo decoded again and its enlargement written a band of rows at a time, as
  ``restore_photos`` does for a photo whose faces were all left as they are.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9

# what each phase runs in its child (argv[1]: the photo folder, argv[2]: an output folder); each prints a line
# before a step, so that the sampled peak can be put against the step it fell in
_PHASES = {
    "decode": """
import sys
from pathlib import Path
print("importing", flush=True)
from rls_lightning.photos.restoration import list_photos, read_photo_uint8
print("decoding", flush=True)
photo, note = read_photo_uint8(list_photos(Path(sys.argv[1]))[0])
print("decoded", photo.shape, note, flush=True)
""",
    "prepare": """
import sys
from pathlib import Path
print("importing", flush=True)
from rls_lightning.photos.restoration import prepare_photos
print("preparing", flush=True)
prepared = prepare_photos(Path(sys.argv[1]), 64, "faces64")
print("prepared", len(prepared.faces), "face(s) to invert", flush=True)
""",
    "restore": """
import sys
from pathlib import Path
print("importing", flush=True)
from rls_lightning.photos.paste import restored_bands
from rls_lightning.photos.planning import choose_upscale
from rls_lightning.photos.png_stream import write_png_bands
from rls_lightning.photos.restoration import list_photos, read_photo_uint8
print("decoding", flush=True)
photo, _ = read_photo_uint8(list_photos(Path(sys.argv[1]))[0])
height, width = photo.shape[:2]
upscale = choose_upscale(width, height, 4, 64, []).upscale
print(f"writing x{upscale}", flush=True)
Path(sys.argv[2]).mkdir(parents=True, exist_ok=True)
write_png_bands(Path(sys.argv[2]) / "restored.png", width * upscale, height * upscale,
                restored_bands(photo, [], upscale))
print("written", flush=True)
""",
}


def make_photo(source: Path, size: tuple[int, int], orientation: int, folder: Path, file_format: str) -> Path:
    """``source`` enlarged to ``size`` (as stored), as JPEG quality 90 or PNG, tagged with the EXIF
    ``orientation``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"photo_{size[0]}x{size[1]}_o{orientation}.{'jpg' if file_format == 'jpeg' else 'png'}"
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    options = {"quality": 90} if file_format == "jpeg" else {"compress_level": 1}
    with Image.open(source) as image:
        image.convert("RGB").resize(size, Image.BICUBIC).save(target, exif=exif, **options)
    return target


def _sample(pid: int, samples: list[tuple[int, str]], last_line: list[str], done: threading.Event) -> None:
    """Append ``(VmRSS bytes, the child's last line)`` every 50 ms until ``done``."""
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((int(line.split()[1]) * 1024, last_line[0]))
                    break
        except (OSError, ValueError):
            return
        done.wait(0.05)


def measure(command: list[str]) -> dict:
    """Run ``command``; its exit status, peak RSS (``ru_maxrss``), seconds, the step of the sampled peak and its
    last lines."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    samples: list[tuple[int, str]] = []
    last_line, lines = ["start"], []
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(child.pid, samples, last_line, done), daemon=True)
    sampler.start()
    for line in child.stdout:
        if line.strip():
            lines.append(line.rstrip())
            last_line[0] = line.strip()[:160]
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    peak_sample = max(samples, default=(0, ""))
    return {"exit": os.waitstatus_to_exitcode(status), "peak_rss_gb": round(usage.ru_maxrss * 1024 / GB, 3),
            "sampled_peak_gb": round(peak_sample[0] / GB, 3), "peak_during": peak_sample[1],
            "seconds": round(seconds, 1), "last_lines": lines[-3:]}


def command_for(phase: str, photos: Path, out: Path) -> list[str]:
    if phase == "run":
        return [sys.executable, str(ROOT / "invert.py"), "--photos", str(photos), "--out-dir", str(out)]
    return [sys.executable, "-c", _PHASES[phase], str(photos), str(out)]


# _common.cpu_name's twin: _common imports torch, and this parent process must not (it would count in no child,
# but it would cost every run its import time and memory)
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "demo" / "photos" / "group.png",
                        help="the photograph to enlarge (default: the demo photo)")
    parser.add_argument("--sizes", nargs="+", default=["12000x9000"], help="WIDTHxHEIGHT as stored in the file")
    parser.add_argument("--orientations", nargs="+", type=int, default=[1, 6],
                        help="EXIF orientations to tag the photo with (1: none; 6: turned 90 degrees)")
    parser.add_argument("--phases", nargs="+", default=["run"], choices=["run", *_PHASES])
    parser.add_argument("--format", choices=["jpeg", "png"], default="jpeg", help="the photo's file format")
    parser.add_argument("--budget-gb", type=float, default=4.0, help="the peak promised (default 4 GB)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "photo-memory")
    args = parser.parse_args(argv)
    for text in args.sizes:
        size = tuple(int(v) for v in text.lower().split("x"))
        for orientation in args.orientations:
            folder = args.work_dir / f"photos_{text}_o{orientation}"
            shutil.rmtree(folder, ignore_errors=True)
            make_photo(args.source, size, orientation, folder, args.format)
            for phase in args.phases:
                out = args.work_dir / f"out_{text}_o{orientation}_{phase}"
                shutil.rmtree(out, ignore_errors=True)
                result = measure(command_for(phase, folder, out))
                print(json.dumps({"benchmark": "photo_memory", "device": _cpu_name(), "cpu_threads": os.cpu_count(),
                                  "commit": _commit(), "date": time.strftime("%Y-%m-%d"), "photo": text,
                                  "format": args.format, "orientation": orientation, "phase": phase, **result,
                                  "budget_gb": args.budget_gb,
                                  "under_budget": result["exit"] == 0 and result["peak_rss_gb"] < args.budget_gb}),
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
