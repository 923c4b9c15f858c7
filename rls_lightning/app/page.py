"""The gradio page: inputs and controls on the left, progress and results on the right.

All the work is ``session.Runner``'s (the same job code as ``invert.py``); this file only lays out the page and
turns the runner's updates and results into component values. Gradio's analytics are off (set before gradio is
imported) and the theme uses the fonts gradio ships or the system's, so the page needs no internet.

Files cross the page's border only through ``workspace.Workspace``: a job starts from files uploaded to this
server (or the demo buttons' files) and nothing else, and the page shows private copies of a job's files made in
the upload folder, so gradio serves no other folder than that one and the demo data.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from ..errors import describe_os_error  # noqa: E402
from ..paths import PROJECT_ROOT  # noqa: E402
from ..api.settings import PRESETS  # noqa: E402
from .controls import CONTROLS, preset_description, preset_values  # noqa: E402
from .outputs import JobResult  # noqa: E402
from ..progress_lines import clock  # noqa: E402
from .progress import StepUpdate, planned_steps  # noqa: E402
from .session import JobFailed, JobRequest, Runner, not_whole  # noqa: E402
from .workspace import UploadGate, UploadRefused, Workspace  # noqa: E402

log = logging.getLogger(__name__)

DEMO_DATA = PROJECT_ROOT / "data" / "demo"
DEMO_FACES = DEMO_DATA / "lr8x"
DEMO_HR = DEMO_DATA / "hr"
DEMO_PHOTOS = DEMO_DATA / "photos"
TILE_LABELS = {"lr": "LR (enlarged)", "bicubic": "bicubic", "rls": "RLS", "final": "RLS+", "hr": "HR"}
MODE_LABELS = {"aligned LR face crops (like --lr-dir)": "lr", "photos (like --photos)": "photos"}

CSS = """
.pixelated img { image-rendering: pixelated; }
#result-row .result-tile .image-frame { width: 100%; }
#result-row .result-tile img { object-fit: contain; width: 100% !important; height: auto !important;
                               max-width: none !important; max-height: none !important; }
.tile-caption p { margin: 0; font-size: 0.85em; text-align: center; }
/* the sliders: each picture fills its slider's box and is fitted into it whole (gradio draws it 100% wide and up
   to 500 px tall, cut to the box: a square face lost its forehead and chin, a photo its bottom); gradio places
   the divider and the clip of the second picture on the picture fitted into this box */
#slider .content img, #photo-slider .content img {
    width: 100% !important; height: 100% !important; max-width: none !important; max-height: none !important;
    object-fit: contain !important; }
#preview img { object-fit: contain; }
/* Run, Stop and the status stay at the top of the window however far the page is scrolled (the controls are
   long: the status went out of view as a step box low on the page was edited) */
html { scroll-padding-top: 72px; }  /* a control scrolled into view (focus, Tab) is not left under the bar */
.gradio-container { overflow: clip !important; }  /* gradio's "hidden" made it the scroll box sticky refers to */
#status-bar { position: sticky; top: 0; z-index: 20; background: var(--body-background-fill);
              padding: 6px 0; border-bottom: 1px solid var(--border-color-primary); align-items: center; }
