"""The web app: a Gradio Blocks studio over the service (translation only, no business logic)."""

from __future__ import annotations

import gradio as gr

from ..engine.request import GenerationRequest
from ..errors import GemPixError
from ..service import Studio
from ..settings import Settings

TITLE = "GemPix"
TINY_BANNER = (
    "**Offline demo model.** The `tiny` model is serving: it has random weights and draws "
    "noise, not pictures."
)


def banner_text(studio: Studio) -> str:
    loaded = studio.model()
    if loaded.notice:
        return f"**Offline.** {loaded.notice}"
    return TINY_BANNER if loaded.preset.is_tiny else ""


def build_app(studio: Studio) -> gr.Blocks:
    """The Blocks app for one studio; tests launch it on a free port."""

    def generate(prompt, seed, steps, progress=gr.Progress()):
        request = GenerationRequest(
            prompt=prompt or "",
            seed=None if seed in (None, "") or seed < 0 else int(seed),
            steps=int(steps) if steps else None,
        )
        try:
            result = studio.generate(
                request,
                front_door="ui",
                progress=lambda done, total, stage: progress((done, total), desc=stage),
            )
        except GemPixError as error:
            raise gr.Error(error.message, print_exception=False) from None
        image = result.images[0]
        info = f"Seed {image.seed} · {image.width}x{image.height} · model {result.model}"
        if result.warnings:
            info += "\n\n" + "\n".join(f"⚠ {warning}" for warning in result.warnings)
        return str(image.path), image.seed, info

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\nText to image, on your own machine.")
        banner = gr.Markdown(banner_text(studio))
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=3, placeholder="a lighthouse at dawn")
                seed = gr.Number(label="Seed (-1 for random)", value=-1, precision=0)
                steps = gr.Slider(
                    label="Steps",
                    minimum=1,
                    maximum=studio.model().preset.max_steps,
                    value=studio.model().preset.steps,
                    step=1,
                )
                button = gr.Button("Generate", variant="primary")
            with gr.Column():
                output = gr.Image(label="Result", type="filepath", format="png")
                used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
                details = gr.Markdown(label="Details")
        button.click(
            generate,
            inputs=[prompt, seed, steps],
            outputs=[output, used_seed, details],
            api_name="generate",
            concurrency_id="gpu",
            concurrency_limit=1,
        )
        app.load(lambda: banner_text(studio), outputs=banner, api_visibility="private")
    return app


def launch(settings: Settings, **kwargs):
    """Start the app on ``settings.host:settings.port``; extra kwargs go to ``Blocks.launch``."""
    app = build_app(Studio(settings)).queue(max_size=64)
    return app.launch(
        server_name=settings.host,
        server_port=settings.port,
        run_history=False,
        footer_links=["api"],
        **kwargs,
    )
