"""The browser demo really runs from the built docs: headless chromium opens the "Try it" page
of the site that `mkdocs build` made (served on 127.0.0.1), clicks two classes in its frame,
and the frame draws samples that the MNIST classifier recognises."""

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from cvae.evaluation.classifier import load_classifier

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import build_demo  # noqa: E402  (a script, not a module of the package)

pytestmark = pytest.mark.slow  # a browser

if not shutil.which("chromium") and not os.environ.get("CI"):  # .ci/run installs it
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(built_site, browser):
    """The demo's frame in the built site's "Try it" page, ready."""
    with build_demo.serve(built_site) as url:
        tab = browser.new_page()
        tab.goto(url.replace("index.html", "try-it/"))
        frame = tab.wait_for_selector("iframe").content_frame()
        frame.wait_for_selector("#status[data-state=ready]", timeout=60000)
        yield frame
        tab.close()


def click(page, digit: int, draws: int):
    page.click(f"#classes button[data-class='{digit}']")
    page.wait_for_selector(f"#status[data-draws='{draws}']", timeout=60000)
    assert page.get_attribute("#status", "data-drawn") == str(digit)
    canvas = page.evaluate("""() => {
        const c = document.getElementById('grid');
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];
    }""")
    images = torch.tensor(page.evaluate("window.lastImages")).view(16, 1, 28, 28)
    return canvas, images


def test_the_page_draws_each_clicked_class(page):
    classifier = load_classifier()
    (width, height, pixels), threes = click(page, 3, draws=1)
    assert (width, height) == (4 * (28 * 3 + 2) + 2,) * 2
    lit = torch.tensor(pixels).view(height, width, 4)[..., 0] > 128
    assert 0.03 < lit.float().mean() < 0.5  # strokes on black, not a blank or white canvas
    assert (classifier.predict(threes) == 3).sum() >= 10
    (_, _, again), eights = click(page, 8, draws=2)
    assert (classifier.predict(eights) == 8).sum() >= 10
    assert again != pixels
    assert "8" in page.inner_text("#status")


def test_opened_from_a_file_the_page_says_to_serve_it(built_site, browser):
    tab = browser.new_page()
    tab.goto((built_site / "demo" / "index.html").as_uri())
    tab.wait_for_selector("#status[data-state=error]", timeout=30000)
    text = tab.inner_text("#status")
    assert "opened from a file" in text and "python -m http.server -d site" in text
    tab.close()
