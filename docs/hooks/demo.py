"""MkDocs hook: build the browser demo (docs/demo) with the docs, or say on its page why not.

The demo needs onnxruntime-web from npm and the exported model (`scripts/build_demo.py`),
which are not in git. When they are missing, the build runs that script if npm is there;
if npm is not, the site is built anyway and the "Try it" page says what to do instead of
showing an empty frame. A script that fails is a warning, which `mkdocs build --strict`
turns into a failed build.
"""

import importlib.util
import logging
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "docs" / "demo"
BUILT = [DEMO / "vendor" / "ort.wasm.min.js", DEMO / "model" / "decoder.onnx", DEMO / "model" / "cvae.json"]
FRAME = '<iframe src="../demo/index.html"'
log = logging.getLogger("mkdocs.hooks.demo")
_missing: str | None = None  # why the demo is not in this build


def on_pre_build(config):  # noqa: D103 (MkDocs' hook signature)
    global _missing
    _missing = None
    if all(path.is_file() for path in BUILT):
        return
    if shutil.which("npm") is None:
        _missing = ("npm was not found when this site was built. Install Node.js and npm"
                    " (`apt-get install npm` on Debian and Ubuntu), then run `mkdocs build`"
                    " again: it builds the demo itself")
    elif importlib.util.find_spec("onnxscript") is None:
        _missing = ("the ONNX exporter was not installed when this site was built. Install it"
                    ' with `pip install -e ".[docs]"`, then run `mkdocs build` again')
    if _missing:
        log.info(f"building the docs without the browser demo: {_missing.split('.')[0]}")
        return
    log.info("building the browser demo: python scripts/build_demo.py")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_demo.py")], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        _missing = "`python scripts/build_demo.py` failed when this site was built: run it to see why"
        log.warning(f"scripts/build_demo.py failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")


def on_page_markdown(markdown, page, config, files):  # noqa: D103 (MkDocs' hook signature)
    if not _missing or FRAME not in markdown:
        return markdown
    start = markdown.index(FRAME)
    end = markdown.index("</iframe>", start) + len("</iframe>")
    notice = (f'!!! warning "This copy of the site was built without the demo"\n\n'
              f"    {_missing[0].upper()}{_missing[1:]}.\n")
    return markdown[:start] + notice + markdown[end:]
