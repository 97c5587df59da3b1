"""The web app in a real headless Chromium (Debian's package, driven by Playwright).

Each test opens its own browser context (its own localStorage: its own user) on one app
launched for the module, and asserts on what a person sees: labels, texts, images, toasts.
Screenshots of every tab go to ``test-artifacts/`` (gitignored) for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import free_port
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_folder, tiny_models):
    from gempix.service import Studio
    from gempix.settings import Settings
    from gempix.ui.app import build_app, launch_options

    data = tmp_path_factory.mktemp("browser-data")
    shutil.copytree(tiny_folder, data / "models" / "tiny")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(data / "gradio-cache"))
        studio = Studio(Settings.load({}, data_dir=str(data), model="tiny"), models=tiny_models)
        app = build_app(studio)
        _, url, _ = app.launch(
            server_name="127.0.0.1",
            server_port=free_port(),
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(),
        )
    try:
        yield SimpleNamespace(url=url, studio=studio, cache=data / "gradio-cache")
    finally:
        app.close()
        studio.close()


@pytest.fixture(autouse=True)
def same_cache(served, monkeypatch):
    """Uploads are checked against GRADIO_TEMP_DIR at request time: keep the app's."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(served.cache))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser, served):
    """Pages in fresh browser contexts (each one a new visitor), closed after the test."""
    contexts = []

    def open_page():
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, accept_downloads=True
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(served.url)
        page.get_by_label("Prompt", exact=True).wait_for()
        return page

    yield open_page
    for context in contexts:
        context.close()


def expect():
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def confirm_age(page) -> None:
    page.get_by_label("I am at least 13 years old").check()
    page.get_by_role("button", name="Confirm and start").click()
    expect()(page.locator("#age-gate").first).to_be_hidden()


def generate(page, prompt: str) -> str:
    """Type a prompt, press Generate, wait for the image; return the selected image id."""
    page.get_by_role("tab", name="Create").click()
    page.get_by_label("Prompt", exact=True).fill(prompt)
    selected = page.locator("#selected input, #selected textarea").first
    before = selected.input_value()
    page.get_by_role("button", name="Generate", exact=True).click()
    expect()(selected).not_to_have_value(before or "")
    expect()(page.locator("#results img").first).to_be_visible()
    return selected.input_value()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def toasts(page) -> str:
    return "\n".join(page.locator("[data-testid=toast-text]").all_inner_texts())


def shown_key(page) -> str:
    open_tab(page, "Privacy")
    page.get_by_label("Show my key").check()
    box = page.locator("#user-key textarea, #user-key input").first
    expect()(box).to_have_value(_starts_with_gpu())
    return box.input_value()


def _starts_with_gpu():
    return re.compile(r"^gpu_")


def gallery_label(page):
    return page.locator("#gallery-label")


def test_generate_with_a_style_and_reload_keeps_the_user(new_page):
    page = new_page()
    expect()(page.locator("#age-gate").first).to_be_visible()
    shot(page, "0-first-visit")
    confirm_age(page)
    page.get_by_label("painting", exact=True).check()
    page.get_by_label("Watercolor", exact=True).check()
    expect()(page.get_by_label("Chosen styles")).to_be_visible()
    image_id = generate(page, "a red fox in the snow")
    details = page.locator("#details")
    expect()(details).to_contain_text("watercolor painting of a red fox in the snow")
    shot(page, "1-create")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download JPEG").first.click()
    assert download.value.suggested_filename == f"{image_id}.jpg"
    assert Path(download.value.path()).read_bytes()[:3] == b"\xff\xd8\xff"
    key = shown_key(page)

    page.reload()
    page.get_by_label("Prompt", exact=True).wait_for()
    assert shown_key(page) == key
    expect()(page.locator("#age-gate").first).to_be_hidden()
    open_tab(page, "Gallery")
    expect()(gallery_label(page)).to_have_text("Page 1 · images 1–1 of 1")
    page.locator("#history img").first.click()
    expect()(page.get_by_label("Selected image").last).to_have_value(image_id)
    shot(page, "2-gallery")


