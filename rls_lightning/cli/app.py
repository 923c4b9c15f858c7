"""``python -m rls_lightning.app``: a local web page running RLS / RLS+ on uploaded faces or photos.

Serves on http://127.0.0.1:7860 by default (this machine only; --host 0.0.0.0 for the local network; a public
gradio share link only with --share). Needs the optional extra: pip install -e ".[app]". The page runs the same job
as invert.py (same outputs for the same settings and seed) on the models loaded once here, one job at a time
(others wait in the queue); closing the tab or pressing Stop ends a job after its current step. Every job writes
into its own folder under --work-dir (the last 8 are kept) and offers its outputs as one zip.

What the server writes is readable by its user only (umask 077): uploads go to a private temporary folder, not
gradio's shared /tmp/gradio, and a job takes only files uploaded to this page. The uploads it keeps, with the
jobs' copies of them, stay within --upload-budget: an upload past it is refused with the reason, and a job's
uploads are removed with its folder. The old job folders it deletes are only those it made itself, recognised
by what it recorded in memory when it made them (a folder put at the same path, even holding a copy of its
contents, is left alone); a --work-dir is never removed, while the default temporary one is removed, with the
uploads, when the server stops (Ctrl-C or SIGTERM: exit status 130 / 143).

    python -m rls_lightning.app                                   # the embedded demo model
    python -m rls_lightning.app --generator ffhq.pkl --flow ffhq-flow.pt --port 8080
"""
from __future__ import annotations

import errno
import importlib.util
import logging
import os
import socket
import sys
import time
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before anything imports gradio

from jsonargparse import ArgumentParser  # noqa: E402

from rls_lightning.app.workspace import MB, UPLOAD_BUDGET_MB  # noqa: E402
from rls_lightning.cli.arguments import ParagraphHelpFormatter, parse_args  # noqa: E402
from rls_lightning.cli.errors import UsageError, check_int, describe_os_error, guarded  # noqa: E402
from rls_lightning.paths import DEMO_GENERATOR  # noqa: E402


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m rls_lightning.app", description=__doc__, default_env=False,
                       formatter_class=ParagraphHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: only this machine; 0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860,
                   help="port (default 7860; the next free one is not tried: a busy port is an error)")
    p.add_argument("--share", action="store_true",
                   help="also open a public gradio.live link (needs internet; anyone with the link can run jobs)")
    p.add_argument("--generator", default=str(DEMO_GENERATOR),
                   help="StyleGAN2 checkpoint (path or registry name), as for invert.py; default: the demo model")
    p.add_argument("--flow", type=Path, default=None,
                   help="flow prior from train_flow.py; default: the one train_flow.py trained for the generator "
                        "(found in the weights cache), else the demo flow with the demo generator")
    p.add_argument("--force", action="store_true", help="use a flow trained for another generator anyway")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="where each job's uploads and outputs go (default: a new temporary folder, removed when "
                        "the server stops; a folder given here is kept, and only job folders this server made "
                        "in it are ever deleted)")
    p.add_argument("--upload-budget", type=int, default=UPLOAD_BUDGET_MB, metavar="MB",
                   help=f"the most megabytes of uploads the server keeps at once, the jobs' copies of them "
                        f"included (default {UPLOAD_BUDGET_MB}); an upload past it is refused until older jobs "
                        "are removed (the last 8 are kept)")
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (a GPU when one is visible)")
    p.add_argument("--precision", default="32-true", help="32-true, 64-true, bf16-mixed, 16-mixed (GPU) or auto")
    return p


def check_port_free(host: str, port: int) -> None:
    """``UsageError`` before the models are loaded when ``host:port`` cannot be served on (gradio's own message
    would advise a ``launch()`` argument)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            probe.bind(address)
    except socket.gaierror:
        raise UsageError(f"--host {host}: unknown host") from None
    except OSError as err:
        hint = "choose another --port" if err.errno == errno.EADDRINUSE else "--host must be an address of this machine"
        raise UsageError(f"--host {host} --port {port}: cannot serve there ({describe_os_error(err)}); {hint}") \
            from None


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    check_int("--upload-budget", args.upload_budget, 1)
    if importlib.util.find_spec("gradio") is None:
        raise UsageError('the web page needs gradio: pip install -e ".[app]"')
    from rls_lightning.app.session import Runner, load_models
    from rls_lightning.app.workspace import Workspace
    from rls_lightning.cli.errors import check_inversion_hardware
    from rls_lightning.interrupts import Interrupted, StopRequests
    from rls_lightning.runtime import silence_known_lightning_warnings

    check_inversion_hardware(args.accelerator, 1, 1, args.precision)
    check_port_free(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own requests to the local server
    silence_known_lightning_warnings()
    os.umask(0o077)  # uploads, job folders, outputs: this user's alone
    models = load_models(args.generator, args.flow, force=args.force)
    with StopRequests() as stop, Workspace(args.work_dir, upload_budget=args.upload_budget * MB) as workspace:
        # gradio reads its upload folder (the workspace's) on import
        from rls_lightning.app.page import build_page, launch

        runner = Runner(models, workspace.jobs, accelerator=args.accelerator, precision=args.precision,
                        workspace=workspace)
        print(f"model: {models.generator_path} ({models.resolution} px), flow: {models.flow_path}; jobs in "
              f"{workspace.jobs}", file=sys.stderr)
        page = build_page(runner, workspace)
        try:
            url = launch(page, host=args.host, port=args.port, share=args.share, workspace=workspace)
            print(f"serving on {url}" + (f" and publicly on {page.share_url}" if page.share_url else
                                         " (--share for a public link)") + "; Ctrl-C stops", file=sys.stderr)
            while page.is_running:
                stop.check()  # a stop whose raise was dropped on its way (interrupts.py) still ends the server
                time.sleep(0.2)
        except Interrupted as err:
            print(f"stopped ({err})", file=sys.stderr)
            return err.exit_code
        finally:
            page.close()
            runner.stop()
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
