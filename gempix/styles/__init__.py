"""Style presets: a curated library of looks, as data, and the function that applies them.

A style is a prompt *template* containing ``{prompt}`` exactly once, a negative prompt, and
optional recommended parameters. The packaged library lives in ``presets.json`` next to this
module and is validated when it is loaded: a broken file fails at start with the entry named.

Styles are applied before the engine sees a request: ``apply_styles`` turns the user's prompt,
negative prompt and style names into the final text plus recommended parameters, which the
service uses only where the user left a parameter unset. Style names are kebab-case ASCII
(``[a-z0-9-]``), safe to record in anonymous analytics.

    >>> styled = apply_styles("a red fox", "", ["watercolor"])
    >>> styled.prompt.startswith("watercolor painting of a red fox")
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..engine.sizes import ASPECTS
from ..errors import ValidationError
from ..params import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_STEPS, MAX_STYLES

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_STYLES",
    "MAX_TEMPLATE_CHARS",
    "MAX_NEGATIVE_CHARS",
    "PLACEHOLDER",
    "RECOMMENDED_KEYS",
    "Style",
    "StyledPrompt",
    "apply_styles",
    "categories",
    "get_style",
    "join_negatives",
    "load_presets",
    "parse_presets",
]

PLACEHOLDER = "{prompt}"
MAX_NAME_CHARS = 40
MAX_LABEL_CHARS = 60
MAX_TEMPLATE_CHARS = 500
MAX_NEGATIVE_CHARS = 500

NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
REQUIRED_KEYS = ("name", "label", "category", "prompt", "negative")
OPTIONAL_KEYS = ("recommended",)
RECOMMENDED_KEYS = ("steps", "guidance", "aspect")
PRESETS_FILE = "presets.json"


@dataclasses.dataclass(frozen=True)
class Style:
    """One look: ``prompt`` is a template with ``{prompt}`` where the user's text goes."""

    name: str
    label: str
    category: str
    prompt: str
    negative: str
    recommended: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def render(self, text: str) -> str:
        """The template with ``text`` in place of ``{prompt}`` (``text`` is not re-scanned)."""
        before, after = self.prompt.split(PLACEHOLDER)
        return f"{before}{text}{after}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in ``presets.json``, ``gempix styles --format json`` and exports."""
        entry: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "category": self.category,
            "prompt": self.prompt,
            "negative": self.negative,
        }
        if self.recommended:
            entry["recommended"] = dict(self.recommended)
        return entry


@dataclasses.dataclass(frozen=True)
class StyledPrompt:
    """What ``apply_styles`` returns: the final texts and the merged recommendations."""

    prompt: str
    negative: str
    names: tuple[str, ...]
    recommended: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )


# --- validation -------------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{field}: must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{field}: {len(value)} characters; the limit is {MAX_NAME_CHARS}")
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{field}: {_short(value)} must be kebab-case: lowercase letters a-z, digits and "
            "single hyphens between them"
        )
    return value


def _check_text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{field}: must not be empty")
    if any(ord(char) < 32 for char in value):
        raise ValueError(f"{field}: contains a control character (newline, tab, NUL...)")
    if len(value) > limit:
        raise ValueError(f"{field}: {len(value)} characters; the limit is {limit}")
    return value.strip()


