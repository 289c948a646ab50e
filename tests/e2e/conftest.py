"""Browser tests: Playwright drives Debian's Chromium (``CHROMIUM_PATH``) against pytest-django's live server.

Nothing is downloaded: the tests skip, saying why, only when the Chromium binary is missing.
Screenshots go to a temporary folder and, when ``SCREENSHOT_DIR`` is set, there as well.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 860}



@pytest.fixture(scope="module", autouse=True)
def allow_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it
    are still synchronous, so Django's "async context" guard does not apply. Only for these modules:
    the variable must not leak into other tests' subprocesses (``check --deploy`` rejects it)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser(allow_orm_beside_playwright) -> Iterator:
    path = chromium_path()
    if not (os.path.isfile(path) or shutil.which(path)):
        pytest.skip(f"Chromium not found at {path} (install Debian's chromium or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(60_000)  # a loaded 2-core CI box renders the first admin page slowly
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot(page, tmp_path):
    """``screenshot("name")`` saves a PNG of the page in tmp_path (and SCREENSHOT_DIR when set)."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("SCREENSHOT_DIR"):
        folders.append(Path(os.environ["SCREENSHOT_DIR"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full_page: bool = False) -> Path:
        first = folders[0] / f"{name}.png"
        page.screenshot(path=str(first), full_page=full_page)
        for folder in folders[1:]:
            shutil.copyfile(first, folder / first.name)
        return first

    return take
