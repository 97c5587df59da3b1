"""The core: ``Studio``, the one thing every front door (web app, HTTP API, CLI, notebook) calls.

It owns what "generate" and "upscale" mean (where images go, what they carry, who may make
them, what is counted) and composes the services for the rest: ``studio.images``,
``studio.characters``, ``studio.privacy``, ``studio.keys``, ``studio.analytics``. Front doors
translate to and from these calls and nothing else, so validation, metadata, consent, limits
and deletion are identical everywhere (docs/architecture.md). ``engine/`` knows nothing of
users or files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__, editing, references
from .analytics import Analytics, VisitorHasher, make_event
from .budget import GenerationBudget
from .catalogue import ModelInfo, catalogue
from .characters import Characters
from .content_credentials import ContentCredentials, Source, request_sources
from .engine import workers, zerogpu
from .engine.batching import run_batched
from .engine.coalesce import Coalescer
from .engine.detail import DetailJob
from .engine.edit import plan_edit, run_edit
from .engine.esrgan import download_default
from .engine.generate import Progress, prompt_warnings
from .engine.models import AutoPick, LoadedModel, ModelManager, auto_pick
from .engine.models import download as download_model
from .engine.presets import ModelPreset
from .engine.previews import OnPreview
from .engine.request import Plan, plan
from .engine.runtime import resolve_device
from .engine.upscale import UPSCALE_INFO, Upscaler, check_backend, upscale_target, upscaler_for
from .errors import GemPixError, ValidationError
from .filemodes import private_dir
from .gallery import Images
from .images import load_image
from .keys import Keys
from .params import EditRequest, GenerationRequest
from .pnginfo import ImageInfo, read_info
from .privacy.files import ServedCopies
from .privacy.identity import LOCAL_USER
from .privacy.service import Privacy
from .settings import Settings
from .store import Store
from .styles import apply_styles, load_presets

log = logging.getLogger("gempix.service")
NEGATIVE_IGNORED = (
    "The negative prompt has no effect at guidance 1 or below (turbo models); "
    "raise guidance to use it."
)


@dataclasses.dataclass(frozen=True)
class GeneratedImage:
    id: str
    path: Path
    seed: int
    width: int
    height: int
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    images: list[GeneratedImage]
    model: str
    warnings: list[str]
    notice: str  # e.g. "serving the offline tiny model"; empty when all is as asked
    duration_ms: float


# Scheduler classes under the names image tools already use in "parameters" text.
SAMPLER_NAMES = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "FlowMatchEulerDiscreteScheduler": "Euler",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DDIMScheduler": "DDIM",
    "LCMScheduler": "LCM",
}


def sampler_name(scheduler: Any) -> str:
    name = type(scheduler).__name__
    return SAMPLER_NAMES.get(name, name)


def image_params(
    loaded: LoadedModel, request: GenerationRequest, resolved: Plan, index: int
) -> dict[str, Any]:
    """Every parameter needed to regenerate image ``index`` of a batch on its own."""
    return {
        "prompt": resolved.prompt,
        "negative_prompt": resolved.negative_prompt,
        "seed": resolved.seeds[index],
        "steps": resolved.steps,
        "guidance": resolved.guidance,
        "sampler": sampler_name(loaded.pipe.scheduler),
        "width": resolved.target[0],
        "height": resolved.target[1],
        "base_width": resolved.width,
        "base_height": resolved.height,
        "aspect": request.aspect,
        "resolution": request.resolution,
        "upscaled": resolved.upscaled,
        "upscaler": None,  # what ran: set from the upscaler's report (Studio.render)
        "img2img": resolved.init_image is not None,
        "strength": resolved.strength if resolved.init_image is not None else None,
        "init_sha256": resolved.init_sha256,
        "model": loaded.name,
        "styles": list(request.styles),
        "batch_index": index,
        "batch_size": resolved.num_images,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "generator": f"GemPix {__version__}",
        "ai_generated": True,
    }


def styled_request(request: GenerationRequest, preset: ModelPreset) -> GenerationRequest:
    """Apply the request's styles; their recommended values fill only what the user left unset.

    Turbo models (guidance 0 by design) keep their own steps and guidance.
    """
    if not request.styles:
        return request
    styled = apply_styles(request.prompt, request.negative_prompt, request.styles)
    recommended = styled.recommended if preset.guidance > 0 else {}
    sized = request.width is not None or request.height is not None
    steps = recommended.get("steps")
    return request.model_copy(
        update={
            "prompt": styled.prompt,
            "negative_prompt": styled.negative,
            "styles": styled.names,
            "guidance": request.guidance
            if request.guidance is not None
            else recommended.get("guidance"),
            "steps": request.steps
            if request.steps is not None or steps is None
            else min(steps, preset.max_steps),
            "aspect": request.aspect or (None if sized else styled.recommended.get("aspect")),
        }
    )


@dataclasses.dataclass(frozen=True)
class _Job:
    """A request resolved against the loaded model, ready for the pipeline."""

    loaded: LoadedModel
    styled: GenerationRequest
    plan: Plan
    warnings: list[str]
    refs: references.Resolved
    started: float
    sources: list[Source]  # the pictures it was made from: its content credentials' ingredients
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. an edit's own


class Studio:
    """One per process: settings, the shared model, the store, the visitor hasher, and the
    services front doors call (``images``, ``characters``, ``privacy``, ``keys``, ``analytics``).

    The store opens on first use, so commands that never touch it (``gempix models``) never
    take the data directory's single-writer lock. ``models``: a ModelManager to share with
    other studios (tests load the tiny model once for all of them); default, one of its own.
    """

    def __init__(
        self, settings: Settings, store: Store | None = None, models: ModelManager | None = None
    ):
        self.settings = settings
        self.models = models or ModelManager(settings)
        self.gpu_line = Coalescer(settings.max_batch)
        self._upscaler: tuple[LoadedModel, Upscaler] | None = None
        self.visitors = VisitorHasher()
        self.served = ServedCopies(settings)
        self.budget = GenerationBudget(settings.rate_user_generate)
        self._store = store
        self._store_lock = threading.Lock()
        self.images = Images(self)
        self.characters = Characters(self)
        self.privacy = Privacy(self)
        self.keys = Keys(self)
        self.analytics = Analytics(self)
        self.provenance = ContentCredentials(self)

    @property
    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                private_dir(self.settings.data_dir)  # all below it is personal (filemodes.py)
                self._store = Store.open(self.settings)
            return self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def model(self) -> LoadedModel:
        """The model requests are planned with: this process's, or the remote workers'."""
        if self.settings.workers:
            return workers.connect(self.settings).model()
        return self.models.get()

    def catalogue(self) -> list[ModelInfo]:
        """Every model preset: size, memory per mode, license, what it reads, whether it is
        on this machine (``gempix.catalogue``)."""
        return catalogue(self.settings.models_dir)

    def auto_pick(self) -> AutoPick:
        """What ``--model auto`` picks on this machine's device and free memory, and why."""
        return auto_pick(resolve_device(self.settings.device))

    def download(self, model: str) -> str:
        """Fetch ``model`` (a preset, a repo id, or ``esrgan``) for offline use; where it went."""
        if model == "esrgan":
            return str(download_default(self.settings.hub_timeout))
        return download_model(self.settings, model)

    def upscaler(self, loaded: LoadedModel) -> Upscaler:
        """The upscaler that goes with the loaded model (the tiny model brings its own)."""
        if self._upscaler is None or self._upscaler[0] is not loaded:
            self._upscaler = (loaded, upscaler_for(self.settings, loaded))
        return self._upscaler[1]

    def upscale(
        self,
        generation_id: str,
        *,
        resolution: str = "4k",
        width: int | None = None,
        height: int | None = None,
        upscaler: str = "auto",
        user_id: str = LOCAL_USER,
        front_door: str = "cli",
        progress: Progress | None = None,
    ) -> GenerationResult:
        """Upscale one of the user's generations into a new generation linked to it.

        The new row's ``source_id`` names the source; its params are the source's plus what
        the upscaler did. ``detail`` redraws with the prompt and seed the source was made with.
        Someone else's generation id is NotFound, like one that does not exist.
        """
        started = time.perf_counter()
        backend = check_backend(upscaler)
        if backend == "detail" and self.settings.workers:
            raise ValidationError(
                "upscaler: detail redraws with the model, which the remote workers "
                "(GEMPIX_WORKERS) hold; use esrgan or lanczos."
            )
        self.privacy.admit(user_id)
        source = self.images.get(user_id, generation_id)
        picture = load_image(source["file_path"], "image")
        target = upscale_target(picture.size, resolution, width, height)
        params = dict(source["params"] or {})
        loaded = self.model()
        warnings = []
        detail = None
        if backend == "detail":
            detail = DetailJob(
                loaded,
                prompt=source["prompt"] or "",
                negative_prompt=source["negative_prompt"] or "",
                seed=int(source["seed"] or 0),
                steps=int(source["steps"] or loaded.preset.steps),
                guidance=float(source["guidance"] or 0.0),
            )
            if source["model"] != loaded.name:
                warnings.append(
                    f"The detail pass used {loaded.name}; the image was made with "
                    f"{source['model']}."
                )
        with self.gpu_line.exclusive():
            result = zerogpu.upscale(
                loaded, self.upscaler(loaded), picture, target, backend, progress, detail
            )
        done = result.info[UPSCALE_INFO]
        params.update(
            width=target[0],
            height=target[1],
            upscaled=True,
            upscaler=done["backend"],
            upscale=done,
            source_id=generation_id,
            batch_index=0,
            batch_size=1,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            generator=f"GemPix {__version__}",
            ai_generated=True,
        )
        image_id = uuid.uuid4().hex
        facts = self.provenance.facts(
            user_id,
            params,
            [Source(source["file_path"], "upscale source")],
            action="c2pa.edited" if done["backend"] == "detail" else "c2pa.resized",
            ai_edit=done["backend"] == "detail",  # the detail pass redraws with the model
        )
        path = self.provenance.save(
            result, self.settings.images_dir / user_id / f"{image_id}.png", params, facts
        )
        image = GeneratedImage(image_id, path, params["seed"], *result.size, params)
        duration_ms = (time.perf_counter() - started) * 1000
        record = generation_record(image, user_id, front_door, duration_ms)
        try:
            self.store.record_generations([{**record, "source_id": generation_id}])
        except GemPixError:
            path.unlink(missing_ok=True)
            raise
        return GenerationResult(
            images=[image],
            model=loaded.name,
            warnings=warnings,
            notice=loaded.notice,
            duration_ms=duration_ms,
        )

    def generate(
        self,
        request: GenerationRequest,
        *,
        user_id: str = LOCAL_USER,
        front_door: str = "cli",
        progress: Progress | None = None,
        on_preview: OnPreview | None = None,
        admitted: bool = False,
    ) -> GenerationResult:
        """Admit, generate, save PNGs, and commit the records before returning.

        ``admitted``: the caller ran ``admit`` already (the API, before queueing), so the
        budget is not spent twice; the user is still checked again.

        Every attempt leaves one anonymous usage event (unless the user objected); a failure
        is re-raised after its event. Files written for a user who was erased meanwhile are
        removed again, so a generation racing an erasure re-creates nothing.
        ``on_preview(step, total, image)`` gets a small PIL preview after every denoising step.
        """
        return self._attempt(
            request,
            user_id,
            front_door,
            admitted,
            progress,
            lambda started, watched: self.render(
                request, user_id=user_id, progress=watched, started=started, on_preview=on_preview
            ),
        )

    def edit(
        self,
        request: EditRequest,
        *,
        user_id: str = LOCAL_USER,
        front_door: str = "cli",
        progress: Progress | None = None,
        on_preview: OnPreview | None = None,
        admitted: bool = False,
    ) -> GenerationResult:
        """Edit a picture (by instruction, inpaint or outpaint; ``editing.py``): admitted,
        saved, signed, recorded and counted like ``generate``. Each result keeps its source,
        mask and references beside it (registered as its copies: its deletion deletes them),
        names them in its parameters (``edit``) and lists them as the ingredients of its
        content credentials (the source as its parent)."""
        if not isinstance(request, EditRequest):
            raise ValidationError("request: expected an EditRequest.")
        return self._attempt(
            request,
            user_id,
            front_door,
            admitted,
            progress,
            lambda started, watched: self._edit(request, user_id, watched, on_preview, started),
        )

    def image_info(self, source: Any) -> ImageInfo:
        """The generation parameters a picture carries (GemPix, A1111/Forge/Fooocus,
        ComfyUI; ``pnginfo.py``), in the request model's names."""
        return read_info(source)

    def _attempt(self, request, user_id, front_door, admitted, progress, work) -> GenerationResult:
        """Admit (only re-check the user when the caller ``admitted`` already), run
        ``work(started, progress)`` with a progress an erasure stops, commit the records; one
        usage event either way."""
        started = time.perf_counter()
        if admitted:
            self.privacy.admit(user_id)
        else:
            self.admit(request, user_id)
        progress = self.privacy.watch(user_id, progress)  # an erasure stops it at its next step
        try:
            result = work(started, progress)
            self.record(result, user_id=user_id, front_door=front_door)
        except GemPixError as error:
            self.record_usage(request, user_id, front_door, started, error=type(error).__name__)
            raise
        self.record_usage(request, user_id, front_door, started, result)
        return result

    def _edit(self, request, user_id, progress, on_preview, started) -> GenerationResult:
        """Read the pictures, plan against the model, draw, save the results and sources."""
        loaded = self.model()
        source = request.source
        if request.source_id is not None:
            source = self.images.get(user_id, request.source_id)["file_path"]
        inputs = editing.read_inputs(request, source)
        styled = styled_request(request, loaded.preset)
        job = plan_edit(styled, loaded.preset, inputs.canvas, inputs.mask, inputs.references)
        warnings = prompt_warnings(loaded, job.plan)
        store = self.store if request.character else None
        # The edit's own references go to the model with the source (engine/edit.run_edit).
        asked = request.model_copy(update={"references": ()})
        refs = references.resolve(store, loaded, asked, user_id, self.settings.hub_timeout)
        with self.gpu_line.exclusive():
            pictures = run_edit(loaded, job, progress, refs.conditioning, on_preview)
        extra = {
            "edit": inputs.params(request),
            "width": inputs.canvas.width,
            "height": inputs.canvas.height,
            "strength": request.strength,
        }
        result = self._save(
            _Job(
                loaded,
                styled,
                job.plan,
                warnings,
                refs,
                started,
                inputs.sources(source, request.style_image),
                extra,
            ),
            pictures,
            user_id,
        )
        for image in result.images:
            folder = self.settings.images_dir / user_id / editing.SOURCES_FOLDER / image.id
            for path in editing.save_sources(folder, inputs):
                self.served.add(user_id, [image.id], path)
        return result

    def admit(self, request: Any, user_id: str) -> None:
        """May ``user_id`` make ``request`` now? (A request, an admitted user, and a user
        within their generation budget, ``budget.py``.)"""
        if not isinstance(request, GenerationRequest):
            raise ValidationError("request: expected a GenerationRequest.")
        self.privacy.admit(user_id)
        self.budget.spend(user_id)

    def render(
        self,
        request: GenerationRequest,
        *,
        user_id: str = LOCAL_USER,
        progress: Progress | None = None,
        started: float | None = None,
        on_preview: OnPreview | None = None,
    ) -> GenerationResult:
        """Generate and save the PNGs, writing no database (batch workers on other ranks
        render; only the main process records). A saved character is read from the store,
        and its embeddings cached there the first time."""
        started = time.perf_counter() if started is None else started
        job = self._prepare(request, user_id, started)
        return self._save(job, self._draw(job, progress, on_preview), user_id)

    def _draw(self, job: _Job, progress=None, on_preview=None) -> list:
        """The pictures of ``job``: on the remote workers of ``GEMPIX_WORKERS``
        (``engine/workers.py``), or here, where generations waiting at the same time may
        share one call (web app, API)."""
        if self.settings.workers:
            return workers.connect(self.settings).draw(job.plan, progress, on_preview)
        upscaler = self.upscaler(job.loaded)
        if job.refs.conditioning is None and not zerogpu.enabled():
            return self.gpu_line.draw(job.loaded, job.plan, progress, upscaler, on_preview)
        return zerogpu.run(
            job.loaded,
            job.plan,
            progress,
            upscaler=upscaler,
            conditioning=job.refs.conditioning,
            on_preview=on_preview,
        )

    def render_many(
        self, requests: list[GenerationRequest], *, user_id: str = LOCAL_USER
    ) -> list[GenerationResult | GemPixError]:
        """``render`` for several requests, same-shape ones in one pipeline call of at most
        ``GEMPIX_MAX_BATCH`` images (``engine.batching``: each image keeps its own seed, so
        it matches its single render within float rounding).

        Each entry is that request's result or the GemPixError it failed with. Requests with
        a style reference or a character render alone. A shared call that fails is redone one
        request at a time, so its error lands on the request that caused it.
        """
        jobs: list[_Job | GemPixError] = []
        for request in requests:
            try:
                jobs.append(self._prepare(request, user_id, time.perf_counter()))
            except GemPixError as error:
                jobs.append(error)
        ready = [job for job in jobs if isinstance(job, _Job)]
        together = [job for job in ready if job.refs.conditioning is None]
        pictures: dict[int, list] = {}
        local = not zerogpu.enabled() and not self.settings.workers  # else one call each
        if len(together) > 1 and local:
            loaded = together[0].loaded
            with contextlib.suppress(GemPixError):
                drawn = run_batched(
                    loaded,
                    [job.plan for job in together],
                    self.settings.max_batch,
                    upscaler=self.upscaler(loaded),
                )
                pictures = {id(job): images for job, images in zip(together, drawn, strict=True)}
        outcomes: list[GenerationResult | GemPixError] = []
        for job in jobs:
            if isinstance(job, GemPixError):
                outcomes.append(job)
                continue
            try:
                images = pictures.get(id(job))
                if images is None:
                    images = self._draw(job)
                outcomes.append(self._save(job, images, user_id))
            except GemPixError as error:
                outcomes.append(error)
        return outcomes

    def _prepare(self, request, user_id, started) -> _Job:
        """The request resolved against the loaded model: styles, plan, warnings, references."""
        loaded = self.model()
        styled = styled_request(request, loaded.preset)
        resolved = plan(styled, loaded.preset)
        warnings = prompt_warnings(loaded, resolved)
        if request.negative_prompt.strip() and resolved.guidance <= 1:
            warnings.append(NEGATIVE_IGNORED)
        if self.settings.workers and references.uses_references(request):
            raise ValidationError(
                "Style references and characters are not available with remote workers "
                "(GEMPIX_WORKERS) yet: generate without them, or serve without workers."
            )
        store = self.store if request.character else None
        refs = references.resolve(store, loaded, request, user_id, self.settings.hub_timeout)
        return _Job(loaded, styled, resolved, warnings, refs, started, request_sources(styled))

    def _save(self, job: _Job, pictures: list, user_id: str) -> GenerationResult:
        """Save the pictures of ``job`` as PNGs carrying their parameters, watermarked and
        signed (``studio.provenance``; the images of one request share their manifest facts)."""
        loaded, styled, resolved, refs = job.loaded, job.styled, job.plan, job.refs
        images, facts = [], None
        for index, picture in enumerate(pictures):
            image_id = uuid.uuid4().hex
            params = image_params(loaded, styled, resolved, index)
            params.update(refs.params())
            params.update(job.extra)
            if refs.character is not None:
                score = references.consistency_score(
                    loaded, picture, refs.character, self.settings.hub_timeout
                )
                params["consistency"] = round(score, 4)
            done = picture.info.get(UPSCALE_INFO)
            if done:
                params.update(upscaler=done["backend"], upscale=done)
            facts = facts or self.provenance.facts(user_id, params, job.sources)
            path = self.provenance.save(
                picture, self.settings.images_dir / user_id / f"{image_id}.png", params, facts
            )
            images.append(GeneratedImage(image_id, path, params["seed"], *picture.size, params))
        return GenerationResult(
            images=images,
            model=loaded.name,
            warnings=job.warnings,
            notice=loaded.notice,
            duration_ms=(time.perf_counter() - job.started) * 1000,
        )

    def record(self, result: GenerationResult, *, user_id: str, front_door: str) -> None:
        """Commit the result's records; if refused (user erased meanwhile), remove its files."""
        try:
            self.store.record_generations(
                [
                    generation_record(image, user_id, front_door, result.duration_ms)
                    for image in result.images
                ]
            )
        except GemPixError:
            for image in result.images:
                image.path.unlink(missing_ok=True)
            self.served.remove(user_id, [image.id for image in result.images])  # edit sources
            for folder in (self.settings.images_dir / user_id / editing.SOURCES_FOLDER,):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):  # the folder of a user erased meanwhile
                (self.settings.images_dir / user_id).rmdir()
            self.privacy.still_active(user_id)  # erased meanwhile: 409, as documented
            raise

    def record_usage(
        self,
        request: GenerationRequest,
        user_id: str,
        front_door: str,
        started: float,
        result: GenerationResult | None = None,
        error: str = "",
    ) -> None:
        """One anonymous event per attempt (``started``: its ``perf_counter`` start), ``ok``
        with its result or the class name of its ``error``: coarse facts only, unknown style
        names as "custom". Recording never hides the error that is being reported."""
        presets = load_presets()
        try:
            event = make_event(
                visitor_hash=self.visitors.visitor_hash(user_id),
                front_door=front_door,
                model=result.model if result else self.models.loaded_name or self.settings.model,
                steps=result.images[0].params["steps"] if result else request.steps or 0,
                latency_ms=(time.perf_counter() - started) * 1000,
                styles=[name if name in presets else "custom" for name in request.styles],
                used_character=bool(request.character or request.references),
                used_style_ref=request.style_image is not None,
                resolution_class=request.resolution,
                num_images=request.num_images,
                status="ok" if result else error,
            )
            self.store.record_event(event, user_id=user_id)
        except GemPixError as error:
            if result is not None:
                raise
            log.warning("usage event not recorded: %s", error.message)


def generation_record(
    image: GeneratedImage, user_id: str, front_door: str, duration_ms: float
) -> dict[str, Any]:
    """The ``generations`` row of one saved image: user, prompt, every parameter, file."""
    params = image.params
    return {
        "id": image.id,
        "user_id": user_id,
        "created_at": params["created_at"],
        "front_door": front_door,
        "prompt": params["prompt"],
        "negative_prompt": params["negative_prompt"],
        "model": params["model"],
        "seed": image.seed,
        "steps": params["steps"],
        "guidance": params["guidance"],
        "width": image.width,
        "height": image.height,
        "params": params,
        "styles": params["styles"],
        "character_id": (params.get("character") or {}).get("id"),
        "source_id": ((params.get("edit") or {}).get("source") or {}).get("generation_id"),
        "consistency": params.get("consistency"),
        "file_path": str(image.path),
        "status": "ok",
        "duration_ms": duration_ms,
    }
