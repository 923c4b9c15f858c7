"""Hostile cases of ``invert.py`` (issues 16, 20): names that collide, a user's files in the output folder, options
out of range, a learning rate that makes the optimisation diverge, odd folders, a second run on a busy folder,
--hr-dir files that cannot be shown."""
from __future__ import annotations

import csv
import os
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from support.hostile_corpus import Case, Outcome
from support.inversion_fixtures import known_latents, toy_flow, toy_generator
from support.png_writers import write_png_bomb

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.folder_lock import FolderLock
from rls_lightning.image_io import to_uint8

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--steps", "3", "--refine-steps", "2"]


@functools.lru_cache(maxsize=1)
def toy_models() -> tuple[Path, Path]:
    """The toy generator (32 px) and its flow, written once per test session."""
    from rls_lightning.flow.checkpoint import save_flow
    from rls_lightning.stylegan import save_generator

    folder = Path(tempfile.mkdtemp(prefix="corpus-models-"))
    G = toy_generator()
    save_generator(G, folder / "G.pt")
    save_flow(toy_flow(G), folder / "flow.pt")
    return folder / "G.pt", folder / "flow.pt"


@functools.lru_cache(maxsize=1)
def lr_face() -> np.ndarray:
    """An 8x8 LR face of the toy generator (x4)."""
    G = toy_generator()
    with torch.no_grad():
        lr = downsample_bicubic(G.synthesis(known_latents(G, 1, seed=11)), 4).clamp(-1, 1)
    return to_uint8(lr[0])


def lr_folder(folder: Path, names=("face.png",), name: str = "lr") -> Path:
    lr_dir = folder / name
    lr_dir.mkdir(parents=True, exist_ok=True)
    for file_name in names:
        Image.fromarray(lr_face()).save(lr_dir / file_name)
    return lr_dir


def invert_args(folder: Path, *extra: str, names=("face.png",), out: str | None = "out") -> list[str]:
    generator, flow = toy_models()
    args = ["--generator", str(generator), "--flow", str(flow), "--lr-dir", str(lr_folder(folder, names)), *QUICK]
    return args + (["--out-dir", str(folder / out)] if out else []) + list(extra)


