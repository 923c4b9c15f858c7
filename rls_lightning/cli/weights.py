"""Prepare a machine's pretrained files ahead of time.

    python -m rls_lightning.cli.weights list              what the registry knows, and what is here
    python -m rls_lightning.cli.weights fetch metrics     download (once, verified) every file of the evaluation
    python -m rls_lightning.cli.weights fetch ffhq-1024   ... or named files (generators, metric networks)
    python -m rls_lightning.cli.weights verify            re-check every file present (hash, size, pinned sha256)

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

import json
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

from rls_lightning.cli.arguments import ParagraphHelpFormatter, parse_args
from rls_lightning.cli.errors import UsageError, check_input_dir, guarded
from rls_lightning.weights import registry
from rls_lightning.weights.flows import FLOWS_FOLDER, cached_flows
from rls_lightning.weights.registry import PretrainedFile, UnknownName
from rls_lightning.weights.store import WeightsUnavailable, ensure, search_folders, status
from rls_lightning.weights.verification import VerificationFailed

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
    if not sys.stdout.isatty():  # a pipe or a file: plain rows, no box drawing, within 120 columns
        return _plain_list(rows, flows, weights_dir)
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)

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


PLAIN_WIDTH = 120
# train_flow.py's default is 5 M mapped w; the flow's training throughput at d = 512 (benchmarks/RESULTS.md,
# flow_throughput.py, 2026-11-26: AMD EPYC with AVX512-BF16, 2 cores): 3,090 w/s in bf16, 960 w/s in float32
FLOW_COST = ("no flow prior can be downloaded for any generator: train one for yours with "
             "'python train_flow.py --generator NAME' (5 M mapped w by default: about 27 min in bf16, 87 min in "
             "float32 on a 2-core AMD EPYC with AVX512-BF16; benchmarks/RESULTS.md); invert.py then finds it in "
             "the cache by the generator's fingerprint")


def _plain_list(rows: list[dict], flows: list[dict], weights_dir: Path | None) -> int:
    """``weights list`` for a pipe or a file: aligned plain rows (at most ``PLAIN_WIDTH`` columns), the embedded
    demo model first, and which generators have a flow prior."""
    import textwrap

    from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR

    trained = {flow["generator"] for flow in flows}
    table = [("name", "kind", "px", "size", "here", "flow prior", "what")]
    if DEMO_GENERATOR.is_file():
        table.append(("demo64", "generator", "64", f"{DEMO_GENERATOR.stat().st_size / 1e6:.1f} MB", "yes",
                      "shipped" if DEMO_FLOW.is_file() else "none", "the embedded demo model (checkpoints/)"))
    for entry, row in zip(registry.FILES, rows):
        here = {"ok": "yes", "missing": "no"}.get(row["state"], "BAD")
        if entry.kind == "generator":
            flow = "trained" if entry.name in trained else "train one"
            what = entry.description
        else:
            flow, what = "", entry.used_by
        table.append((entry.name, entry.kind, str(entry.resolution or ""), _size(entry), here, flow,
                      what.split(" (")[0]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    room = PLAIN_WIDTH - sum(widths) - 2 * len(widths)
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        what = row[-1] if len(row[-1]) <= room else row[-1][:max(0, room - 3)] + "..."
        print("  ".join(cells + [what]).rstrip())
    notes = [f"flow prior trained for {flow['generator']}: {flow['path']}" for flow in flows]
    notes += [f"searched: {', '.join(str(f) for f in search_folders(weights_dir))}", FLOW_COST,
              "size ?: not published (checked at download); every field: list --json"]
    for paragraph in notes:  # long paths break at the width too
        print(textwrap.fill(paragraph, PLAIN_WIDTH, break_long_words=True, break_on_hyphens=False))
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


def build_parser() -> ArgumentParser:
    def subcommand_parser() -> ArgumentParser:
        return ArgumentParser(default_env=False, formatter_class=ParagraphHelpFormatter)

    parser = ArgumentParser(prog="python -m rls_lightning.cli.weights", description=__doc__, default_env=False,
                            formatter_class=ParagraphHelpFormatter)
    parser.add_argument("--weights-dir", type=Path | None, default=None,
                        help="folder searched first and downloaded into (default: the torch hub cache)")
    listing = subcommand_parser()
    listing.add_argument("--json", action="store_true", help="every field of every entry as JSON")
    fetching = subcommand_parser()
    fetching.add_argument("names", nargs="+", help="registry names, or all / metrics / generators")
    fetching.add_argument("--offline", action="store_true", help="never touch the network (as RLS_OFFLINE=1)")
    verifying = subcommand_parser()
    verifying.add_argument("names", nargs="*", help="registry names or groups (default: all)")
    commands = parser.add_subcommands(required=True, dest="command")
    commands.add_subcommand("list", listing, help="the registry and what is here")
    commands.add_subcommand("fetch", fetching, help="download and verify named files")
    commands.add_subcommand("verify", verifying, help="re-check the files present")
    return parser


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if args.command != "fetch":  # fetch creates the folder
        check_input_dir("--weights-dir", args.weights_dir, required=False)
    if args.command == "list":
        return list_files(args.weights_dir, args.list.json)
    if args.command == "fetch":
        return fetch(args.fetch.names, args.weights_dir, args.fetch.offline)
    return verify(args.verify.names, args.weights_dir)


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
