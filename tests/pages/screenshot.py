"""The screenshot of a report page in README.md and the docs, taken by the browser harness of
the tests from a small demo run with a few damaged pages.

    python -m tests.pages.screenshot docs/images/report.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from pipex.cli import main
from tests.pages.browser import opened


def take(image: Path, images: int = 12, damaged: int = 3) -> Path:
    """Run ``pipex demo`` with ``damaged`` failing pages, and photograph its report page."""
    with tempfile.TemporaryDirectory() as folder:
        demo = Path(folder) / "pipex-demo"
        args = ["demo", str(demo), "--images", str(images), "--damaged", str(damaged)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output  # the damaged pages failed
        with opened(demo / "report.html", width=1050, height=900) as seen:
            assert seen.errors == [] and seen.aborted == [], seen
            image.parent.mkdir(parents=True, exist_ok=True)
            seen.page.screenshot(path=str(image), full_page=True)
    return image


if __name__ == "__main__":
    print(take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/report.png")))
