"""``results.csv`` of a ``--photos`` run: one row per face (restored, flagged or left as it was, each saying why),
one per photo without a face, one per file that could not be used.

Face rows come from the job's own row of that face (``.progress/<stem>.json``: status, LR consistency, steps,
seconds) and from the photo's plan (``restoration.PhotoPlan``); their ``status``:

* ``ok``: restored and pasted into ``<photo>_restored.png``;
* ``flagged``: restored, but the result does not reproduce its own input (``lr_l1_final`` above
  ``lr_l1_limit``), so the plain enlargement was kept; ``<photo>_face<k>.png`` is there to look at;
* ``kept``: not inverted: the generator cannot add resolution to a face this large (the note says so);
* the job's other statuses (``diverged``, ``incomplete``) and ``skipped`` as for ``--lr-dir``.
"""
from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write_path
from ..lr_images import Rejected
from ..names import csv_text
from .restoration import PreparedPhotos, reproduces_input

LEADING = ["file", "photo", "face", "score", "box", "width", "lr_size", "status", "factor", "upscale",
           "lr_l1_plain", "lr_l1_final", "lr_l1_limit"]


def photo_rows(prepared: PreparedPhotos, out_dir: Path, rejected: list[Rejected] = ()) -> list[dict]:
    """The rows of ``results.csv``, photo by photo, face by face."""
    rows = []
    for path, plan in prepared.plans.items():
        for face in plan.faces:
            row = {**face.row(), "file": path.name, "upscale": plan.upscale}
            if face.kept is not None:
                row.update(status="kept", note=face.kept)
                rows.append(row)
                continue
            record = prepared.record(out_dir, face.stem) or {}
            row.update({k: v for k, v in record.items() if k not in ("files", "fingerprint")})
            row.update(face.row())  # the plan's values win over an older run's
            row["status"] = record.get("status", "missing")
            if reproduces_input(record) is False:
                row["status"] = "flagged"
                row["note"] = "; ".join(filter(None, [
                    f"not pasted: the result misses its own input by {float(record['lr_l1_final']):.4f} mean "
                    f"|D(x) - y| (limit {row['lr_l1_limit']:g}; the plain enlargement: {face.lr_l1_plain:.4f}), so it "
                    f"would change the photo; see {face.stem}.png", record.get("note")]))
            elif "status" not in record:
                row["note"] = "no result (see the lines printed by the run)"
            rows.append(row)
    rows += [{"file": r.path.name, "status": "skipped", "note": r.reason} for r in rejected]
    return rows


def write_photo_results(prepared: PreparedPhotos, out_dir: Path, rejected: list[Rejected] = ()) -> Path:
    """``out_dir/results.csv`` for a ``--photos`` run (atomically): the columns ``LEADING``, then the job's own
    (``inversion.job.RESULT_COLUMNS``), ``note`` last."""
    from ..inversion.job import RESULT_COLUMNS

    columns = LEADING + [c for c in RESULT_COLUMNS if c not in LEADING and c != "note"] + ["note"]
    path = out_dir / "results.csv"
    with atomic_write_path(path) as tmp:
        tmp.write_text(csv_text(photo_rows(prepared, out_dir, rejected), columns))
    return path
