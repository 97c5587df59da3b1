"""The one place that reads the environment.

Every setting is declared once, as a field of ``Settings`` with its env vars, default, help
and parser (``SETTINGS`` lists them as a table, the way Datasette declares its settings); the
HTTP API's limits are the fields marked ``api`` (``api.config.ApiConfig``). Front doors build
one ``Settings`` with ``Settings.load(**overrides)`` and pass it down; tests build theirs on
``tmp_path``. A bad value fails at start with a message naming the variable and what it
accepts.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .params import MAX_IMAGES


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in allowed:
            raise ValueError(f"allowed values: {', '.join(allowed)}")
        return value

    parse.__doc__ = " | ".join(allowed)
    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return number

    parse.__doc__ = f"{low}..{high}"
    return parse


def _boolean(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("allowed values: true, false (or 1, 0, yes, no, on, off)")


def _rate(value: str) -> str:
    from limits import parse

    value = str(value).strip()
    if value != "off":
        try:
            parse(value)
        except ValueError:
            raise ValueError("expected a rate such as 10/minute or 600/hour, or off") from None
    return value


def _text(value: str) -> str:
    if not str(value).strip():
        raise ValueError("must not be empty")
    return str(value).strip()


def _number_range(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
        if not low <= number <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return number

    return parse


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting as the table lists it: its name, env vars, default, help and parser."""

    name: str
    env: tuple[str, ...]
    default: Any
    help: str
    parse: Callable[[str], Any]
    api: bool  # one of the HTTP API's limits (``api.config.ApiConfig``)


