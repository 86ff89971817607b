"""The table of refused inputs in docs/refused-inputs.md, for the tests that check each row.

Each row names a case, the error's type and its message, where `<...>` stands for a part
that changes from call to call (a path, a URL). A test triggers the case and calls
`assert_refused(case, error)`; test_refusals.py checks that every row has such a test.
"""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "refused-inputs.md"
# The error is an exception's type, or for the command line `exit N` (its status).
_ROW = re.compile(r"^\| `([a-z0-9-]+)` \| .*? \| `(\w+|exit \d+)` \| `(.*)` \|$", re.MULTILINE)


def documented() -> dict[str, tuple[str, str]]:
    """Case -> (error type name, message) for every row of the table."""
    rows = _ROW.findall(PAGE.read_text(encoding="utf-8"))
    table = {case: (error, message) for case, error, message in rows}
    assert len(table) == len(rows), "a case is listed twice"
    return table


def assert_refused(case: str, error: BaseException | str) -> None:
    """Assert that `error` (an exception, or a last line `Type: message`) is the row's."""
    name, message = ((type(error).__name__, str(error) if not isinstance(error, KeyError)
                      else error.args[0]) if isinstance(error, BaseException)
                     else error.split(": ", 1))
    want_name, want = documented()[case]
    pattern = ".+?".join(re.escape(part) for part in re.split(r"<[^<>]+>", want))
    assert name == want_name, f"{case}: raised {name}, the table says {want_name}"
    assert re.fullmatch(pattern, message), f"{case}: raised\n  {message}\nthe table says\n  {want}"