def test_two_browsers_are_two_users(new_page):
    alice, bob = new_page(), new_page()
    for page in (alice, bob):
        confirm_age(page)
    alice_image = generate(alice, "alice's lighthouse")
    bob_image = generate(bob, "bob's harbour")
    assert alice_image != bob_image
    assert shown_key(alice) != shown_key(bob)
    for page in (alice, bob):
        open_tab(page, "Gallery")
        expect()(gallery_label(page)).to_have_text("Page 1 · images 1–1 of 1")
        page.locator("#history img").first.click()
    expect()(alice.get_by_label("Selected image").last).to_have_value(alice_image)
    expect()(bob.get_by_label("Selected image").last).to_have_value(bob_image)

    # Restore on another device: Bob's browser takes Alice's key and becomes Alice.
    alice_key = shown_key(alice)
    open_tab(bob, "Privacy")
    bob.get_by_text("Restore on another device").click()
    bob.get_by_label("Paste a user key").fill(alice_key)
    bob.get_by_role("button", name="Use this key").click()
    expect()(bob.locator("#user-key textarea, #user-key input").first).to_have_value(alice_key)
    open_tab(bob, "Gallery")
    bob.get_by_role("button", name="Refresh").click()
    bob.locator("#history img").first.click()
    expect()(bob.get_by_label("Selected image").last).to_have_value(alice_image)


def test_export_zip_then_delete_everything(new_page, tmp_path):
    page = new_page()
    confirm_age(page)
    image_id = generate(page, "a keepsake")
    open_tab(page, "Privacy")
    page.get_by_role("button", name="Export all my data (ZIP)").click()
    link = page.locator("#export-file a").first
    expect()(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    target = tmp_path / "export.zip"
    download.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert f"images/{image_id}.png" in archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["generations"] == 1
    shot(page, "3-privacy")
    page.get_by_text("Delete everything", exact=True).first.click()
    page.get_by_label("Type DELETE to confirm").fill("DELETE")
    page.get_by_role("button", name="Delete everything", exact=True).click()
    expect()(page.locator("#erase-report")).to_contain_text("Verified: yes")
    shot(page, "4-erased")
    open_tab(page, "Gallery")
    expect()(gallery_label(page)).to_have_text("No images yet.")
    assert page.locator("#history img").count() == 0
    expect()(page.locator("#age-gate").first).to_be_visible()  # a new, empty identity


def test_character_saved_in_the_library_is_used_in_create(new_page, tmp_path):
    from gempix.ui.characters import RIGHTS_LABEL

    page = new_page()
    confirm_age(page)
    reference = tmp_path / "mira.png"
    Image.effect_noise((48, 48), 60).convert("RGB").save(reference)
    open_tab(page, "Characters")
    page.get_by_label("Character name").fill("Mira")
    page.locator("#references input[type=file]").set_input_files(str(reference))
    expect()(page.locator("#references a[href*='mira.png']").first).to_be_visible()
    page.get_by_label(RIGHTS_LABEL).first.check()
    page.get_by_role("button", name="Create character").click()
    expect()(page.get_by_label("Character library")).to_contain_text("Mira")

    open_tab(page, "Create")
    page.locator("#character-panel").get_by_text("Character", exact=True).first.click()
    page.get_by_label("Character", exact=True).click()
    page.get_by_role("option", name="Mira").click()
    generate(page, "a portrait in the rain")
    expect()(page.locator("#details")).to_contain_text("consistency")
    shot(page, "4b-character")


def test_bad_input_shows_a_readable_message(new_page, tmp_path):
    page = new_page()
    confirm_age(page)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect()(page.locator("[data-testid=toast-text]").first).to_be_visible()
    assert "prompt: must not be empty." in toasts(page)

    page.get_by_text("Advanced", exact=True).click()
    upload = page.locator("#init-image input[type=file]")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    upload.set_input_files(str(notes))
    expect()(page.get_by_text("Invalid file type: notes.txt")).to_be_visible()

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(26 * 1024 * 1024))
    upload.set_input_files(str(huge))
    expect()(page.get_by_text("exceed the maximum allowed size")).to_be_visible()

    fake = tmp_path / "fake.png"
    fake.write_text("text pretending to be a PNG")
    upload.set_input_files(str(fake))
    # The file row renders the name split ("fake" ".png"), so find its download link instead.
    expect()(page.locator("#init-image a[href*='fake.png']").first).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill("a fox")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect()(page.get_by_text("init_image: not a readable image")).to_be_visible()
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and 'File "' not in text
    shot(page, "5-bad-input")