def rows(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def option_case(option: str, value: str, culprit: str | None = None, *, beside: tuple[str, ...] = ()) -> Case:
    """An out-of-range option (or one that ``beside`` options rule out): exit 2, one line naming option and value,
    and no output folder created."""
    def setup(folder: Path) -> list[str]:
        return invert_args(folder, *beside, option, value)

    def check(folder: Path, outcome: Outcome) -> None:
        assert not (folder / "out").exists(), "nothing may be written before the options are checked"

    return Case(f"invert{''.join(beside)}{option}={value}", "invert", setup, culprit=culprit or f"{option} {value}",
                check=check)


# ---------------------------------------------------------------------- collisions and the user's files

def _collisions_setup(folder: Path) -> list[str]:
    return invert_args(folder, names=("face.png", "face_smile.png", "face_rls.png", "overview.png", "FACE_RLS.PNG"))


def _collisions_check(folder: Path, outcome: Outcome) -> None:
    out, table = folder / "out", rows(folder / "out")
    assert {n for n, r in table.items() if r["status"] == "ok"} == {"face.png", "face_smile.png"}
    assert "would overwrite an output of face" in table["face_rls.png"]["note"]
    assert "the folder's summary file" in table["overview.png"]["note"]
    assert "would overwrite an output of face" in table["FACE_RLS.PNG"]["note"]  # case-insensitive file systems
    assert files(out) >= {"face.png", "face_rls.png", "face.pt", "face_smile.png", "face_smile_rls.png",
                          "face_smile.pt", "overview.png", "results.csv"}
    assert not files(out) & {"face_rls_rls.png", "overview_rls.png", "overview.pt"}


def _users_files_setup(folder: Path) -> list[str]:
    out = folder / "out"
    out.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(out / "face_summer.png")  # the user's, not ours
    Image.fromarray(np.full((32, 32, 3), 9, np.uint8)).save(out / "other.png")  # an input stem's result name
    return invert_args(folder, names=("face.png", "other.png"))


def _users_files_check(folder: Path, outcome: Outcome) -> None:
    table = rows(folder / "out")
    assert table["face.png"]["status"] == "ok"
    assert table["other.png"]["status"] == "skipped"
    assert "other.png exists and was not written by this tool" in table["other.png"]["note"]


def _hr_dir_setup(folder: Path) -> list[str]:
    hr = folder / "hr"
    hr.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(hr / "face.png")
    return invert_args(folder, "--hr-dir", str(hr), "--out-dir", str(hr), out=None)


HR_FACE = np.random.default_rng(20).integers(0, 256, (32, 32, 3), dtype=np.uint8)  # the one usable ground truth
BAD_HR = {"a": "not an image file", "b": "refused as a possible decompression bomb",
          "c": "unreadable image", "d": "ambiguous, the same name stem"}


def _bad_hr_setup(folder: Path) -> list[str]:
    """Five LR faces; the HR of a is text named .png, of b a bomb, of c cut in half; d has two HR files; e a good one."""
    hr = folder / "hr"
    hr.mkdir()
    (hr / "a.png").write_text("a text file named like an image")
    write_png_bomb(hr / "b.png")
    Image.fromarray(HR_FACE).save(hr / "c.png")
    (hr / "c.png").write_bytes((hr / "c.png").read_bytes()[:200])
    Image.fromarray(HR_FACE).save(hr / "d.png")
    Image.fromarray(HR_FACE).save(hr / "d.jpg")
    Image.fromarray(HR_FACE).save(hr / "e.png")
    return invert_args(folder, "--hr-dir", str(hr), names=[f"{stem}.png" for stem in "abcde"])


def _bad_hr_check(folder: Path, outcome: Outcome) -> None:
    hr, lines = folder / "hr", outcome.stderr.splitlines()
    table = rows(folder / "out")
    assert {name: row["status"] for name, row in table.items()} == {f"{s}.png": "ok" for s in "abcde"}
    start = next(i for i, line in enumerate(lines) if "image(s) to super-resolve" in line)
    for stem, reason in BAD_HR.items():
        named = [i for i, line in enumerate(lines) if str(hr / f"{stem}.png") in line]
        assert len(named) == 1 and reason in lines[named[0]], (stem, lines)
        assert named[0] < start  # said before the optimisation
        named_in_note = "d.jpg and d.png" if stem == "d" else f"{stem}.png"  # both files of the ambiguous stem
        assert f"ground truth {named_in_note} not shown: {reason}" in table[f"{stem}.png"]["note"], table
        assert stem != "d" or str(hr / "d.jpg") in lines[named[0]]
    assert "ground truth" not in table["e.png"]["note"] and str(hr) not in "".join(r["note"] for r in table.values())
    grid = np.asarray(Image.open(folder / "out" / "overview.png"))
    # a row per image, the ground-truth column kept: 32 px results shown 4x (128 px tiles, 2 px apart) under a
    # 24 px band of captions
    assert grid.shape == (24 + 5 * 130 - 2, 4 * 130 - 2, 3)

    def x4(array):
        return array.repeat(4, axis=0).repeat(4, axis=1)

    for row, stem in enumerate("abcde"):
        top = 24 + row * 130
        ground_truth = grid[top:top + 128, 3 * 130:3 * 130 + 128]
        result = grid[top:top + 128, 2 * 130:2 * 130 + 128]
        np.testing.assert_array_equal(result, x4(np.asarray(Image.open(folder / "out" / f"{stem}.png"))))
        np.testing.assert_array_equal(ground_truth, x4(HR_FACE) if stem == "e" else np.zeros_like(x4(HR_FACE)))


def _diverged_check(folder: Path, outcome: Outcome) -> None:
    out = folder / "out"
    row = rows(out)["face.png"]
    assert row["status"] == "diverged", row
    assert "RLS diverged: non-finite" in row["note"] and "restarted at" in row["note"]
    assert row["lr_l1_final"] == ""
    assert not files(out) & {"face.png", "face_rls.png", "face.pt"}  # no NaN ever saved


def _diverged_recovers_setup(folder: Path) -> list[str]:
    return invert_args(folder, "--refine-lr", "1e30")


def _diverged_recovers_check(folder: Path, outcome: Outcome) -> None:
    row = rows(folder / "out")["face.png"]
    assert row["status"] in ("ok", "diverged")
    if row["status"] == "ok":
        assert "RLS+ diverged at lr 1e+30, restarted" in row["note"] and np.isfinite(float(row["lr_l1_final"]))


def _busy_setup(folder: Path) -> list[str]:
    _busy_setup.lock = FolderLock(folder / "out").acquire()  # another run holds the folder
    return invert_args(folder)


def _busy_check(folder: Path, outcome: Outcome) -> None:
    _busy_setup.lock.release()
    assert files(folder / "out") == {".lock"}


def _stale_temporary_setup(folder: Path) -> list[str]:
    args = invert_args(folder)
    (folder / "out").mkdir()
    (folder / "out" / ".overview.png.tmp-4194303-0123456789ab").write_bytes(b"half a PNG")
    (folder / "out" / ".notes.tmp").write_text("the user's hidden file")
    return args


def _stale_temporary_check(folder: Path, outcome: Outcome) -> None:
    assert not (folder / "out" / ".overview.png.tmp-4194303-0123456789ab").exists()
    assert (folder / "out" / ".notes.tmp").exists()


def _from_elsewhere_setup(folder: Path) -> list[str]:
    """The demo model by default, from a working directory that is not the repository."""
    lr_dir = folder / "lr"
    lr_dir.mkdir()
    shutil.copy(ROOT / "data" / "demo" / "lr8x" / "demo00.png", lr_dir / "demo00.png")
    (folder / "elsewhere").mkdir()
    return ["--lr-dir", str(lr_dir), "--out-dir", str(folder / "out"), "--steps", "1", "--refine-steps", "1"]


def _dot_setup(folder: Path) -> list[str]:
    generator, flow = toy_models()
    lr_folder(folder)
    return ["--generator", str(generator), "--flow", str(flow), "--lr-dir", ".", *QUICK]


def _out_is_file_setup(folder: Path) -> list[str]:
    (folder / "out").write_text("a file")
    return invert_args(folder)


def _empty_setup(folder: Path) -> list[str]:
    args = invert_args(folder, names=())
    (folder / "lr" / "notes.txt").write_text("no image here")
    return args


def _generator_folder_setup(folder: Path) -> list[str]:
    (folder / "models").mkdir()
    _, flow = toy_models()
    return ["--generator", str(folder / "models"), "--flow", str(flow), "--lr-dir", str(lr_folder(folder))]


def _pasteable_flow_command(folder: Path, outcome: Outcome) -> None:
    """The suggested command names the real generator, quoted for a shell: pasted, it parses to these words."""
    import shlex

    suggested = outcome.error_lines[0].split("train one with: ", 1)[1].rstrip(")")
    assert shlex.split(suggested) == ["python", "train_flow.py", "--generator", str(toy_models()[0])], suggested


CASES = [
    Case("invert-colliding-input-names", "invert", _collisions_setup, code=0, check=_collisions_check),
    Case("invert-users-files-in-out-dir", "invert", _users_files_setup, code=0, check=_users_files_check),
    Case("invert-out-dir-is-hr-dir", "invert", _hr_dir_setup, culprit="must differ from --hr-dir"),
    Case("invert-unusable-hr-files", "invert", _bad_hr_setup, code=0, check=_bad_hr_check),
    Case("invert-out-dir-is-lr-dir", "invert", lambda d: invert_args(d, "--out-dir", str(d / "lr"), out=None),
         culprit="must differ from --lr-dir"),
    Case("invert-lr-1e9-diverges", "invert", lambda d: invert_args(d, "--lr", "1e9", "--keep-best", "false"), code=0,
         check=_diverged_check),
    Case("invert-refine-lr-1e30", "invert", _diverged_recovers_setup, code=0, check=_diverged_recovers_check),
    Case("invert-busy-out-dir", "invert", _busy_setup, culprit="in use by another run", check=_busy_check),
    Case("invert-stale-temporary-file", "invert", _stale_temporary_setup, code=0, check=_stale_temporary_check,
         mutable=("out/.overview.png.tmp-4194303-0123456789ab",)),
    Case("invert-demo-defaults-from-another-folder", "invert", _from_elsewhere_setup, code=0, cwd="elsewhere",
         check=lambda d, o: rows(d / "out")["demo00.png"]["status"] == "ok" or rows(d / "out")),
    Case("invert-lr-dir-dot", "invert", _dot_setup, code=0, cwd="lr",
         check=lambda d, o: (d / "lr_rls+" / "face.png").is_file() or (_ for _ in ()).throw(AssertionError(o))),
    Case("invert-out-dir-is-a-file", "invert", _out_is_file_setup, culprit="exists and is not a folder"),
    Case("invert-lr-dir-missing", "invert", lambda d: invert_args(d, "--lr-dir", str(d / "nope")),
         culprit="nope: no such folder"),
    Case("invert-lr-dir-is-a-file", "invert", lambda d: [*invert_args(d), "--lr-dir", str(toy_models()[0])],
         culprit="G.pt: not a folder"),
    Case("invert-no-usable-image", "invert", _empty_setup, culprit="no usable image (1 file(s) skipped"),
    Case("invert-generator-is-a-folder", "invert", _generator_folder_setup, culprit="models: a folder, not a file"),
    Case("invert-generator-missing", "invert", lambda d: [*invert_args(d), "--generator", str(d / "G.pkl")],
         culprit="G.pkl: no such file"),
    Case("invert-no-flow-for-own-generator", "invert",
         lambda d: ["--generator", str(toy_models()[0]), "--lr-dir", str(lr_folder(d))],
         culprit="needs a flow prior", check=_pasteable_flow_command),
    option_case("--steps", "-1"),
    option_case("--steps", "0"),
    option_case("--steps", "-5"),
    option_case("--refine-steps", "-1"),
    option_case("--batch-size", "0"),
    option_case("--batch-size", "-1"),
    option_case("--num-samples", "0"),
    option_case("--precision", "garbage"),
    option_case("--precision", "16-mixed", culprit="float16 autocast needs a GPU"),
    option_case("--precision", "64-true", culprit="--precision 64-true: MPS has no float64",
                beside=("--accelerator", "mps")),
    option_case("--devices", "0"),
    option_case("--num-nodes", "0"),
    option_case("--lr", "-1"),
    option_case("--lr", "nan", culprit="--lr 'nan': must be a finite number"),
    option_case("--refine-lr", "0"),
    option_case("--lambda-w", "-0.1"),
    option_case("--radius-scale", "inf", culprit="--radius-scale 'inf': must be a finite number"),
    option_case("--accelerator", "tpu"),
    option_case("--accelerator", "gpu", culprit="no CUDA GPU is visible") if not torch.cuda.is_available()
    else option_case("--devices", "99"),
    option_case("--schedule", "cosine"),
    option_case("--cross", "l2"),
    option_case("--preset", "magic"),
    option_case("--trainable-noise", "-2"),
    Case("invert--trainable-noise=99", "invert", lambda d: invert_args(d, "--trainable-noise", "99"),
         culprit="--trainable-noise 99: must be an integer from 0 to"),
    Case("invert-no-anchor-without-refinement", "invert",
         lambda d: invert_args(d, "--preset", "no-anchor", "--refine-steps", "0"), culprit="needs RLS+ steps"),
]


# ---------------------------------------------------------------------- issue 28: planted records, odd names

VICTIMS = ("victim.txt", "victim2.txt", "victim3.txt", "victim4.txt")
RERUN = ["--steps", "4"]  # other settings than the first run: every image is redone


def _first_run(folder: Path, names=("face.png", "other.png")) -> list[str]:
    """Run once (as a user did earlier), plant the victims beside the output folder; return the rerun's argv."""
    from support.hostile_corpus import run_command

    args = invert_args(folder, names=names)
    assert run_command("invert", args).code == 0
    for name in VICTIMS:
        (folder / name).write_text(f"{name}: someone's file outside --out-dir")
    return args + RERUN


def _record(folder: Path, stem: str) -> Path:
    return folder / "out" / ".progress" / f"{stem}.json"


def _planted_paths_setup(folder: Path) -> list[str]:
    """Someone who can write the (shared) output folder lists files outside it in a record."""
    import json

    args = _first_run(folder)
    record = json.loads(_record(folder, "face").read_text())
    record["files"] += [str(folder / "victim.txt"), "../victim2.txt", "../../" + folder.name + "/victim3.txt",
                        "face_s1.png/../../victim4.txt"]
    _record(folder, "face").write_text(json.dumps(record))
    return args


def _planted_paths_check(folder: Path, outcome: Outcome) -> None:
    table = rows(folder / "out")
    assert table["other.png"]["status"] == "ok"  # the other image is redone
    assert table["face.png"]["status"] == "skipped" and "exists and was not written by this tool" in \
        table["face.png"]["note"], table  # its files are no longer known to be ours: left alone
    notes = [line for line in outcome.stderr.splitlines() if "progress record ignored" in line]
    assert len(notes) == 1 and str(_record(folder, "face")) in notes[0] and "victim.txt" in notes[0], outcome.stderr
    assert all((folder / name).is_file() for name in VICTIMS)  # (their contents: run_case's checksums)


def _planted_links_setup(folder: Path) -> list[str]:
    """The record lists only names of ours, but they are links to files outside the folder."""
    import json

    args = _first_run(folder)
    out = folder / "out"
    record = json.loads(_record(folder, "face").read_text())
    (out / "face.png").unlink()
    (out / "face.png").symlink_to(folder / "victim.txt")  # replaced by the rerun's result
    (out / "face_s3.png").symlink_to(folder / "victim2.txt")  # deleted by the rerun as an old sample file
    (out / "face_std.png").symlink_to("../victim3.txt")
    record["files"] += ["face_s3.png", "face_std.png"]
    _record(folder, "face").write_text(json.dumps(record))
    return args


def _planted_links_check(folder: Path, outcome: Outcome) -> None:
    out = folder / "out"
    assert {row["status"] for row in rows(out).values()} == {"ok"}
    assert not (out / "face.png").is_symlink() and (out / "face.png").is_file()
    assert not os.path.lexists(out / "face_s3.png") and not os.path.lexists(out / "face_std.png")
    assert all((folder / name).is_file() for name in VICTIMS)


def _progress_link_setup(folder: Path) -> list[str]:
    args = _first_run(folder, names=("face.png",))
    elsewhere = folder / "elsewhere"
    (folder / "out" / ".progress").rename(elsewhere)
    (folder / "out" / ".progress").symlink_to(elsewhere)
    return args


_FIRST_RUN_FILES = tuple(f"out/{name}" for name in ("other.png", "other_rls.png", "other.pt", ".progress/other.json",
                                                     "results.csv", "overview.png"))
_FACE_FILES = tuple(f"out/{name}" for name in ("face.png", "face_rls.png", "face.pt", ".progress/face.json"))
LONG_STEM = "n" * 240  # a name ext4 accepts, with room for its outputs
TOO_LONG_STEM = "t" * 250  # its anchor <stem>_rls.png would be 258 bytes
ODD_NAMES = (f"{LONG_STEM}.png", f"{TOO_LONG_STEM}.png", os.fsdecode(b"caf\xe9 \xff.png"), "new\nline.png",
             "tab\tand\x1b[31mred.png", "[bold]markup.png", "zzz_normal.png")


def _odd_names_check(folder: Path, outcome: Outcome) -> None:
    out = folder / "out"
    text = (out / "results.csv").read_bytes().decode("utf-8")  # strictly UTF-8, one row per line
    assert len(text.splitlines()) == 1 + len(ODD_NAMES), text
    table = rows(out)
    shown = {f"{LONG_STEM}.png", f"{TOO_LONG_STEM}.png", "caf\\xe9 \\xff.png", "new\\nline.png",
             "tab\\tand\\x1b[31mred.png", "[bold]markup.png", "zzz_normal.png"}
    assert set(table) == shown, sorted(table)
    assert {name for name, row in table.items() if row["status"] != "ok"} == {f"{TOO_LONG_STEM}.png"}
    assert "258 bytes long, more than the 255" in table[f"{TOO_LONG_STEM}.png"]["note"]
    written = files(out)
    for name in ODD_NAMES:
        stem = name[:-4]
        assert (stem != TOO_LONG_STEM) == (f"{stem}.png" in written) == (f"{stem}_rls.png" in written), stem
    skipped = [line for line in outcome.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and TOO_LONG_STEM in skipped[0], outcome.stderr
    assert "\udce9" not in outcome.stderr and "\x1b" not in outcome.stderr


CASES += [
    Case("invert-planted-record-paths", "invert", _planted_paths_setup, code=0, check=_planted_paths_check,
         mutable=_FIRST_RUN_FILES),
    Case("invert-planted-record-links", "invert", _planted_links_setup, code=0, check=_planted_links_check,
         mutable=_FIRST_RUN_FILES + _FACE_FILES),
    Case("invert-progress-folder-is-a-link", "invert", _progress_link_setup,
         culprit="is a link to somewhere else, not this tool's progress folder"),
    Case("invert-odd-names", "invert", lambda d: invert_args(d, names=ODD_NAMES), code=0, check=_odd_names_check),
]


# ---------------------------------------------------------------------- what a planted or shared folder holds

def _lock_link_setup(folder: Path) -> list[str]:
    (folder / "victim.txt").write_text("the user's file, which opening the lock through the link would empty")
    (folder / "out").mkdir()
    (folder / "out" / ".lock").symlink_to(folder / "victim.txt")
    return invert_args(folder)


def _lock_hard_link_setup(folder: Path) -> list[str]:
    """A lock file with another name: planted to have it emptied, or from a folder copied with ``cp -al``."""
    (folder / "victim.txt").write_text("the user's file, which opening the lock by its other name would empty")
    (folder / "out").mkdir()
    os.link(folder / "victim.txt", folder / "out" / ".lock")
    return invert_args(folder)


def _lock_made_anew(folder: Path, outcome: Outcome) -> None:
    assert (folder / "victim.txt").stat().st_nlink == 1 and (folder / "out" / ".lock").stat().st_nlink == 1
    _face_done(folder, outcome)


def _users_summary_setup(folder: Path) -> list[str]:
    (folder / "out").mkdir()
    (folder / "out" / "results.csv").write_text("the user's own table\n")
    return invert_args(folder)


FORMULA_NAMES = ("=HYPERLINK(1).png", "@SUM(1).png", "+1.png", "-1.png")


def _formula_names_check(folder: Path, outcome: Outcome) -> None:
    table = rows(folder / "out")  # a spreadsheet shows a cell that starts with ' as the text after it
    assert set(table) == {f"'{name}" for name in FORMULA_NAMES}, sorted(table)
    assert all(row["status"] == "ok" for row in table.values())
    assert {f"{name[:-4]}_rls.png" for name in FORMULA_NAMES} <= files(folder / "out")


HUGE_PID_TEMPORARY = ".face.png.tmp-99999999999999999999-0123456789ab"


def _huge_pid_setup(folder: Path) -> list[str]:
    (folder / "out").mkdir()
    (folder / "out" / HUGE_PID_TEMPORARY).write_bytes(b"not ours to judge: no process has this number")
    return invert_args(folder)


def _face_done(folder: Path, outcome: Outcome) -> None:
    assert rows(folder / "out")["face.png"]["status"] == "ok"


def _temporary_kept(folder: Path, outcome: Outcome) -> None:
    assert (folder / "out" / HUGE_PID_TEMPORARY).is_file() and rows(folder / "out")["face.png"]["status"] == "ok"


def _earlier_versions_results_setup(folder: Path) -> list[str]:
    (folder / "out").mkdir()  # an earlier version's run that refused its only image: results.csv, no .progress
    (folder / "out" / "results.csv").write_text("file,status,factor,preset\nold.png,skipped,,\n")
    return invert_args(folder)


CASES += [
    Case("invert-results-of-an-earlier-version", "invert", _earlier_versions_results_setup, code=0,
         mutable=("out/results.csv",), check=_face_done),
    Case("invert-lock-is-a-link", "invert", _lock_link_setup, culprit=".lock: is a link, not this tool's lock file"),
    Case("invert-lock-has-another-name", "invert", _lock_hard_link_setup, code=0, mutable=("out/.lock",),
         check=_lock_made_anew),
    Case("invert-users-results-csv", "invert", _users_summary_setup,
         culprit="results.csv: exists and was not written by this tool"),
    Case("invert-formula-names", "invert", lambda d: invert_args(d, names=FORMULA_NAMES), code=0,
         check=_formula_names_check),
    Case("invert-temporary-of-no-process", "invert", _huge_pid_setup, code=0, check=_temporary_kept),
]