def _check_template(value: Any, field: str = "prompt") -> str:
    template = _check_text(value, field, MAX_TEMPLATE_CHARS)
    count = template.count(PLACEHOLDER)
    if count != 1:
        raise ValueError(
            f"{field}: must contain {PLACEHOLDER} exactly once, found it {count} times"
        )
    rest = template.replace(PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValueError(
            f"{field}: '{{' or '}}' outside the {PLACEHOLDER} placeholder; "
            f"{PLACEHOLDER} is the only placeholder"
        )
    if not rest.strip(" ,"):
        raise ValueError(f"{field}: the template adds nothing to {PLACEHOLDER}")
    return template


def _check_recommended(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"recommended: expected an object, got {type(value).__name__}")
    if not value:
        raise ValueError("recommended: empty object; leave the key out instead")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if key not in RECOMMENDED_KEYS:
            raise ValueError(
                f"recommended: unknown key {_short(key)}; allowed: {', '.join(RECOMMENDED_KEYS)}"
            )
        if key == "steps":
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= MAX_STEPS:
                raise ValueError(
                    f"recommended.steps: expected a whole number 1 to {MAX_STEPS}, got {item!r}"
                )
        elif key == "guidance":
            ok = isinstance(item, (int, float)) and not isinstance(item, bool)
            if not ok or not math.isfinite(item) or not 0 <= item <= MAX_GUIDANCE:
                raise ValueError(
                    f"recommended.guidance: expected a number 0 to {MAX_GUIDANCE}, got {item!r}"
                )
            item = float(item)
        elif key == "aspect" and item not in ASPECTS:
            raise ValueError(
                f"recommended.aspect: {_short(item)} is not supported; "
                f"choose one of {', '.join(ASPECTS)}"
            )
        checked[key] = item
    return MappingProxyType(checked)


def _style_from_entry(entry: Any) -> Style:
    """One JSON entry -> Style; ``ValueError`` with the field and rule for a broken one."""
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object, got {type(entry).__name__}")
    allowed = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in entry:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"unknown key {_short(key)}{did_you_mean}; allowed: {', '.join(allowed)}"
            )
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(f"missing key(s): {', '.join(missing)}")
    recommended = entry.get("recommended")
    return Style(
        name=_check_name(entry["name"]),
        label=_check_text(entry["label"], "label", MAX_LABEL_CHARS),
        category=_check_name(entry["category"], "category"),
        prompt=_check_template(entry["prompt"]),
        negative=_check_text(entry["negative"], "negative", MAX_NEGATIVE_CHARS),
        recommended=(
            _check_recommended(recommended) if "recommended" in entry else MappingProxyType({})
        ),
    )


