"""Build the browser demo in docs/demo: onnxruntime-web from npm, and the exported model.

The page itself (index.html, app.js) is in git; what this writes is not:
- `docs/demo/vendor/`: onnxruntime-web's WebAssembly build, installed with `npm ci` from
  the pinned `package-lock.json` and copied into place;
- `docs/demo/model/`: `decoder.onnx` and `cvae.json` from `cvae export` of a model.

Then `cd docs/demo && python -m http.server` serves the page alone, and `mkdocs build`
publishes it with the docs. `--screenshot` also refreshes docs/images/try-it.png with
Debian's chromium (headless, through playwright).

    python scripts/build_demo.py [--model mnist-mlp] [--screenshot]
"""

import argparse
import contextlib
import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "docs" / "demo"
# The WebAssembly-only build: the global `ort`, its loader and its binary.
VENDOR_FILES = ["ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]


def install_runtime() -> None:
    """`npm ci` unless node_modules already holds the version that the lockfile pins."""
    lock = json.loads((DEMO / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/onnxruntime-web"]["version"]
    installed = DEMO / "node_modules" / "onnxruntime-web" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != pinned:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DEMO, check=True)
    vendor = DEMO / "vendor"
    vendor.mkdir(exist_ok=True)
    for name in VENDOR_FILES:
        shutil.copy2(DEMO / "node_modules" / "onnxruntime-web" / "dist" / name, vendor / name)


def export_model(name: str | None) -> None:
    from cvae.cli._commands import load_model
    from cvae.models._export import export_onnx, write_info

    model = load_model(name)  # the page needs only the decoder
    export_onnx(model, DEMO / "model" / "decoder.onnx")
    write_info(model, DEMO / "model" / "cvae.json")


def screenshot(path: Path, digit: int = 7) -> None:
    """Open the page in headless chromium, click a digit, and save what it shows."""
    from playwright.sync_api import sync_playwright

    with serve(DEMO) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 720, "height": 640})
        page.goto(url)
        page.wait_for_selector("#status[data-state=ready]")
        page.click(f"#classes button[data-class='{digit}']")
        page.wait_for_selector("#status[data-state=drawn]")
        page.screenshot(path=str(path))
        browser.close()


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a free port) for the block; yield the page's URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="the model to export (default: cvae's)")
    parser.add_argument("--screenshot", action="store_true",
                        help="also refresh docs/images/try-it.png")
    args = parser.parse_args()
    install_runtime()
    export_model(args.model)
    print(f"built {DEMO}: serve it with `python -m http.server` in that folder")
    if args.screenshot:
        path = DEMO.parent / "images" / "try-it.png"
        screenshot(path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