def test_progress_bar_and_cancel(new_page, served, monkeypatch):
    """A long generation shows its progress; Cancel stops it inside the model loop."""
    import threading

    from gempix.errors import ValidationError
    from gempix.ui.errors import Cancelled

    stopped = threading.Event()
    seen: list[type] = []

    def long_generation(request, *, user_id, front_door, progress, on_preview=None):
        try:
            for step in range(600):  # at most a minute
                progress(step, 600, "denoise")
                stopped.wait(0.1)  # pacing only; the test waits on `stopped`
        except Exception as error:
            seen.append(type(error))
            stopped.set()
            raise
        raise ValidationError("the generation was not cancelled")

    page = new_page()
    confirm_age(page)
    monkeypatch.setattr(served.studio, "generate", long_generation)
    page.get_by_label("Prompt", exact=True).fill("a very slow fox")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect()(page.get_by_text("Generating").first).to_be_visible()
    shot(page, "9-progress")
    page.get_by_role("button", name="Cancel", exact=True).click()
    assert stopped.wait(30), "the running generation did not stop"
    assert seen == [Cancelled]
    assert page.locator("#results img").count() == 0


def test_screenshots_of_every_tab_for_an_admin(new_page, served):
    from gempix.privacy.identity import server_secret, user_id_for

    page = new_page()
    confirm_age(page)
    key = shown_key(page)
    user_id = user_id_for(server_secret(served.studio.settings), key)
    served.studio.store.update_user(user_id, role="admin")
    _usage(served.studio.store, {"native": 12, "2k": 12, "4k": 2})  # 4k: < k people: hidden
    assert page.get_by_role("tab", name="Analytics").count() == 0  # not yet an admin here
    page.reload()
    page.get_by_label("Prompt", exact=True).wait_for()
    open_tab(page, "Characters")
    shot(page, "6-characters")
    open_tab(page, "API")
    shot(page, "7-api")
    open_tab(page, "Analytics")
    expect()(page.get_by_text("Only cells with at least")).to_be_visible()
    expect()(page.get_by_text(re.compile(r"\d+ of \d+ cells hidden")).first).to_be_visible()
    shot(page, "8-analytics")


def _usage(store, visitors: dict[str, int]) -> None:
    """Anonymous usage events from distinct visitors per resolution, as the service makes."""
    from gempix.analytics import make_event

    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    index = 0
    for resolution, count in visitors.items():
        for _ in range(count):
            index += 1
            store.record_event(
                make_event(
                    visitor_hash=f"{index:016x}",
                    front_door="ui",
                    model="tiny",
                    steps=2,
                    latency_ms=120.0 + index,
                    styles=["watercolor"],
                    resolution_class=resolution,
                    now=yesterday,  # only days that are over are published
                )
            )
    store.flush()


def mask_and_edit(page, mask: Path, prompt: str | None = None) -> str:
    """With a source in the editor: give the mask file, press Edit (or, without a new
    ``prompt``, Ctrl+Enter in the prompt box, the habit of the field); return the new selected
    image's id."""
    expect()(page.locator("#edit-source").locator("canvas").first).to_be_visible()
    page.locator("#edit-mask-file input[type=file]").set_input_files(str(mask))
    expect()(page.locator("#edit-mask-file")).to_contain_text(mask.name)  # uploaded
    selected = page.locator("#edit-selected input, #edit-selected textarea").first
    before = selected.input_value()
    if prompt is None:
        page.locator("#edit-prompt textarea").focus()
        page.keyboard.press("Control+Enter")
    else:
        page.locator("#edit-prompt textarea").fill(prompt)
        page.get_by_role("button", name="Edit", exact=True).click()
    # The first edit of a run also builds the inpaint pipeline: give it longer.
    expect()(selected).not_to_have_value(before or "", timeout=90_000)
    return selected.input_value()


