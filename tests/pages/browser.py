"""The browser harness of the report page's tests: Debian's Chromium, headless, driven by
playwright from the system binary (never a downloaded browser), with every request that is
not the page's own file aborted."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str | None:
    """The system's Chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Opened:
    """A page opened from a file, and what happened while it loaded."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)  #: every URL the page asked for
    aborted: list[str] = field(default_factory=list)  #: those that were not the file itself
    errors: list[str] = field(default_factory=list)  #: page errors and console errors


@contextlib.contextmanager
def opened(file: Path, width: int = 1100, height: int = 900) -> Iterator[Opened]:
    """``file`` open in headless Chromium, fully loaded and its charts drawn."""
    from playwright.sync_api import sync_playwright

    url = file.resolve().as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            seen = Opened(page, url)

            def route(request_route: Any) -> None:
                asked = request_route.request.url
                seen.requests.append(asked)
                if asked == url:
                    request_route.continue_()
                else:
                    seen.aborted.append(asked)
                    request_route.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda exc: seen.errors.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda m: (
                    seen.errors.append(f"console {m.type}: {m.text}")
                    if m.type == "error"
                    else None
                ),
            )
            page.goto(url, wait_until="load")
            charts = page.locator(".chart")
            if charts.count():  # Bokeh draws each chart in a canvas inside its shadow root
                page.locator(".chart canvas").nth(charts.count() - 1).wait_for(timeout=30_000)
                page.wait_for_timeout(300)  # the last chart's first paint
            yield seen
        finally:
            browser.close()