#status-bar > button { flex: 0 0 auto; min-width: 90px; }
#status { min-height: 2.5em; }
#status p { margin: 0; }
"""
THEME_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")  # no web fonts: the page works offline
MONO_FONTS = ("ui-monospace", "monospace")


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=THEME_FONTS, font_mono=MONO_FONTS)


def _paths(files) -> list:
    if not files:
        return []
    return [getattr(f, "name", f) for f in (files if isinstance(files, list) else [files])]


def build_page(runner: Runner, workspace: Workspace, title: str = "RLS / RLS+ face super-resolution") -> gr.Blocks:
    """The page, running its jobs on ``runner``; ``workspace`` must be open (it is gradio's upload folder)."""
    models = runner.models
    first = preset_values("rls+")
    with gr.Blocks(title=title) as page:
        gr.Markdown(f"## {title}\n"
                    f"Generator `{models.generator_path.name}` ({models.resolution} px), flow prior "
                    f"`{models.flow_path.name if models.flow_path else 'none'}`. Upload small aligned face crops "
                    f"(any square size dividing {models.resolution} px) or photos; RLS searches the StyleGAN2's latent "
                    "space under the flow prior, RLS+ then fine-tunes the generator around that result. The same job "
                    "as `python invert.py`: the zip holds exactly what it writes.")
        state = gr.State(None)
        with gr.Row(elem_id="status-bar"):
            run = gr.Button("Run", variant="primary", elem_id="run", scale=0)
            stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=0)
            status = gr.Markdown("", elem_id="status")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                mode = gr.Radio(list(MODE_LABELS), value=next(iter(MODE_LABELS)), label="input",
                                info="aligned crops go straight to RLS; in photos every face is found, aligned, "
                                     "super-resolved and pasted back")
                files = gr.File(file_count="multiple", label="images", elem_id="upload")
                hr_files = gr.File(file_count="multiple", label="HR images (optional, same names: only shown)",
                                   elem_id="upload-hr")
                with gr.Row():
                    demo_faces = gr.Button("demo faces (8x8)", size="sm", visible=DEMO_FACES.is_dir())
                    demo_photo = gr.Button("demo photo", size="sm", visible=DEMO_PHOTOS.is_dir())
                preset = gr.Dropdown(list(PRESETS), value="rls+", label="preset", elem_id="preset")
                description = gr.Markdown(preset_description("rls+"))
                controls = {}
                for control in CONTROLS:
                    kwargs = dict(label=control.label, info=control.info, value=first[control.name],
                                  elem_id=f"control-{control.name}", minimum=control.minimum,
                                  maximum=control.maximum)
                    if control.integer:  # not precision=0: gradio would round 1.5 to 2 where invert.py refuses it
                        kwargs["step"] = 1
                    controls[control.name] = gr.Number(**kwargs)
            with gr.Column(scale=2, min_width=480):
                # the estimate at least twice the generator's size (64 px: 256 px tall), its pixels sharp
                preview = gr.Image(label="current estimate", type="numpy", format="png", interactive=False,
                                   height=preview_height(models.resolution), elem_id="preview",
                                   elem_classes=["pixelated"], visible=False)
                messages = gr.Markdown("", elem_id="messages")
                chooser = gr.Dropdown([], label="image", visible=False, elem_id="chooser")
                with gr.Row(equal_height=True, elem_id="result-row"):
                    tiles, captions, tile_columns = {}, {}, {}
                    for key, label in TILE_LABELS.items():
                        # the caption is its own component above the picture: gradio's block label would cover
                        # the image's top rows; min_width 0 keeps all five tiles in one row
                        with gr.Column(min_width=0, visible=key != "hr", elem_classes=["tile-column"]) as column:
                            captions[key] = gr.Markdown(label, elem_id=f"caption-{key}",
                                                        elem_classes=["tile-caption"])
                            tiles[key] = gr.Image(show_label=False, type="filepath", interactive=False,
                                                  buttons=[], container=False, elem_id=f"result-{key}",
                                                  elem_classes=["pixelated", "result-tile"])
                        tile_columns[key] = column
                slider = gr.ImageSlider(label="bicubic | RLS+", type="filepath", interactive=False,
                                        elem_id="slider", visible=False, height=320)
                samples = gr.Gallery(label="the K samples and their standard deviation", columns=6, height=200,
                                     elem_id="samples", visible=False)
                photo_slider = gr.ImageSlider(label="photo: bicubic | restored", type="filepath",
                                              interactive=False, elem_id="photo-slider", visible=False, height=420)
                table = gr.Dataframe(headers=["image", "status", "LR error bicubic", "LR error RLS",
                                              "LR error result", "note"], label="LR consistency: mean |D(x) - y| "
                                     "on the [0, 1] scale", interactive=False, elem_id="consistency")
                download = gr.File(label="all outputs (zip)", interactive=False, elem_id="download")

        tile_list = [tiles[k] for k in TILE_LABELS]
        result_outputs = [chooser, *tile_list, captions["final"], tile_columns["hr"], slider, samples, photo_slider]
        outputs = [state, status, preview, messages, table, download, *result_outputs]

        def on_preset(name):
            values = preset_values(name)
            return [preset_description(name)] + [gr.update(value=values[c.name]) for c in CONTROLS]

        preset.change(on_preset, preset, [description, *controls.values()], queue=False)

        demo_faces.click(lambda: (next(iter(MODE_LABELS)), [str(p) for p in sorted(DEMO_FACES.glob("*.png"))],
                                  [str(p) for p in sorted(DEMO_HR.glob("*.png"))]), None, [mode, files, hr_files],
                         queue=False)
        demo_photo.click(lambda: (list(MODE_LABELS)[1], [str(p) for p in sorted(DEMO_PHOTOS.glob("*.png"))], None),
                         None, [mode, files, hr_files], queue=False)

        def show(result: JobResult | None, stem: str | None):
            """The comparison, slider and samples of one image of ``result`` (and the photo it comes from)."""
            if result is None or not result.images:
                hidden = [gr.update(value=None) for _ in tile_list]
                return [gr.update(choices=[], value=None, visible=False), *hidden,
                        gr.update(value=TILE_LABELS["final"]), gr.update(visible=False),
                        gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                        _photo_update(result, None, workspace)]
            shown = _Shown(workspace, result)
            chosen = next((r for r in result.images if r.stem == stem), result.images[0])
            final_label = result_label(result)
            final = shown(chosen.final)
            values = [gr.update(value=shown(chosen.lr)), gr.update(value=shown(chosen.bicubic)),
                      gr.update(value=shown(chosen.rls)), gr.update(value=final),
                      gr.update(value=shown(chosen.hr)),
                      gr.update(value=final_label), gr.update(visible=chosen.hr is not None)]
            bicubic = shown(chosen.bicubic)
            slider_value = (bicubic, final) if bicubic and final else None
            gallery = [(path, f"sample {k + 1}") for k, p in enumerate(chosen.samples) if (path := shown(p))]
            if (std := shown(chosen.std)) is not None:
                gallery.append((std, "standard deviation (white = 0.25)"))
            return [gr.update(choices=[r.stem for r in result.images], value=chosen.stem,
                              visible=len(result.images) > 1),
                    *values,
                    gr.update(value=slider_value, visible=slider_value is not None,
                              label=f"bicubic | {final_label}"),
                    gr.update(value=gallery or None, visible=bool(gallery)),
                    _photo_update(result, chosen.stem, workspace)]

        def start(client: gr.Request, mode_label, uploads, hr_uploads, preset_name, *values):
            skip = [gr.skip() for _ in result_outputs]

            def refused(line: str, status: str) -> list:
                """The page's answer to a run that never starts: a warning, the status, nothing else changed."""
                gr.Warning(line)
                return [gr.skip(), status, gr.skip(), "", gr.skip(), gr.skip(), *skip]

            try:  # a client chooses these paths: only files uploaded here (or the demo's) go any further
                request = JobRequest(files=workspace.accepted_uploads(_paths(uploads), also=[DEMO_DATA]),
                                     mode=MODE_LABELS.get(mode_label, "lr"), preset=preset_name,
                                     hr_files=workspace.accepted_uploads(_paths(hr_uploads), also=[DEMO_DATA]))
            except UploadRefused as err:
                yield refused(str(err), f"**refused:** {err}")
                return
            for control, value in zip(CONTROLS, values):
                if value is None:
                    continue
                if control.integer and (line := not_whole(control.label, value)):
                    yield refused(line, f"**refused:** {line}")
                    return
                setattr(request, control.name, int(value) if control.integer else float(value))
            if not request.files:
                yield refused("upload one or more images first", "upload one or more images first")
                return
            job_steps = _planner(request)
            job = runner.start(request, owner=getattr(client, "session_hash", None))
            previews = workspace.previews()

            def shown_estimate(pixels):
                if pixels is None:
                    return gr.skip()
                try:
                    return str(previews.write(_png(pixels)))
                except OSError as err:  # a full disk costs the preview, never the job
                    log.warning("could not write the current estimate: %s", describe_os_error(err))
                    return gr.skip()
            started = time.monotonic()
            # the previous job's results go the moment this one starts: no old tile, table or zip beside it; the HR
            # tile stays (empty) where this job will show its HR image. Each update names the HR column's
            # visibility: with gr.skip() for it, gradio 6.31 hid it again at the next update
            hr_column = gr.update(visible=bool(request.hr_files) and request.mode == "lr")
            cleared = show(None, None)
            cleared[result_outputs.index(tile_columns["hr"])] = hr_column
            skip[result_outputs.index(tile_columns["hr"])] = hr_column
            yield [None, "**starting** ... (0:00:00 elapsed, estimating...)", gr.update(value=None, visible=True),
                   "", None, None, *cleared]
            last = None
            try:
                for event in job.updates():
                    if event is None:  # a chance for gradio to notice a closed page; the clock goes on
                        waiting = (f"**starting** ... ({clock(time.monotonic() - started)} elapsed, estimating...)"
                                   if last is None and job.stop.requested is None else gr.skip())
                        yield [gr.skip(), waiting, gr.skip(), gr.skip(), gr.skip(), gr.skip(), *skip]
                    elif isinstance(event, StepUpdate):
                        # the job's clock is the page's: from Run, not from the job's first step
                        last = event = dataclasses.replace(event, elapsed=time.monotonic() - started)
                        stopping = " | **stopping** after this step ..." if job.stop.requested is not None else ""
                        yield [gr.skip(), event.line(job_steps(event.images_total)) + stopping,
                               shown_estimate(event.preview),
                               gr.skip(), gr.skip(), gr.skip(), *skip]
                    elif isinstance(event, JobFailed):
                        gr.Warning(str(event))
                        yield [None, f"**stopped:** {event}", gr.update(value=None, visible=False), "", None, None,
                               *show(None, None)]
                    else:
                        workspace.keep_shown(folder.name for folder in runner.job_folders)
                        for message in event.messages:
                            gr.Warning(message)
                        done = event.summary
                        notes = "\n".join(f"- {m}" for m in event.messages)
                        # the last batch's estimate would pass for the selected image's: hidden with the results
                        yield [event, done, gr.update(value=None, visible=False), notes, event.consistency_rows(),
                               _Shown(workspace, event)(event.zip_path), *show(event, None)]
            finally:  # the page was closed or Stop pressed: stop the job after its current step
                if not job.finished:
                    job.cancel()
                    job.join(timeout=120)
                previews.close()

        running = run.click(start, [mode, files, hr_files, preset, *controls.values()], outputs,
                            concurrency_limit=1, concurrency_id="inversion")
        def on_stop(client: gr.Request):
            """Stop answers at once; the job ends after its current step and the run's last update says how. Only
            the browser session that started the job can stop it."""
            if not runner.cancel_for(getattr(client, "session_hash", None)):
                return gr.skip()
            return "**stopping** after the current step ..."

        stop.click(on_stop, None, status, queue=False)
        chooser.change(show, [state, chooser], result_outputs, queue=False)
    return page