def setting(
    default: Any, env: tuple[str, ...], help: str, parse: Callable[[str], Any], api: bool = False
) -> Any:
    """A ``Settings`` field carrying what the table needs to read, check and document it."""
    return dataclasses.field(
        default=default, metadata={"env": env, "help": help, "parse": parse, "api": api}
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings: every setting declared once, here. Build with ``Settings.load()``;
    never read ``os.environ`` elsewhere. ``SETTINGS`` is this class as a table."""

    model: str = setting(
        "auto",
        ("GEMPIX_MODEL",),
        "Model preset (auto, sd-turbo, sdxl-turbo, sdxl, flux-schnell, flux2-klein, "
        "z-image-turbo, qwen-image-edit, tiny, tiny-<family>; gempix models lists them), a "
        "diffusers repo id, or a local folder.",
        _text,
    )
    data_dir: Path = setting(
        Path("./gempix-data"),
        ("GEMPIX_DATA_DIR",),
        "Where images, the database, the tiny model and the server secret live.",
        _text,
    )
    device: str = setting(
        "auto",
        ("GEMPIX_DEVICE",),
        "Where the model runs: auto picks cuda, then mps, then cpu.",
        _choice("auto", "cpu", "cuda", "mps"),
    )
    dtype: str = setting(
        "auto",
        ("GEMPIX_DTYPE",),
        "Weight precision: auto is float16 on cuda/mps and float32 on cpu.",
        _choice("auto", "float32", "float16", "bfloat16"),
    )
    host: str = setting(
        "127.0.0.1",
        ("GRADIO_SERVER_NAME", "GEMPIX_HOST"),
        "Address the web app listens on (0.0.0.0 to accept other machines).",
        _text,
    )
    port: int = setting(
        7860,
        ("GRADIO_SERVER_PORT", "PORT"),
        "TCP port of the web app; hosts that set PORT are honoured.",
        _int_range(1, 65535),
    )
    metadata_prompt: bool = setting(
        True,
        ("GEMPIX_METADATA_PROMPT",),
        "Write the prompt into PNG metadata. Off leaves prompt and negative prompt out.",
        _boolean,
    )
    hub_timeout: int = setting(
        10,
        ("GEMPIX_HUB_TIMEOUT",),
        "Seconds to wait for the Hugging Face Hub before treating it as unreachable.",
        _int_range(1, 120),
    )
    analytics_k: int = setting(
        10,
        ("GEMPIX_ANALYTICS_K",),
        "Smallest number of distinct visitors an analytics cell needs to be shown (min 5).",
        _int_range(5, 1_000_000),
    )
    retention_days: int = setting(
        30,
        ("GEMPIX_RETENTION_DAYS",),
        "Days the API request log is kept before it is purged.",
        _int_range(1, 3650),
    )
    min_age: int = setting(
        13,
        ("GEMPIX_MIN_AGE",),
        "Minimum age a user confirms before their first generation.",
        _int_range(13, 120),
    )
    esrgan_weights: str = setting(
        "",
        ("GEMPIX_ESRGAN_WEIGHTS",),
        "ESRGAN-family upscaler file (.safetensors/.pth) for 2k/4k output; empty uses "
        "Real-ESRGAN x4plus from the Hub cache (fetch it with: gempix download esrgan).",
        str,
    )
    secret: str = setting(
        "",
        ("GEMPIX_SECRET",),
        "Server secret for user ids; empty generates one into the data dir (mode 0600).",
        str,
    )
    rate_generate: str = setting(
        "10/minute",
        ("GEMPIX_RATE_GENERATE",),
        "API generations per key (moving window).",
        _rate,
        api=True,
    )
    rate_requests: str = setting(
        "600/hour",
        ("GEMPIX_RATE_REQUESTS",),
        "API requests per key (moving window).",
        _rate,
        api=True,
    )
    rate_anonymous: str = setting(
        "120/minute",
        ("GEMPIX_RATE_ANONYMOUS",),
        "API requests without a valid key, per client (address kept in memory only).",
        _rate,
        api=True,
    )
    rate_web: str = setting(
        "120/minute",
        ("GEMPIX_RATE_WEB",),
        "Web app events started per client; off disables.",
        _rate,
        api=True,
    )
    redis_url: str = setting(
        "",
        ("GEMPIX_REDIS_URL",),
        "redis://... to share rate-limit counters between workers; empty keeps them in memory.",
        str,
        api=True,
    )
    max_body_bytes: int = setting(
        50331648,
        ("GEMPIX_MAX_BODY_BYTES",),
        "Largest API request body in bytes.",
        _int_range(1024, 2**31),
        api=True,
    )
    max_upload_bytes: int = setting(
        8388608,
        ("GEMPIX_MAX_UPLOAD_BYTES",),
        "Largest uploaded image (decoded bytes).",
        _int_range(1024, 25 * 1024 * 1024),
        api=True,
    )
    max_upload_pixels: int = setting(
        16777216,
        ("GEMPIX_MAX_UPLOAD_PIXELS",),
        "Largest uploaded image in pixels.",
        _int_range(1, 16777216),
        api=True,
    )
    max_images: int = setting(
        MAX_IMAGES,
        ("GEMPIX_MAX_IMAGES",),
        "Images per API generation.",
        _int_range(1, MAX_IMAGES),
        api=True,
    )
    generate_timeout: float = setting(
        300.0,
        ("GEMPIX_GENERATE_TIMEOUT",),
        "Seconds an API generation may take, queueing included (then 504).",
        _number_range(0.001, 86400),
        api=True,
    )
    max_queue: int = setting(
        16,
        ("GEMPIX_MAX_QUEUE",),
        "API generations waiting for the GPU (then 503).",
        _int_range(1, 10000),
        api=True,
    )
    memory: str = setting(
        "auto",
        ("GEMPIX_MEMORY",),
        "Memory mode: high (all on the device), balanced (model offload, VAE tiling), low "
        "(sequential offload, attention slicing); auto picks the fastest that fits.",
        _choice("auto", "high", "balanced", "low"),
    )
    compile: str = setting(
        "off",
        ("GEMPIX_COMPILE",),
        "torch.compile the UNet/transformer: off, full, or regional (its repeated blocks only).",
        _choice("off", "full", "regional"),
    )
    warmup: bool = setting(
        False,
        ("GEMPIX_WARMUP",),
        "gempix serve generates one image at start-up (and compiles, with GEMPIX_COMPILE), so no "
        "user's first request pays for it.",
        _boolean,
    )
    previews: bool = setting(
        True,
        ("GEMPIX_PREVIEWS",),
        "Live previews of each denoising step in the web app (a tiny TAESD decoder).",
        _boolean,
    )
    max_batch: int = setting(
        4,
        ("GEMPIX_MAX_BATCH",),
        "Most images in one pipeline call of same-shape requests (gempix batch, and web app and "
        "API requests waiting together); 1: off.",
        _int_range(1, 64),
        api=True,
    )
    threads: int = setting(
        0,
        ("GEMPIX_THREADS",),
        "torch threads on a CPU; 0 uses the physical cores this process may run on.",
        _int_range(0, 1024),
    )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then env vars, then explicit overrides (``None`` overrides are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in SETTINGS:
            source, raw = "default", item.default
            for var in item.env:
                if environ.get(var, "").strip():
                    source, raw = var, environ[var]
                    break
            if overrides.get(item.name) is not None:
                source, raw = f"--{item.name.replace('_', '-')}", overrides[item.name]
            values[item.name] = _parse(item, source, raw)
        unknown = set(overrides) - {item.name for item in SETTINGS}
        if unknown:
            raise SettingsError(f"Unknown setting(s): {', '.join(sorted(unknown))}")
        values["data_dir"] = Path(values["data_dir"]).expanduser()
        return cls(**values)

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(name=field.name, default=field.default, **field.metadata)
    for field in dataclasses.fields(Settings)
)


def _parse(setting: Setting, source: str, raw: Any) -> Any:
    if raw is setting.default:
        return raw
    try:
        return setting.parse(raw if isinstance(raw, str) else str(raw))
    except ValueError as error:
        raise SettingsError(f"Invalid value {str(raw)!r} for {source}: {error}") from None
