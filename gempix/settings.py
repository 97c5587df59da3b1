"""The one place that reads the environment.

Every setting is declared once in ``SETTINGS`` (name, env vars, default, help, parser), the
way Datasette declares its settings. Front doors build one ``Settings`` with
``Settings.load(**overrides)`` and pass it down; tests build theirs on ``tmp_path``. A bad value
fails at start with a message naming the variable and what it accepts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import SettingsError


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


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    env: tuple[str, ...]
    default: Any
    help: str
    parse: Callable[[str], Any]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "model",
        ("GEMPIX_MODEL",),
        "auto",
        "Model preset (auto, sd-turbo, sdxl-turbo, sdxl, flux-schnell, tiny), a diffusers "
        "repo id, or a local folder.",
        _text,
    ),
    Setting(
        "data_dir",
        ("GEMPIX_DATA_DIR",),
        "./gempix-data",
        "Where images, the database, the tiny model and the server secret live.",
        _text,
    ),
    Setting(
        "device",
        ("GEMPIX_DEVICE",),
        "auto",
        "Where the model runs: auto picks cuda, then mps, then cpu.",
        _choice("auto", "cpu", "cuda", "mps"),
    ),
    Setting(
        "dtype",
        ("GEMPIX_DTYPE",),
        "auto",
        "Weight precision: auto is float16 on cuda/mps and float32 on cpu.",
        _choice("auto", "float32", "float16", "bfloat16"),
    ),
    Setting(
        "host",
        ("GRADIO_SERVER_NAME", "GEMPIX_HOST"),
        "127.0.0.1",
        "Address the web app listens on (0.0.0.0 to accept other machines).",
        _text,
    ),
    Setting(
        "port",
        ("GRADIO_SERVER_PORT", "PORT"),
        7860,
        "TCP port of the web app; hosts that set PORT are honoured.",
        _int_range(1, 65535),
    ),
    Setting(
        "metadata_prompt",
        ("GEMPIX_METADATA_PROMPT",),
        True,
        "Write the prompt into PNG metadata. Off leaves prompt and negative prompt out.",
        _boolean,
    ),
    Setting(
        "hub_timeout",
        ("GEMPIX_HUB_TIMEOUT",),
        10,
        "Seconds to wait for the Hugging Face Hub before treating it as unreachable.",
        _int_range(1, 120),
    ),
    Setting(
        "analytics_k",
        ("GEMPIX_ANALYTICS_K",),
        10,
        "Smallest number of distinct visitors an analytics cell needs to be shown (min 5).",
        _int_range(5, 1_000_000),
    ),
    Setting(
        "retention_days",
        ("GEMPIX_RETENTION_DAYS",),
        30,
        "Days the API request log is kept before it is purged.",
        _int_range(1, 3650),
    ),
    Setting(
        "min_age",
        ("GEMPIX_MIN_AGE",),
        13,
        "Minimum age a user confirms before their first generation.",
        _int_range(13, 120),
    ),
    Setting(
        "esrgan_weights",
        ("GEMPIX_ESRGAN_WEIGHTS",),
        "",
        "ESRGAN-family upscaler file (.safetensors/.pth) for 2k/4k output; empty uses "
        "Real-ESRGAN x4plus from the Hub cache (fetch it with: gempix download esrgan).",
        str,
    ),
    Setting(
        "secret",
        ("GEMPIX_SECRET",),
        "",
        "Server secret for user ids; empty generates one into the data dir (mode 0600).",
        str,
    ),
    Setting(
        "rate_generate",
        ("GEMPIX_RATE_GENERATE",),
        "10/minute",
        "API generations per key (moving window).",
        _rate,
    ),
    Setting(
        "rate_requests",
        ("GEMPIX_RATE_REQUESTS",),
        "600/hour",
        "API requests per key (moving window).",
        _rate,
    ),
    Setting(
        "rate_anonymous",
        ("GEMPIX_RATE_ANONYMOUS",),
        "120/minute",
        "API requests without a valid key, per client (address kept in memory only).",
        _rate,
    ),
    Setting(
        "rate_web",
        ("GEMPIX_RATE_WEB",),
        "120/minute",
        "Web app events started per client; off disables.",
        _rate,
    ),
    Setting(
        "redis_url",
        ("GEMPIX_REDIS_URL",),
        "",
        "redis://... to share rate-limit counters between workers; empty keeps them in memory.",
        str,
    ),
    Setting(
        "max_body_bytes",
        ("GEMPIX_MAX_BODY_BYTES",),
        50331648,
        "Largest API request body in bytes.",
        _int_range(1024, 2**31),
    ),
    Setting(
        "max_upload_bytes",
        ("GEMPIX_MAX_UPLOAD_BYTES",),
        8388608,
        "Largest uploaded image (decoded bytes).",
        _int_range(1024, 25 * 1024 * 1024),
    ),
    Setting(
        "max_upload_pixels",
        ("GEMPIX_MAX_UPLOAD_PIXELS",),
        16777216,
        "Largest uploaded image in pixels.",
        _int_range(1, 16777216),
    ),
    Setting(
        "max_images", ("GEMPIX_MAX_IMAGES",), 8, "Images per API generation.", _int_range(1, 8)
    ),
    Setting(
        "generate_timeout",
        ("GEMPIX_GENERATE_TIMEOUT",),
        300,
        "Seconds an API generation may take, queueing included (then 504).",
        _int_range(1, 86400),
    ),
    Setting(
        "max_queue",
        ("GEMPIX_MAX_QUEUE",),
        16,
        "API generations waiting for the GPU (then 503).",
        _int_range(1, 10000),
    ),
    Setting(
        "memory",
        ("GEMPIX_MEMORY",),
        "auto",
        "Memory mode: high (all on the device), balanced (model offload, VAE tiling), low "
        "(sequential offload, attention slicing); auto picks the fastest that fits.",
        _choice("auto", "high", "balanced", "low"),
    ),
    Setting(
        "compile",
        ("GEMPIX_COMPILE",),
        "off",
        "torch.compile the UNet/transformer: off, full, or regional (its repeated blocks only).",
        _choice("off", "full", "regional"),
    ),
    Setting(
        "warmup",
        ("GEMPIX_WARMUP",),
        False,
        "gempix serve generates one image at start-up (and compiles, with GEMPIX_COMPILE), so no "
        "user's first request pays for it.",
        _boolean,
    ),
    Setting(
        "previews",
        ("GEMPIX_PREVIEWS",),
        True,
        "Live previews of each denoising step in the web app (a tiny TAESD decoder).",
        _boolean,
    ),
    Setting(
        "max_batch",
        ("GEMPIX_MAX_BATCH",),
        4,
        "Most images in one pipeline call of same-shape requests (gempix batch, and web app and "
        "API requests waiting together); 1: off.",
        _int_range(1, 64),
    ),
    Setting(
        "threads",
        ("GEMPIX_THREADS",),
        0,
        "torch threads on a CPU; 0 uses the physical cores this process may run on.",
        _int_range(0, 1024),
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with ``Settings.load()``; never read ``os.environ`` elsewhere."""

    model: str = "auto"
    data_dir: Path = Path("./gempix-data")
    device: str = "auto"
    dtype: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    metadata_prompt: bool = True
    hub_timeout: int = 10
    analytics_k: int = 10
    retention_days: int = 30
    min_age: int = 13
    esrgan_weights: str = ""
    secret: str = ""

    rate_generate: str = "10/minute"
    rate_requests: str = "600/hour"
    rate_anonymous: str = "120/minute"
    rate_web: str = "120/minute"
    redis_url: str = ""
    max_body_bytes: int = 50331648
    max_upload_bytes: int = 8388608
    max_upload_pixels: int = 16777216
    max_images: int = 8
    generate_timeout: int = 300
    max_queue: int = 16
    memory: str = "auto"
    compile: str = "off"
    warmup: bool = False
    previews: bool = True
    max_batch: int = 4
    threads: int = 0

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then env vars, then explicit overrides (``None`` overrides are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            source, raw = "default", setting.default
            for var in setting.env:
                if environ.get(var, "").strip():
                    source, raw = var, environ[var]
                    break
            if overrides.get(setting.name) is not None:
                source, raw = f"--{setting.name.replace('_', '-')}", overrides[setting.name]
            values[setting.name] = _parse(setting, source, raw)
        unknown = set(overrides) - set(_BY_NAME)
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


def _parse(setting: Setting, source: str, raw: Any) -> Any:
    if raw is setting.default:
        return raw
    try:
        return setting.parse(raw if isinstance(raw, str) else str(raw))
    except ValueError as error:
        raise SettingsError(f"Invalid value {str(raw)!r} for {source}: {error}") from None
