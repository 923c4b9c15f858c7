"""A screenshot of the web page (``python -m rls_lightning.app``) after a run on a demo face, for the README.

Starts the page on a free 127.0.0.1 port with the demo model, uploads one demo LR face (8x8) and its HR image,
runs the preset's full RLS / RLS+ (K samples), waits for the result and saves a full-page PNG. Needs the app
extra (gradio), playwright and Debian's chromium (``/usr/bin/chromium``; no browser download).

    python scripts/app_screenshot.py docs/app_screenshot.png
    python scripts/app_screenshot.py shot.png --face demo03 --samples 1 --steps 50 --refine-steps 10
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def uploaded(tab, selector: str, name: str) -> None:
    tab.wait_for_function("([s, n]) => document.querySelector(s).innerText.includes(n)", arg=[selector, name])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", type=Path, help="PNG file to write")
    p.add_argument("--face", default="demo00", help="stem of the demo face in data/demo/lr8x (default demo00)")
    p.add_argument("--samples", type=int, default=3, help="K samples (default 3)")
    p.add_argument("--steps", type=int, default=None, help="RLS steps (default: the preset's)")
    p.add_argument("--refine-steps", type=int, default=None, help="RLS+ steps (default: the preset's)")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="browser executable")
    p.add_argument("--width", type=int, default=1400, help="viewport width in CSS pixels")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from rls_lightning.app.page import build_page, launch
    from rls_lightning.app.session import Runner, load_models
    from rls_lightning.app.workspace import Workspace

    lr = ROOT / "data" / "demo" / "lr8x" / f"{args.face}.png"
    hr = ROOT / "data" / "demo" / "hr" / f"{args.face}.png"
    workspace = Workspace(temp_root=Path(tempfile.mkdtemp(prefix="rls-app-shot-")))
    runner = Runner(load_models(), workspace.jobs, accelerator="cpu")
    page = build_page(runner, workspace)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(page, port=port, workspace=workspace)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
            tab = browser.new_page(viewport={"width": args.width, "height": 1000}, device_scale_factor=1)
            tab.goto(f"http://127.0.0.1:{port}/")
            tab.wait_for_selector("#run")
            tab.set_input_files("#upload input[type=file]", str(lr))
            uploaded(tab, "#upload", lr.name)
            tab.set_input_files("#upload-hr input[type=file]", str(hr))
            uploaded(tab, "#upload-hr", hr.name)
            for name, value in (("num_samples", args.samples), ("steps", args.steps),
                                ("refine_steps", args.refine_steps)):
                if value is not None:
                    box = tab.locator(f"#control-{name} input")
                    box.fill(str(value))
                    box.press("Tab")
            tab.click("#run")
            tab.wait_for_selector("#download a", timeout=600_000)
            tab.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
            tab.wait_for_timeout(1000)
            tab.evaluate("() => window.scrollTo(0, 0)")  # the sticky status bar at the top, not mid-picture
            tab.wait_for_timeout(300)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(args.output), full_page=True)
            browser.close()
    finally:
        page.close()
        runner.stop()
        workspace.close()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