def _png(pixels) -> bytes:
    """An estimate (uint8 ``[H, W, 3]``) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def preview_height(resolution: int) -> int:
    """The preview's height in CSS pixels: twice the generator's resolution, kept within 256 to 512."""
    return max(256, min(2 * int(resolution), 512))


def _planner(request: JobRequest):
    """``images -> the steps the job runs`` (``planned_steps``) for ``request``; None for each when its settings
    are not usable (the job itself says why)."""
    from ..api.settings import SettingsError, build_settings

    try:
        settings = build_settings(request.preset, **request.overrides())
    except (SettingsError, ValueError, TypeError):
        return lambda images: None
    samples, batch_size = request.num_samples, request.batch_size
    return lambda images: planned_steps(settings, images, samples, batch_size)


def result_label(result: JobResult) -> str:
    """What made ``<stem>.png``: RLS+ (naming a preset other than the default), or the search alone."""
    if result.refined:
        return TILE_LABELS["final"] if result.preset == "rls+" else f"RLS+ ({result.preset})"
    if result.preset in ("pulse", "brgm"):
        return f"{result.preset.upper()} result"
    return f"RLS only ({result.preset}: no RLS+ steps)"


class _Shown:
    """The copy gradio serves of a file of ``result``'s job (``Workspace.publish``), as a string; None for no
    file, or, with the reason in the server's log, for one that could not be copied (the rest is still shown)."""

    def __init__(self, workspace: Workspace, result: JobResult) -> None:
        self.workspace, self.job_dir = workspace, result.out_dir.parent

    def __call__(self, path) -> str | None:
        try:
            shown = self.workspace.publish(path, self.job_dir)
        except (OSError, ValueError) as err:
            log.warning("%s: not shown on the page (%s)", path, err)
            return None
        return None if shown is None else str(shown)


