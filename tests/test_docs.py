"""The code in the docs and the README runs, so that it cannot rot.

Each page's Python blocks run top to bottom in a fresh process in an empty folder, in a
quick mode: `epochs=10` becomes `epochs=1`, and a Trainer given no length gets a ceiling
of 50 steps (one epoch, where an epoch is longer). The Hub and custom-data pages run in
test_hub_server.py, against its servers.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cards import ACCURACY, IWAE, NELBO, card_metrics

import cvae

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]
               if p.name not in ("hub.md", "tutorial.md", "custom-data.md")
               and "```python" in p.read_text())


def python_code(page: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)
    code = "\n".join(blocks).replace("epochs=10", "epochs=1")
    return re.sub(r"(Trainer\((?:(?!epochs)[^()]|\([^()]*\))*)\)", r"\1, max_steps=50)", code)


# Pages that repeat the same code (the README and the docs' home page) run it once.
CODE = {}
for _page in PAGES:
    CODE.setdefault(python_code(_page), []).append(_page.name)


@pytest.mark.slow  # each page in its own process
@pytest.mark.parametrize("code", list(CODE), ids=["+".join(names) for names in CODE.values()])
def test_page_code_runs(code, tmp_path):
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # The quick start, no warning of the library's own nor Python's (it warned about itself).
    # Other pages run shortened (1 epoch of 10), which the library may rightly call short.
    if "README.md" in CODE[code]:
        assert out.stderr == "", out.stderr[-3000:]


@pytest.mark.parametrize("name", ["mnist-conv", "mnist-mlp"])
def test_the_readmes_model_figures_are_the_cards(name):
    """The README quotes each bundled model's negative ELBO, IWAE bound and sample accuracy;
    they are the figures in its card, as `cvae eval --full` measured them."""
    card = card_metrics(name)
    row = next(line for line in (REPO / "README.md").read_text().splitlines()
               if line.startswith("| bundled models |"))
    quoted = row[row.index(f"`{name}`"):]
    figures = re.findall(r"(\d+\.\d+)%?", quoted)[:3]
    assert figures == [f"{card[NELBO]:.2f}", f"{card[IWAE]:.2f}", f"{card[ACCURACY]:.1f}"]


@pytest.mark.parametrize("card", sorted((REPO / "cvae" / "pretrained").glob("*/README.md")),
                         ids=lambda card: card.parent.name)
def test_every_image_a_bundled_card_shows_is_in_its_folder(card):
    """A card links its pictures by file name; the wheel ships the folder's PNGs beside it."""
    linked = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.read_text())
    assert [name for name in linked if not (card.parent / name).is_file()] == []


def test_the_guides_sampling_table_is_the_default_models_card_and_config():
    """The evaluation guide quotes mnist-conv's sweep; its card holds the same table, and its
    config the setting marked recommended there."""
    def table(text: str) -> list[str]:
        start = text.index("| temperature | sharpness | guidance |")
        return text[start:].split("\n\n")[0].splitlines()

    folder = REPO / "cvae" / "pretrained" / "mnist-conv"
    quoted = table((REPO / "docs" / "evaluation.md").read_text())
    assert quoted == table((folder / "README.md").read_text())
    marked = next(line for line in quoted if "**recommended**" in line)
    values = [float(cell.replace("**recommended**", "")) for cell in marked.split("|")[1:4]]
    assert dict(zip(("temperature", "sharpness", "guidance"), values)) == \
        cvae.ConditionalVAE.from_pretrained("mnist-conv").sampling


@pytest.mark.slow  # a process
def test_the_tutorial_writes_the_grids_it_shows(tmp_path):
    subprocess.run([sys.executable, "-c", python_code(REPO / "docs" / "tutorial.md")],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "sevens.png").is_file() and (tmp_path / "digits.png").is_file()
    assert cvae.ConditionalVAE.from_pretrained(tmp_path / "my-mnist-cvae").num_classes == 10


def test_every_public_name_has_an_api_entry():
    api = (REPO / "docs" / "api.md").read_text()
    missing = [name for name in cvae.__all__ if f"::: cvae.{name}\n" not in api]
    assert missing == []


def commands() -> list[str]:
    """The subcommands of the `cvae` parser, as it defines them."""
    import argparse

    from cvae.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_command_is_in_the_command_line_page():
    page = (REPO / "docs" / "cli.md").read_text()
    assert len(commands()) >= 8
    assert [c for c in commands() if f"cvae {c}" not in page] == []


@pytest.mark.parametrize("page", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))],
                         ids=lambda p: p.name)
def test_code_and_commands_fit_the_page_without_a_scroll_bar(page):
    """At 1280 px the built pages show about 115 characters of a code line (a scroll bar hid
    what passed 85 before the layout changed); output blocks (no language) wrap instead."""
    blocks = re.findall(r"```(?:python|bash)\n(.*?)```", page.read_text(), re.DOTALL)
    assert [line for block in blocks for line in block.splitlines() if len(line) > 110] == []


@pytest.mark.parametrize("page", sorted((REPO / "docs").glob("*.md")), ids=lambda p: p.name)
def test_the_doc_images_exist(page):
    for image in re.findall(r"\]\((images/[^)]+)\)", page.read_text()):
        assert (REPO / "docs" / image).is_file(), image


@pytest.mark.slow  # builds the whole site
def test_the_built_reference_shows_examples_as_code_and_no_stray_entries(built_site):
    site = built_site
    api = (site / "api" / "index.html").read_text()
    assert "&gt;&gt;&gt;" not in api  # no doctest prompts rendered as nested quotes
    for anchor, code in (('id="cvae.ConditionalVAE"', "ConditionalVAE</span><span class=\"p\">()"),
                         ('id="cvae.sample"', "cvae</span><span class=\"o\">.</span><span"
                                              " class=\"n\">sample</span>")):
        section = api[api.index(anchor):]
        example = section[section.index("<summary>Example</summary>"):][:600]
        assert '<div class="highlight"><pre>' in example and code in example, anchor
    for name in ("data_root", "list_datasets", "native_bfloat16"):
        assert name in api
    # Internal methods are not part of the reference (they were listed before).
    for name in ("check_data", "decode_chunk", "labels_to_tensor", "register_to_config"):
        assert f'id="cvae.ConditionalVAE.{name}"' not in api
        assert f'id="cvae.ConditionalVAE._{name}"' not in api
    assert 'id="cvae.ConditionalVAE.sample"' in api and 'id="cvae.ConditionalVAE.from_pretrained"' in api
    cli = (site / "cli" / "index.html").read_text()
    assert 'href="#cvae.cli.main"' not in cli  # main's docs are there, without a contents entry
    assert "command with <code>argv</code>" in cli


def load_hook(name):
    spec = importlib.util.spec_from_file_location(f"hook_{name}", REPO / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_site_built_without_npm_says_so_on_the_try_it_page(tmp_path, monkeypatch):
    hook = load_hook("demo")
    page = (REPO / "docs" / "try-it.md").read_text()
    monkeypatch.setattr(hook, "BUILT", [tmp_path / "ort.wasm.min.js"])  # not built yet
    monkeypatch.setattr(hook.shutil, "which", lambda name: None)  # and no npm
    hook.on_pre_build(None)
    shown = hook.on_page_markdown(page, None, None, None)
    assert "<iframe" not in shown and "without the demo" in shown and "apt-get install npm" in shown
    assert hook.on_page_markdown("# Other page", None, None, None) == "# Other page"
    (tmp_path / "ort.wasm.min.js").write_text("")  # built: the frame stays
    hook.on_pre_build(None)
    assert hook.on_page_markdown(page, None, None, None) == page