def edit_params(served, image_id: str) -> dict:
    """The ``edit`` parameters in an edited image's metadata, whoever made it."""
    from gempix.metadata import read_params

    (path,) = served.studio.settings.images_dir.glob(f"*/{image_id}.png")
    return read_params(path)["edit"]


def test_png_info_reads_an_a1111_picture_and_fills_the_form(new_page, tmp_path):
    """Drop a picture with A1111 infotext on the PNG info panel; its parameters are shown, and
    "Use these parameters" puts them into the Create form."""
    from test_pnginfo import A1111, png

    (tmp_path / "a1111.png").write_bytes(png(parameters=A1111))
    page = new_page()
    confirm_age(page)
    page.get_by_text("PNG info: read an image's parameters").click()
    page.locator("#png-info-file input[type=file]").set_input_files(str(tmp_path / "a1111.png"))
    expect()(page.locator("#png-info")).to_contain_text("dreamshaper_8")
    page.get_by_role("button", name="Use these parameters").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect()(prompt).to_have_value("a castle on a hill, (masterpiece:1.2)\nsecond prompt line")
    page.get_by_text("Advanced", exact=True).click()
    expect()(page.get_by_label("Negative prompt")).to_have_value("blurry, lowres")
    expect()(page.get_by_label("Seed", exact=True)).to_have_value("1234")
    expect()(page.get_by_label("Random seed")).not_to_be_checked()


def test_a_click_while_generating_is_queued_and_then_runs(new_page, served, monkeypatch):
    """A second Generate click during a generation is queued (said next to the button) and
    runs too, instead of being dropped."""
    import threading

    release, calls = threading.Event(), []
    real_generate = served.studio.generate

    def held_generation(request, **options):
        calls.append(request.prompt)
        assert release.wait(60), "the test never released the generation"
        return real_generate(request, **options)

    page = new_page()
    confirm_age(page)
    monkeypatch.setattr(served.studio, "generate", held_generation)
    page.get_by_label("Prompt", exact=True).fill("a patient fox")
    generate_button = page.get_by_role("button", name="Generate", exact=True)
    generate_button.click()
    wait_until(page, lambda: calls)
    generate_button.click()
    expect()(page.locator("#create-queued")).to_contain_text("Queued as well")
    release.set()
    wait_until(page, lambda: len(calls) == 2)
    expect()(page.locator("#create-queued")).not_to_contain_text("Queued")
    expect()(page.locator("#results img").first).to_be_visible()
    assert calls == ["a patient fox", "a patient fox"]


def wait_until(page, condition, seconds: float = 30) -> None:
    """Let the page run until ``condition()`` (a server-side fact) holds."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("condition not met in time")


def test_send_to_edit_then_send_the_result_back(new_page, served, tmp_path):
    """Create → Send to Edit → a mask file → Edit; the result → Send to Edit → a mask file →
    Ctrl+Enter. Each edit names the image it was sent from as its source."""
    from test_edit import mask_png

    (tmp_path / "mask.png").write_bytes(mask_png())
    page = new_page()
    confirm_age(page)
    made = generate(page, "a house")
    page.locator("#send-to-edit").click()
    first = mask_and_edit(page, tmp_path / "mask.png", "a red door")
    assert edit_params(served, first)["source"]["generation_id"] == made
    shot(page, "edit")
    page.locator("#edit-send-to-edit").click()
    second = mask_and_edit(page, tmp_path / "mask.png")  # Ctrl+Enter, the same prompt
    assert edit_params(served, second)["source"]["generation_id"] == first


def test_use_as_reference_opens_edit_with_the_image_as_a_reference(new_page):
    page = new_page()
    confirm_age(page)
    made = generate(page, "a lantern")
    page.locator("#use-as-reference").click()
    expect()(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")
    expect()(page.locator("#edit-references")).to_contain_text(made)
