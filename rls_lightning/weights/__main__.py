"""Prepare a machine's pretrained files ahead of time.

    python -m rls_lightning.weights list              what the registry knows, and what is here
    python -m rls_lightning.weights fetch metrics     download (once, verified) every file of the evaluation
    python -m rls_lightning.weights fetch ffhq-1024   ... or named files (generators, metric networks)
    python -m rls_lightning.weights verify            re-check every file present (hash, size, pinned sha256)

Files go to --weights-dir, else the torch hub cache ($TORCH_HOME/hub/checkpoints, shared with torchvision, lpips
and facenet-pytorch). Environment: RLS_OFFLINE=1 never touches the network (same as --offline);
RLS_WEIGHTS_MIRROR=<base URL> downloads <base URL>/<file name> instead of the upstream URLs (a cluster without
internet: copy the files into one folder on a machine with internet, serve it, or use a file:// URL).

Every download is bounded (a server never fills the disk nor holds the command):
  bytes     a file of known size (list: size) may bring exactly that many; one of unknown size at most
            1000 MB for a 1024 px generator, 800 MB at 512 px, 600 MB at 256 px, 1000 MB for a metric network
            (the largest real files: ffhq.pkl 382 MB, vgg16 553 MB). A server announcing more is refused
            before reading; one sending more is cut off at the first byte over.
  seconds   RLS_DOWNLOAD_TIMEOUT=<seconds> (default 60) without a byte gives up on a stalled connection;
            RLS_DOWNLOAD_DEADLINE=<seconds> for the whole download (default: the larger of 600 s and the byte
            limit at 100 kB/s, e.g. 3816 s for ffhq-1024). Both must be positive, finite numbers.
Whatever stops a download (these limits, an error, Ctrl-C, SIGTERM: exit 143) removes its partial file; the
partial files of processes killed outright are removed by the next fetch.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli.errors import UsageError, check_input_dir, guarded
from . import registry
from .registry import PretrainedFile, UnknownName
from .flows import FLOWS_FOLDER, cached_flows
from .store import WeightsUnavailable, ensure, search_folders, status
from .verification import VerificationFailed

GROUPS = {"metrics": "metric", "generators": "generator"}


def _size(entry: PretrainedFile) -> str:
    return f"{entry.size / 1e6:.1f} MB" if entry.size else "?"


def _selected(names: list[str]) -> list[PretrainedFile]:
    chosen: list[PretrainedFile] = []
    for name in names:
        if name == "all":
            group = list(registry.FILES)
        elif name in GROUPS:
            group = [entry for entry in registry.FILES if entry.kind == GROUPS[name]]
        else:
            try:
                group = [registry.lookup(name)]
            except UnknownName as err:
                raise UsageError(f"{err} (or a group: all, {', '.join(GROUPS)})") from None
        chosen += [entry for entry in group if entry not in chosen]
    return chosen


def list_files(weights_dir: Path | None, as_json: bool) -> int:
    rows = []
    for entry in registry.FILES:
        state, path, _ = status(entry, weights_dir)
        rows.append({"name": entry.name, "kind": entry.kind, "file": entry.filename, "size_bytes": entry.size,
                     "resolution": entry.resolution, "verification": entry.verification, "state": state,
                     "path": str(path) if path else None, "urls": list(entry.urls), "licence": entry.licence,
                     "used_by": entry.used_by, "known": entry.known})
    flows = cached_flows(weights_dir)
    if as_json:
        print(json.dumps(rows + [{"name": f"flow:{flow['fingerprint'][:16]}", "kind": "flow", "state": "ok", **flow}
                                 for flow in flows], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    # Without a terminal (a pipe, a file) rich would wrap the table to 80 columns: give it the room it needs.
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 1000)

    table = Table(title=f"pretrained files (searched: {', '.join(str(f) for f in search_folders(weights_dir))})")
    for column in ("name", "what", "size", "verified by", "here"):
        table.add_column(column, no_wrap=column != "what")
    for entry, row in zip(registry.FILES, rows):
        what = f"{entry.resolution} px: {entry.description}" if entry.kind == "generator" else entry.used_by
        here = "yes" if row["state"] == "ok" else ("no" if row["state"] == "missing" else "BAD")
        verified = "sha256" if entry.sha256 else (f"prefix {entry.hash_prefix}" if entry.hash_prefix else "pinned")
        table.add_row(entry.name, what.split(" (")[0], _size(entry), verified, here)
    console.print(table)
    if flows:
        trained = Table(title=f"flow priors trained by train_flow.py, found by generator ({FLOWS_FOLDER}/)")
        for column in ("generator", "fingerprint", "val NLL", "written", "path"):
            trained.add_column(column, no_wrap=True)
        for flow in flows:
            nll = flow["val_nll"]
            trained.add_row(flow["generator"], flow["fingerprint"][:16],
                            f"{nll:.2f}" if isinstance(nll, (int, float)) else "?", flow["written"] or "?",
                            flow["path"])
        console.print(trained)
    print("verified by: sha256 = the registry's full hash; prefix = the hash in the file name; pinned = no hash "
          "published: size and content checked at download, its sha256 kept beside it (.sha256). Every field: "
          "list --json")
    return 0


def fetch(names: list[str], weights_dir: Path | None, offline: bool) -> int:
    failures = 0
    for entry in _selected(names):
        try:
            path = ensure(entry, weights_dir, offline=offline or None,
                          log=lambda line: print(line, file=sys.stderr))
        except (WeightsUnavailable, VerificationFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        print(f"{entry.name}: {path}")
    return 1 if failures else 0


def verify(names: list[str], weights_dir: Path | None) -> int:
    bad = present = 0
    for entry in _selected(names or ["all"]):
        state, path, sha256 = status(entry, weights_dir)
        if state == "missing":
            continue
        present += 1
        if state == "ok":
            print(f"ok  {entry.name}: {path} (sha256 {sha256})")
        else:
            bad += 1
            print(f"BAD {entry.name}: {state}")
    print(f"{present} file(s) present, {bad} failed verification")
    return 1 if bad else 0


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rls_lightning.weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="folder searched first and downloaded into (default: the torch hub cache)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,fetch,verify}")
    listing = commands.add_parser("list", help="the registry and what is here")
    listing.add_argument("--json", action="store_true", help="every field of every entry as JSON")
    fetching = commands.add_parser("fetch", help="download and verify named files")
    fetching.add_argument("names", nargs="+", help="registry names, or all / metrics / generators")
    fetching.add_argument("--offline", action="store_true", help="never touch the network (as RLS_OFFLINE=1)")
    verifying = commands.add_parser("verify", help="re-check the files present")
    verifying.add_argument("names", nargs="*", help="registry names or groups (default: all)")
    args = parser.parse_args(argv)
    if args.command != "fetch":  # fetch creates the folder
        check_input_dir("--weights-dir", args.weights_dir, required=False)
    if args.command == "list":
        return list_files(args.weights_dir, args.json)
    if args.command == "fetch":
        return fetch(args.names, args.weights_dir, args.offline)
    return verify(args.names, args.weights_dir)


if __name__ == "__main__":
    from rls_lightning.interrupts import for_process

    for_process(main)
