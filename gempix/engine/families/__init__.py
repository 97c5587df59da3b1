"""Current model families, each with a tiny offline build loaded through ``from_pretrained``.

One module per family holds its published full-size configs (with their sources) and its tiny
builder: ``flux2_klein`` (FLUX.2 [klein] 4B), ``z_image`` (Z-Image-Turbo), ``qwen_image_edit``
(Qwen-Image-Edit-2511). ``qwen_text`` holds the Qwen tokenizer, processor and text-encoder
configs they share; ``tiny_build`` the build-once folder logic. docs/models.md describes the
families; ``benchmarks/bench_families.py`` counts the full-size parameters.

Library use::

    folder = build_tiny_flux2_klein(models_dir / "tiny-flux2-klein")   # once; then cached
    pipe = load_family("flux2-klein", folder)                            # Flux2KleinPipeline
    inpaint = load_family("flux2-klein", folder, task="inpaint")         # same weights

Like ``tiny``, the tiny families draw noise, not pictures: random weights at toy width, but
every structural rule the pipelines and GemPix can see (scale factors, patching, token layout,
reference images, processors) is the real one. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from ...errors import ValidationError
from . import flux2_klein, qwen_image_edit, qwen_text, z_image
from .tiny_build import ensure_built

# Bump when a tiny recipe changes: folders built by an older recipe are rebuilt on next use.
RECIPE_VERSION = 1
FAMILIES: dict[str, ModuleType] = {
    module.NAME: module for module in (flux2_klein, z_image, qwen_image_edit)
}


def family(name: str) -> ModuleType:
    """The module of a family by its preset name, or a ValidationError naming the choices."""
    if name not in FAMILIES:
        raise ValidationError(f"model family must be one of {', '.join(FAMILIES)}, not {name!r}")
    return FAMILIES[name]


def _write(module: ModuleType, folder: Path) -> None:
    pipe = module.build_tiny()
    pipe.save_pretrained(folder, safe_serialization=True)
    if "processor" in pipe.components:
        # Name the stock class, as the published repos do: the folder then loads with plain
        # transformers wherever torchvision is installed, and through load_family without it.
        index_file = folder / "model_index.json"
        index = json.loads(index_file.read_text())
        index["processor"] = ["transformers", "Qwen2VLProcessor"]
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def build_tiny_family(name: str, folder: Path) -> Path:
    """Build the tiny ``name`` family into ``folder`` unless an up-to-date build is there."""
    module = family(name)
    return ensure_built(folder, name, RECIPE_VERSION, lambda staging: _write(module, staging))


def build_tiny_flux2_klein(folder: Path) -> Path:
    return build_tiny_family(flux2_klein.NAME, folder)


def build_tiny_z_image(folder: Path) -> Path:
    return build_tiny_family(z_image.NAME, folder)


def build_tiny_qwen_image_edit(folder: Path) -> Path:
    return build_tiny_family(qwen_image_edit.NAME, folder)


def load_family(
    name: str, source: str | Path, task: str | None = None, dtype=None, **kwargs: Any
) -> Any:
    """The family's pipeline for ``task`` (default: its first), from a folder or repo id.

    Works for the tiny folders and for the published repos alike. Qwen-Image-Edit's processor
    is loaded by ``qwen_text.load_processor`` and passed in, so torchvision is not needed.
    ``kwargs`` go to ``from_pretrained`` (e.g. ``local_files_only``).
    """
    import diffusers

    module = family(name)
    task = task or next(iter(module.PIPELINES))
    if task not in module.PIPELINES:
        raise ValidationError(
            f"task for {name} must be one of {', '.join(module.PIPELINES)}, not {task!r}"
        )
    pipeline_class = getattr(diffusers, module.PIPELINES[task])
    if "processor" in pipeline_class._get_signature_keys(pipeline_class)[0]:
        kwargs["processor"] = qwen_text.load_processor(
            source, subfolder="processor", local_files_only=kwargs.get("local_files_only", False)
        )
    if dtype is not None:
        kwargs["dtype"] = dtype
    return pipeline_class.from_pretrained(str(source), **kwargs)


def full_size_components(name: str) -> dict[str, Any]:
    """The family's published denoiser, VAE and text encoder (``FULL_SIZE``), built on the meta
    device: every parameter has its shape and dtype but no memory, so 20B costs nothing."""
    import diffusers
    import torch
    import transformers

    parts = {}
    with torch.device("meta"):
        for part, (class_name, config) in family(name).FULL_SIZE.items():
            if hasattr(diffusers, class_name):
                parts[part] = getattr(diffusers, class_name)(**config)
            else:  # a transformers model takes its config object
                model_class = getattr(transformers, class_name)
                parts[part] = model_class(model_class.config_class(**config))
    return parts
