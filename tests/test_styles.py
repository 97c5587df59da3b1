"""Style presets: the packaged library, its validation, combining styles, user styles, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import gempix.cli.styles  # noqa: F401  (registers `gempix styles` on the group)
from gempix.cli import cli, main
from gempix.engine.sizes import ASPECTS
from gempix.errors import ValidationError
from gempix.styles import (
    MAX_STYLES,
    Style,
    apply_styles,
    categories,
    get_style,
    load_presets,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "styles.md"


def entry(name="sample", **fields):
    base = {
        "name": name,
        "label": name.replace("-", " ").title(),
        "category": "testing",
        "prompt": f"{name} look of {{prompt}}, detailed",
        "negative": "blurry, low quality",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def write(tmp_path, data) -> Path:
    path = tmp_path / "presets.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def library(*entries) -> dict[str, Style]:
    return {style.name: style for style in (Style(**fields) for fields in entries)}


# --- the packaged library ---------------------------------------------------------------------


def test_packaged_library_is_large_varied_and_valid():
    presets = load_presets()
    assert len(presets) >= 40
    assert len(categories()) >= 8
    assert len({style.label for style in presets.values()}) == len(presets)
    for name, style in presets.items():
        assert name == style.name and re.fullmatch(r"[a-z0-9-]+", name)
        assert style.prompt.count("{prompt}") == 1 and style.negative.strip()
        assert set(style.recommended) <= {"steps", "guidance", "aspect"}
        assert style.recommended.get("aspect", "1:1") in ASPECTS


def test_presets_do_not_negate_their_own_look():
    """A negative term that the same template asks for would cancel the style."""
    for style in load_presets().values():
        asked = style.prompt.replace("{prompt}", " ").lower()
        for term in (term.strip().lower() for term in style.negative.split(",")):
            pattern = r"(?<![\w-])" + re.escape(term) + r"(?![\w-])"
            assert not re.search(pattern, asked), f"{style.name}: negative {term!r}"


def test_packaged_file_is_read_once_and_callers_cannot_change_it():
    first = load_presets()
    first.pop("cinematic")
    assert "cinematic" in load_presets()
    assert load_presets()["watercolor"] is first["watercolor"]  # same cached objects


def test_the_step_limit_is_the_presets():
    from gempix.engine.presets import ModelPreset
    from gempix.styles import MAX_STEPS

    assert MAX_STEPS == ModelPreset.__dataclass_fields__["max_steps"].default


def test_every_preset_and_category_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in load_presets() if f"`{name}`" not in text]
    assert not missing, f"docs/styles.md does not list: {', '.join(missing)}"
    assert all(f"`{category}`" in text for category in categories())


# --- validation of a presets file -------------------------------------------------------------


def test_a_valid_file_loads(tmp_path):
    path = write(tmp_path, [entry("one"), entry("two", recommended={"guidance": 6, "steps": 30})])
    presets = load_presets(path)
    assert list(presets) == ["one", "two"]
    assert presets["two"].recommended == {"guidance": 6.0, "steps": 30}
    assert isinstance(presets["two"].recommended["guidance"], float)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (entry("good"), "duplicate name"),
        (entry("bad", prompt="a look without the placeholder"), "exactly once, found it 0"),
        (entry("bad", prompt="{prompt} and again {prompt}"), "exactly once, found it 2"),
        (entry("bad", negative=""), "negative: must not be empty"),
        (entry("bad", negative="   "), "negative: must not be empty"),
        (entry("bad", label=""), "label: must not be empty"),
        (entry("bad", promt="typo"), "unknown key 'promt' (did you mean 'prompt'?)"),
        (entry("bad", negative=None), "missing key(s): negative"),
        (entry("Bad_Name"), "must be kebab-case"),
        (entry("bad name"), "must be kebab-case"),
        (entry("bad--name"), "must be kebab-case"),
        (entry("bad", category="Photo Graphy"), "category:"),
        (entry("bad", prompt="{prompt} in {style}"), "only placeholder"),
        (entry("bad", prompt="{prompt}"), "adds nothing"),
        (entry("bad", negative="blurry\nugly"), "control character"),
        (entry("bad", prompt=7), "prompt: expected text, got int"),
        (entry("bad", recommended={"cfg": 7}), "recommended: unknown key 'cfg'"),
        (entry("bad", recommended={"steps": 0}), "recommended.steps"),
        (entry("bad", recommended={"steps": 20.5}), "recommended.steps"),
        (entry("bad", recommended={"steps": True}), "recommended.steps"),
        (entry("bad", recommended={"guidance": 31}), "recommended.guidance"),
        (entry("bad", recommended={"guidance": "7"}), "recommended.guidance"),
        (entry("bad", recommended={"aspect": "5:4"}), "recommended.aspect: '5:4'"),
        (entry("bad", recommended={}), "recommended: empty"),
        (entry("bad", recommended=[6]), "recommended: expected an object, got list"),
        (entry("bad", label="Good"), "duplicate label"),
    ],
)
def test_a_broken_entry_is_named_with_its_problem(tmp_path, bad, problem):
    path = write(tmp_path, [entry("good"), bad])
    with pytest.raises(ValidationError) as raised:
        load_presets(path)
    message = raised.value.message
    assert f"entry [1] {bad['name']!r}" in message, message
    assert problem in message, message
    assert str(path) in message


def test_an_entry_that_is_not_an_object(tmp_path):
    with pytest.raises(ValidationError, match=r"entry \[1\]: expected an object, got str"):
        load_presets(write(tmp_path, [entry("good"), "cinematic"]))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[{"name": "x",}]', "not valid JSON (line 1, column"),
        ("", "not valid JSON"),
        (json.dumps({"styles": [entry("one")]}), "expected a JSON list of style objects, got dict"),
        ("[]", "the list of styles is empty"),
    ],
)
def test_a_broken_file(tmp_path, text, problem):
    with pytest.raises(ValidationError, match=re.escape(problem)):
        load_presets(write(tmp_path, text))


def test_a_missing_file(tmp_path):
    with pytest.raises(ValidationError, match="cannot read the styles file"):
        load_presets(tmp_path / "nope.json")


# --- applying styles --------------------------------------------------------------------------


def test_no_style_leaves_the_prompt_alone():
    styled = apply_styles("  a red fox ", " blurry ", [])
    assert (styled.prompt, styled.negative, styled.names) == ("a red fox", "blurry", ())
    assert dict(styled.recommended) == {}


def test_styles_wrap_in_order():
    presets = load_presets()
    styled = apply_styles("a red fox", "", ["watercolor", "golden-hour-portrait"])
    inner = presets["watercolor"].render("a red fox")
    assert styled.prompt == presets["golden-hour-portrait"].render(inner)
    assert inner in styled.prompt
    assert styled.names == ("watercolor", "golden-hour-portrait")
    reverse = apply_styles("a red fox", "", ["golden-hour-portrait", "watercolor"])
    assert reverse.prompt != styled.prompt
    assert presets["golden-hour-portrait"].render("a red fox") in reverse.prompt


def test_negatives_are_joined_user_first_and_deduplicated():
    styles = library(
        dict(name="one", label="One", category="t", prompt="one {prompt}", negative="blurry, ugly"),
        dict(name="two", label="Two", category="t", prompt="two {prompt}", negative="Ugly, text"),
    )
    styled = apply_styles("fox", "text, hats", ["one", "two"], presets=styles)
    assert styled.negative == "text, hats, blurry, ugly"
    assert styled.prompt == "two one fox"


def test_a_style_does_not_negate_another_chosen_style():
    styled = apply_styles("a red fox", "", ["anime", "cinematic"])
    terms = [term.strip() for term in styled.negative.split(",")]
    assert "anime" not in terms  # cinematic's negative says "anime"; the user asked for it
    assert "photorealistic" in terms and "cartoon" in terms
    assert terms.count("worst quality") == 1
    alone = apply_styles("a red fox", "", ["cinematic"])
    assert "anime" in alone.negative.split(", ")
    own = apply_styles("a red fox", "anime", ["anime", "cinematic"])
    assert own.negative.split(", ")[0] == "anime"  # the user's own terms always stay


def test_recommended_params_merge_later_wins():
    styles = library(
        dict(
            name="one",
            label="One",
            category="t",
            prompt="one {prompt}",
            negative="x",
            recommended={"guidance": 5.0, "aspect": "16:9"},
        ),
        dict(
            name="two",
            label="Two",
            category="t",
            prompt="two {prompt}",
            negative="y",
            recommended={"guidance": 7.5, "steps": 30},
        ),
    )
    styled = apply_styles("fox", "", ["one", "two"], presets=styles)
    assert dict(styled.recommended) == {"guidance": 7.5, "aspect": "16:9", "steps": 30}
    styled = apply_styles("fox", "", ["two", "one"], presets=styles)
    assert styled.recommended["guidance"] == 5.0


def test_the_users_prompt_is_not_a_template():
    styled = apply_styles("a sign saying {prompt}", "", ["watercolor", "cinematic"])
    assert styled.prompt.count("{prompt}") == 1


def test_names_are_matched_case_insensitively():
    assert apply_styles("fox", "", [" Cinematic "]).names == ("cinematic",)
    assert apply_styles("fox", "", "cinematic").names == ("cinematic",)


def test_unknown_style_lists_close_matches():
    with pytest.raises(ValidationError) as raised:
        apply_styles("fox", "", ["cinematc"])
    assert raised.value.message == "Unknown style 'cinematc'. Did you mean: cinematic?"
    with pytest.raises(ValidationError, match="Did you mean: film-noir, neon-noir?"):
        apply_styles("fox", "", ["noir"])
    with pytest.raises(ValidationError, match=r"Unknown style 'qqq'\. List the styles with"):
        get_style("qqq")


def test_too_many_or_repeated_styles():
    names = list(load_presets())[: MAX_STYLES + 1]
    assert len(apply_styles("fox", "", names[:MAX_STYLES]).names) == MAX_STYLES
    with pytest.raises(ValidationError, match=f"{MAX_STYLES + 1} chosen; at most {MAX_STYLES}"):
        apply_styles("fox", "", names)
    with pytest.raises(ValidationError, match="'cinematic' is chosen more than once"):
        apply_styles("fox", "", ["cinematic", "Cinematic"])


@pytest.mark.parametrize(
    ("prompt", "negative", "names", "problem"),
    [
        ("   ", "", ["cinematic"], "prompt: must not be empty"),
        (None, "", ["cinematic"], "prompt: expected text"),
        ("fox", 3, ["cinematic"], "negative_prompt: expected text"),
        ("fox", "", [3], "styles: expected a style name, got int"),
        ("fox", "", {"cinematic": 1}, "styles: expected a list of names, got dict"),
        ("x" * 1990, "", ["cinematic"], "with the styles cinematic; the limit is 2,000"),
        ("fox", "y" * 1990, ["cinematic"], "negative_prompt: 2,"),
    ],
)
def test_bad_input_to_apply_styles(prompt, negative, names, problem):
    with pytest.raises(ValidationError, match=re.escape(problem)):
        apply_styles(prompt, negative, names)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_lists_every_preset():
    result = CliRunner().invoke(cli, ["styles"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["NAME", "CATEGORY", "LABEL"]
    assert len(lines) == len(load_presets()) + 1
    assert re.match(r"cinematic\s+cinematic\s+Cinematic$", next(x for x in lines if "Cin" in x))


def test_cli_filters_by_category_and_prints_json():
    result = CliRunner().invoke(cli, ["styles", "--category", "Painting", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    expected = [s.as_dict() for s in load_presets().values() if s.category == "painting"]
    assert shown == expected and len(shown) >= 3
    assert all("{prompt}" in item["prompt"] for item in shown)


def test_cli_unknown_category_exits_2_listing_categories(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["styles", "--category", "paintings"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err.startswith("Error: category: 'paintings' is not a style category; choose one of")
    assert all(category in err for category in categories())
    assert len(err.strip().splitlines()) == 1
