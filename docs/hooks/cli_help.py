"""MkDocs hook: put the `cvae` command's own --help texts where a page says `<!-- cvae-help -->`.

The command-line reference is generated from the argument parser at every build, so it is
never stale.
"""

import argparse
import os

MARKER = "<!-- cvae-help -->"


def on_page_markdown(markdown, page, config, files):  # noqa: D103 (MkDocs' hook signature)
    if MARKER not in markdown:
        return markdown
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width
    from cvae.cli import build_parser

    parser = build_parser()
    sections = [f"### `cvae`\n\n```\n{parser.format_help()}```\n"]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            sections += [f"### `cvae {name}`\n\n```\n{sub.format_help()}```\n"
                         for name, sub in action.choices.items()]
    return markdown.replace(MARKER, "\n".join(sections))