def _entry_name(entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f" {_short(name)}" if isinstance(name, str) and name else ""


def parse_presets(text: str, source: str = PRESETS_FILE) -> dict[str, Style]:
    """Validate the text of a presets file; ``ValidationError`` names the entry and the rule."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
    if not isinstance(data, list):
        raise ValidationError(
            f"{source}: expected a JSON list of style objects, got {type(data).__name__}."
        )
    if not data:
        raise ValidationError(f"{source}: the list of styles is empty.")
    styles: dict[str, Style] = {}
    first_index: dict[str, int] = {}
    label_index: dict[str, int] = {}
    for index, entry in enumerate(data):
        where = f"{source}: entry [{index}]{_entry_name(entry)}"
        try:
            style = _style_from_entry(entry)
        except ValueError as error:
            raise ValidationError(f"{where}: {error}.") from None
        if style.name in first_index:
            raise ValidationError(
                f"{where}: duplicate name; entry [{first_index[style.name]}] already uses it."
            )
        if style.label.casefold() in label_index:
            raise ValidationError(
                f"{where}: duplicate label {style.label!r}; "
                f"entry [{label_index[style.label.casefold()]}] already uses it."
            )
        first_index[style.name] = index
        label_index[style.label.casefold()] = index
        styles[style.name] = style
    return styles


@functools.lru_cache(maxsize=1)
def _packaged() -> Mapping[str, Style]:
    text = resources.files(__name__).joinpath(PRESETS_FILE).read_text(encoding="utf-8")
    return MappingProxyType(parse_presets(text))


def load_presets(path: str | Path | None = None) -> dict[str, Style]:
    """The preset library, by name, in file order: the packaged one (read once) or ``path``."""
    if path is None:
        return dict(_packaged())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValidationError(f"{path}: cannot read the styles file ({error.strerror}).") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 text.") from None
    return parse_presets(text, source=str(path))


def _library(presets: Mapping[str, Style] | None) -> Mapping[str, Style]:
    return _packaged() if presets is None else presets


def categories(presets: Mapping[str, Style] | None = None) -> list[str]:
    """Categories in the order they first appear in the library."""
    return list(dict.fromkeys(style.category for style in _library(presets).values()))


# --- applying styles --------------------------------------------------------------------------


def _unknown(name: str, known: Iterable[str]) -> ValidationError:
    known = list(known)
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.7)
    # "noir" -> film-noir, neon-noir: a whole part of a kebab-case name is a good hint too.
    parts = [candidate for candidate in known if name in candidate.split("-")]
    matches = list(dict.fromkeys(matches + parts))[:5]
    if matches:
        return ValidationError(f"Unknown style {_short(name)}. Did you mean: {', '.join(matches)}?")
    return ValidationError(f"Unknown style {_short(name)}. List the styles with: gempix styles")


def get_style(name: str, presets: Mapping[str, Style] | None = None) -> Style:
    """The preset called ``name``."""
    library = _library(presets)
    if not isinstance(name, str):
        raise ValidationError(f"styles: expected a style name, got {type(name).__name__}.")
    key = name.strip().lower()
    if key in library:
        return library[key]
    raise _unknown(key or name, list(library))


def _negative_terms(text: str) -> list[str]:
    return [term.strip() for term in text.split(",") if term.strip()]


def _mentions(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as a whole word or phrase (case-insensitive)."""
    pattern = r"(?<![\w-])" + re.escape(term.casefold()) + r"(?![\w-])"
    return re.search(pattern, text.casefold()) is not None


def _style_negative(style: Style, others: Sequence[Style]) -> str:
    """``style``'s negative without the terms another chosen style asks for in its template.

    Combining "anime" with "cinematic" must not put "anime" in the negative prompt: a style's
    negative is written against looks it is not, and a chosen style's look is wanted.
    """
    asked = " | ".join(other.prompt.replace(PLACEHOLDER, " ") for other in others)
    kept = [term for term in _negative_terms(style.negative) if not _mentions(asked, term)]
    return ", ".join(kept)


def join_negatives(*negatives: str) -> str:
    """Negatives joined with ", ", each term kept once (first occurrence, case-insensitive)."""
    seen: set[str] = set()
    terms: list[str] = []
    for negative in negatives:
        for term in _negative_terms(negative):
            key = term.casefold()
            if key not in seen:
                seen.add(key)
                terms.append(term)
    return ", ".join(terms)


def apply_styles(
    prompt: str,
    negative: str | None,
    names: Sequence[str] | None,
    *,
    presets: Mapping[str, Style] | None = None,
) -> StyledPrompt:
    """Wrap ``prompt`` in each style's template, in order, and merge negatives and params.

    The first style's template goes around the prompt, the second's around that result, and so
    on. Negative prompts are joined with ", " (the user's own first), each term kept once; a
    style's negative term that another chosen style's template asks for is left out (so
    "anime" + "cinematic" does not negate "anime"), the user's own terms always stay.
    Recommended parameters are merged, later styles winning. ``presets`` replaces the packaged
    library (tests, custom deployments).
    """
    if not isinstance(prompt, str):
        raise ValidationError(f"prompt: expected text, got {type(prompt).__name__}.")
    if negative is not None and not isinstance(negative, str):
        raise ValidationError(f"negative_prompt: expected text, got {type(negative).__name__}.")
    if isinstance(names, str):
        names = [names]
    if names is not None and not isinstance(names, (list, tuple)):
        raise ValidationError(f"styles: expected a list of names, got {type(names).__name__}.")
    names = list(names or [])
    text = prompt.strip()
    negative = (negative or "").strip()
    if not names:
        return StyledPrompt(text, negative, ())
    if not text:
        raise ValidationError("prompt: must not be empty, also when styles are chosen.")
    if len(names) > MAX_STYLES:
        raise ValidationError(
            f"styles: {len(names)} chosen; at most {MAX_STYLES} can be combined at once."
        )
    styles = [get_style(name, presets) for name in names]
    used: list[str] = []
    for style in styles:
        if style.name in used:
            raise ValidationError(f"styles: {style.name!r} is chosen more than once.")
        used.append(style.name)
    recommended: dict[str, Any] = {}
    for style in styles:
        text = style.render(text)
        recommended.update(style.recommended)
    final_negative = join_negatives(
        negative,
        *(
            _style_negative(style, [other for other in styles if other is not style])
            for style in styles
        ),
    )
    label = ", ".join(used)
    if len(text) > MAX_PROMPT_CHARS:
        raise ValidationError(
            f"prompt: {len(text):,} characters with the styles {label}; the limit is "
            f"{MAX_PROMPT_CHARS:,}. Choose fewer styles or shorten the prompt."
        )
    if len(final_negative) > MAX_PROMPT_CHARS:
        raise ValidationError(
            f"negative_prompt: {len(final_negative):,} characters with the styles {label}; the "
            f"limit is {MAX_PROMPT_CHARS:,}. Choose fewer styles or shorten the negative prompt."
        )
    return StyledPrompt(text, final_negative, tuple(used), MappingProxyType(recommended))
