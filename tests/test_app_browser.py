"""The web page in a real browser: Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by
Playwright's Python package (no browser download). Uploads a demo LR face, runs a few steps, checks the result
images and the zip; a closed tab stops its job; nothing is fetched from outside 127.0.0.1."""
import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
DEMO_FACE = ROOT / "data" / "demo" / "lr8x" / "demo00.png"
DEMO_HR_FACE = ROOT / "data" / "demo" / "hr" / "demo00.png"
TILES = ("lr", "bicubic", "rls", "final", "hr")

pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),  # gradio's own pandas calls
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra has it)")
pytest.importorskip("gradio", reason='gradio is not installed (pip install -e ".[app]")')

from app_server import free_port  # noqa: E402
from rls_lightning.app.page import build_page, launch  # noqa: E402
from rls_lightning.app.session import Runner, load_models  # noqa: E402
from rls_lightning.app.workspace import Workspace  # noqa: E402
from rls_lightning.cli.defaults import DEMO_GENERATOR  # noqa: E402

if not DEMO_GENERATOR.is_file():
    pytest.skip("the embedded demo model is not in this checkout", allow_module_level=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    workspace = Workspace(temp_root=tmp_path_factory.mktemp("app"))
    runner = Runner(load_models(), workspace.jobs, accelerator="cpu")
    page = build_page(runner, workspace)
    url = launch(page, port=free_port())
    yield runner, url
    page.close()
    runner.stop()
    workspace.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def open_page(browser, url: str, outside: list):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    tab = context.new_page()

    def only_local(route):
        if route.request.url.startswith(url.rstrip("/")) or route.request.url.startswith("data:"):
            route.continue_()
        else:  # the page must work offline: anything else is refused and recorded
            outside.append(route.request.url)
            route.abort()

    tab.route("**/*", only_local)
    tab.goto(url)
    tab.wait_for_selector("#run")
    return context, tab


def uploaded(tab, selector: str, name: str) -> None:
    tab.wait_for_function("([s, n]) => document.querySelector(s).innerText.includes(n)", arg=[selector, name])


def set_number(tab, name: str, value: int) -> None:
    box = tab.locator(f"#control-{name} input")
    box.fill(str(value))
    box.press("Tab")


def run_demo_face(tab, steps: int, refine_steps: int, with_hr: bool = False) -> None:
    """Upload the demo LR face (and its HR face), set the step counts and press Run."""
    tab.set_input_files("#upload input[type=file]", str(DEMO_FACE))
    uploaded(tab, "#upload", "demo00.png")
    if with_hr:
        tab.set_input_files("#upload-hr input[type=file]", str(DEMO_HR_FACE))
        uploaded(tab, "#upload-hr", "demo00.png")
    set_number(tab, "steps", steps)
    set_number(tab, "refine_steps", refine_steps)
    tab.click("#run")


def natural_size(tab, selector: str) -> tuple[int, int]:
    tab.wait_for_function("s => { const i = document.querySelector(s + ' img');"
                          " return i && i.complete && i.naturalWidth > 0; }", arg=selector, timeout=30_000)
    return tuple(tab.eval_on_selector(f"{selector} img", "i => [i.naturalWidth, i.naturalHeight]"))


def test_run_a_demo_face_and_download_the_zip(app, browser):
    runner, url = app
    outside = []
    context, tab = open_page(browser, url, outside)
    try:
        run_demo_face(tab, steps=6, refine_steps=2)
        tab.wait_for_selector("#download a", timeout=90_000)
        size = runner.models.resolution
        for key in ("lr", "bicubic", "rls", "final"):
            assert natural_size(tab, f"#result-{key}") == (size, size), key
        assert "done" in tab.inner_text("#status")
        assert "demo00" in tab.inner_text("#consistency")
        with tab.expect_download() as download:
            tab.click("#download a")
        archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
        names = set(archive.namelist())
        assert {"faces_rls+/demo00.png", "faces_rls+/demo00_rls.png", "faces_rls+/demo00.pt",
                "faces_rls+/results.csv", "faces_rls+/overview.png"} == names
        out_dir = runner.running.outcome.out_dir
        assert archive.read("faces_rls+/demo00.png") == (out_dir / "demo00.png").read_bytes()
        assert outside == [], f"the page fetched from outside: {outside}"
    finally:
        context.close()


def test_a_closed_tab_stops_its_job(app, browser):
    runner, url = app
    context, tab = open_page(browser, url, [])
    tab.set_input_files("#upload input[type=file]", str(DEMO_FACE))
    uploaded(tab, "#upload", "demo00.png")
    set_number(tab, "steps", 2000)
    tab.click("#run")
    tab.wait_for_function("() => document.querySelector('#status').innerText.includes('step')", timeout=60_000)
    job = runner.running
    context.close()
    assert job.join(timeout=30), "the job of a closed tab is still running"
    assert job.outcome is not None and "cancelled" in str(job.outcome)


def test_the_demo_buttons_run_with_their_own_files(app, browser):
    """The demo buttons' files are the only ones not uploaded that a job accepts; their results, HR tile and
    photo slider are shown from the page's own copies."""
    runner, url = app
    context, tab = open_page(browser, url, [])
    try:
        set_number(tab, "steps", 2)
        set_number(tab, "refine_steps", 1)
        tab.get_by_role("button", name="demo faces (8x8)").click()
        uploaded(tab, "#upload", "demo07")  # a list shows the stem and the suffix apart
        uploaded(tab, "#upload-hr", "demo07")
        tab.click("#run")
        tab.wait_for_function("() => document.querySelector('#status').innerText.includes('done')", timeout=120_000)
        size = runner.models.resolution
        assert natural_size(tab, "#result-hr") == (size, size)
        hr_url = tab.eval_on_selector("#result-hr img", "i => i.src")
        assert "/uploads/shown/" in hr_url, hr_url

        tab.get_by_role("button", name="demo photo").click()
        uploaded(tab, "#upload", "group")
        tab.click("#run")
        tab.wait_for_function("() => document.querySelector('#status').innerText.includes('photo(s)')",
                              timeout=120_000)
        tab.wait_for_selector("#photo-slider img", timeout=30_000)
        outcome = runner.running.outcome
        assert outcome.photos[0].faces == 4
        # the divider starts between faces, not across the middle one: where the restored picture's clip begins
        # (in its own width) lies on no face box of results.csv
        tab.wait_for_function("() => (document.querySelectorAll('#photo-slider img')[1] || {style: {}})"
                              ".style.clipPath", timeout=10_000)
        clip = tab.eval_on_selector_all("#photo-slider img", "imgs => imgs[1].style.clipPath")
        left = float(re.search(r"inset\(\S+ \S+ \S+ ([\d.]+)%\)", clip).group(1)) / 100 * 190  # 190 px wide
        boxes = [[float(v) for v in row["box"].split()]
                 for row in csv.DictReader(open(outcome.out_dir / "results.csv"))]
        assert any(x0 < 95 < x1 for x0, _, x1, _ in boxes)
        assert all(not x0 <= left <= x1 for x0, _, x1, _ in boxes), (clip, boxes)
    finally:
        context.close()


def tile_boxes(tab) -> dict:
    """Per tile: the rendered box of its picture, of the block holding it and of its caption, and the natural size."""
    return tab.evaluate("""keys => Object.fromEntries(keys.map(k => {
        const img = document.querySelector('#result-' + k + ' img');
        const block = document.querySelector('#result-' + k);
        const caption = document.querySelector('#caption-' + k);
        const box = e => e ? e.getBoundingClientRect().toJSON() : null;
        return [k, {img: box(img), block: box(block), caption: box(caption),
                    natural: img ? [img.naturalWidth, img.naturalHeight] : null,
                    fit: img ? getComputedStyle(img).objectFit : null,
                    caption_text: caption ? caption.innerText.trim() : null}]; }))""", list(TILES))


def test_a_new_job_clears_the_last_results_and_tiles_show_whole_pictures_in_one_row(app, browser):
    """Job 1 (with HR) finishes: LR | bicubic | RLS | RLS+ | HR side by side, each picture whole and enlarged, its
    caption above it, not over it. Job 2 starts: while it runs, none of job 1's pictures, table rows or zip is on
    the page. Job 2 runs no RLS+ steps: its result tile says so."""
    runner, url = app
    context, tab = open_page(browser, url, [])
    try:
        run_demo_face(tab, steps=2, refine_steps=1, with_hr=True)
        tab.wait_for_function("() => document.querySelector('#status').innerText.includes('done:')", timeout=120_000)
        tab.wait_for_selector("#download a")
        for key in TILES:
            natural_size(tab, f"#result-{key}")
        boxes = tile_boxes(tab)
        tops = {round(b["img"]["y"]) for b in boxes.values()}
        assert len(tops) == 1, f"the five tiles are not in one row: {boxes}"
        size = runner.models.resolution
        for key, b in boxes.items():
            img, block, caption = b["img"], b["block"], b["caption"]
            assert b["natural"] == [size, size], key
            # the whole picture is drawn, enlarged, square as the file is, inside its block (nothing clipped)
            assert img["width"] > size and abs(img["width"] - img["height"]) < 1, (key, img)
            assert b["fit"] == "contain", key
            assert block["x"] - 0.5 <= img["x"] and img["x"] + img["width"] <= block["x"] + block["width"] + 0.5, key
            assert block["y"] - 0.5 <= img["y"] and img["y"] + img["height"] <= block["y"] + block["height"] + 0.5, key
            assert caption["y"] + caption["height"] <= img["y"] + 0.5, f"{key}: the caption covers the picture"
        assert boxes["final"]["caption_text"] == "RLS+"
        assert "demo00" in tab.inner_text("#consistency")

        set_number(tab, "steps", 300)  # long enough to be looked at while it runs, even on a fast machine
        set_number(tab, "refine_steps", 0)
        tab.click("#run")
        tab.wait_for_function("() => document.querySelector('#status').innerText.includes('step')", timeout=60_000)
        assert runner.running is not None and not runner.running.finished, "job 2 ended before it could be looked at"
        assert tab.query_selector("#download a") is None, "job 1's zip is offered while job 2 runs"
        shown = [k for k in TILES if tab.query_selector(f"#result-{k} img[src]")]
        assert shown == [], f"job 1's pictures are shown while job 2 runs: {shown}"
        assert "demo00" not in tab.inner_text("#consistency"), "job 1's table is shown while job 2 runs"
        tab.wait_for_function("() => document.querySelector('#status').innerText.includes('done:')", timeout=180_000)
        tab.wait_for_selector("#result-final img[src]")
        assert tile_boxes(tab)["final"]["caption_text"] == "RLS only (rls+: no RLS+ steps)"
    finally:
        context.close()