def _photo_update(result: JobResult | None, stem: str | None, workspace: Workspace):
    if result is None or not result.photos:
        return gr.update(value=None, visible=False)
    photo = next((p for p in result.photos if stem and stem.startswith(p.name.rsplit(".", 1)[0] + "_face")),
                 result.photos[0])
    shown = _Shown(workspace, result)
    enlarged, restored = shown(photo.enlarged), shown(photo.restored)
    if enlarged is None or restored is None:
        return gr.update(value=None, visible=False)
    return gr.update(value=(enlarged, restored), visible=True, slider_position=photo.divider,
                     label=f"{photo.name}: bicubic | restored ({photo.faces} face(s))")


def launch(page: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           max_file_size: str = "50mb", workspace: Workspace | None = None) -> str:
    """Serve ``page`` in a thread and return its local URL: one job at a time (a second waits in gradio's
    queue), files served only from the upload folder and the demo data, a public share link only with
    ``share`` (``page.share_url``), and with ``workspace`` (the page's) every upload held to its
    ``upload_budget`` (``UploadGate``). Gradio's own start-up lines are silenced: they advise ``launch()``
    arguments where the user has command-line options."""
    page.queue(default_concurrency_limit=1, max_size=16)
    # the gate goes in as the app is made: middleware cannot be added to a server already running
    gate = {"middleware": [Middleware(UploadGate, workspace=workspace)]} if workspace is not None else None
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, inbrowser=False,
                show_error=False, quiet=True, max_file_size=max_file_size, allowed_paths=[str(DEMO_DATA)],
                theme=theme(), css=CSS, footer_links=[], app_kwargs=gate)
    return page.local_url
