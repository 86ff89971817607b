"""MkDocs hook: pages that include a file from the repository's root, with its links made site links.

CHANGELOG.md is written to be read on GitHub, from the root, so it links the guide as
`docs/evaluation.md`; on the site, where the changelog page lives in docs/, that link is
`evaluation.md`. A page includes such a file with a snippet line (`--8<-- "CHANGELOG.md"`);
this hook puts the file there with its links rewritten, before MkDocs checks the links
(the snippets extension would include it after: `mkdocs build --strict` failed on them).
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SNIPPET = re.compile(r'^--8<-- "([^"/]+)"$', re.MULTILINE)
_INTO_DOCS = re.compile(r"\]\(docs/")


def _included(match: re.Match) -> str:
    return _INTO_DOCS.sub("](", (ROOT / match.group(1)).read_text(encoding="utf-8"))


def on_page_markdown(markdown, page, config, files):  # noqa: D103 (MkDocs' hook signature)
    return _SNIPPET.sub(_included, markdown)
