"""mkdocs hooks: pages generated at build time, so they never go stale.

* ``cli.md``: the ``<!-- dfkd:cli -->`` marker becomes ``dfkd --help`` and ``dfkd COMMAND --help`` for
  every subcommand, rendered from the argparse parser itself (``dfkd.cli.build_parser``).
* ``benchmarks/*.md``: one page per ``benchmarks/results/*.md`` file of the source tree, and the
  ``<!-- dfkd:benchmarks -->`` marker of ``benchmarks.md`` becomes the list of those pages.
* ``<!-- dfkd:readme-command-N -->``: the README's N-th ``bash`` block (the quickstart commands);
  ``<!-- dfkd:readme-status -->``: the README's status table of benchmark results.
* API pages: Sphinx roles left in docstrings (``:class:`X```) render as plain code.

Run ``python docs/hooks.py`` to print the CLI reference alone.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")
CLI_MARKER = "<!-- dfkd:cli -->"
README_COMMAND = re.compile(r"<!-- dfkd:readme-command-(\d+) -->")
STATUS_MARKER = "<!-- dfkd:readme-status -->"
SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|math):(?=<code>)")
BENCH_MARKER = "<!-- dfkd:benchmarks -->"
HELP_WIDTH = "100"


def _subcommands(parser: argparse.ArgumentParser) -> List[Tuple[str, argparse.ArgumentParser, str]]:
    for action in parser._actions:  # argparse keeps subparsers as one action among the others
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            return [(name, sub, helps.get(name) or "") for name, sub in action.choices.items()]
    return []


def cli_reference() -> str:
    """Markdown: the top-level help, then one section per subcommand with its full ``--help``."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from dfkd.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps at the terminal width: fix it for the docs
    try:
        parser = build_parser()
        parts = ["```text", parser.format_help().rstrip(), "```", ""]
        for name, sub, summary in _subcommands(parser):
            parts += [f"## dfkd {name}", "", f"{summary[:1].upper()}{summary[1:]}." if summary else "", "",
                      "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(parts)


def _results_files() -> List[str]:
    """Generated tables first, then the archive of tables whose raw runs were never committed."""
    return sorted(glob.glob(os.path.join(RESULTS, "*.md"))) + sorted(glob.glob(os.path.join(RESULTS, "archive", "*.md")))


def _page_name(path: str) -> str:
    name = os.path.relpath(path, RESULTS).replace(os.sep, "/")
    if name.endswith("README.md"):
        name = name[: -len("README.md")] + "results.md"
    return f"benchmarks/{name}"


def _title(text: str, fallback: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, flags=re.M)
    return match.group(1).strip() if match else fallback


def benchmark_index() -> str:
    lines = []
    for path in _results_files():
        text = open(path, encoding="utf-8").read()
        name = os.path.relpath(path, RESULTS).replace(os.sep, "/")
        lines.append(f"- [{_title(text, name)}]({_page_name(path)}) (`benchmarks/results/{name}`)")
    return "\n".join(lines) if lines else "_No benchmark results in this source tree._"


def readme_commands() -> List[str]:
    text = open(README, encoding="utf-8").read()
    return re.findall(r"```bash\n.+?\n```", text, flags=re.S)


def readme_status() -> str:
    """The README's paragraph starting with 'Status' and the table after it."""
    text = open(README, encoding="utf-8").read()
    match = re.search(r"^Status.+?\n\n(?:\|[^\n]*\n)+", text, flags=re.M | re.S)
    if not match:
        raise ValueError("README.md has no 'Status ...' paragraph followed by a table for docs/benchmarks.md")
    return match.group(0).strip()


# ---- mkdocs hook entry points ----------------------------------------------------------------
def on_config(config):
    """Nest the generated result pages under the nav entry of ``benchmarks.md``."""
    pages = [{"Overview": "benchmarks.md"}]
    for path in _results_files():
        text = open(path, encoding="utf-8").read()
        pages.append({_title(text, os.path.basename(path)): _page_name(path)})
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and list(entry.values()) == ["benchmarks.md"]:
            nav[i] = {next(iter(entry)): pages}
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for path in _results_files():
        text = open(path, encoding="utf-8").read()
        note = (f"\n\n---\n_Generated from `benchmarks/results/{os.path.relpath(path, RESULTS)}` of the source tree "
                "at documentation build time._\n")
        files.append(File.generated(config, _page_name(path), content=text + note))
    return files


def on_page_markdown(markdown, page, config, files):
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if BENCH_MARKER in markdown:
        markdown = markdown.replace(BENCH_MARKER, benchmark_index())
    if STATUS_MARKER in markdown:
        markdown = markdown.replace(STATUS_MARKER, readme_status())
    if README_COMMAND.search(markdown):
        commands = readme_commands()

        def command(match):
            n = int(match.group(1))
            if not 1 <= n <= len(commands):
                raise ValueError(f"{page.file.src_uri}: README.md has no bash block {n} (it has {len(commands)})")
            return commands[n - 1]

        markdown = README_COMMAND.sub(command, markdown)
    return markdown


def on_page_content(html, page, config, files):
    return SPHINX_ROLE.sub("", html)


if __name__ == "__main__":
    print(cli_reference())
