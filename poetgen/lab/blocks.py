"""The report's building blocks (heading, paragraph, code, table, image) and their two renderings,
Markdown and HTML: a report is a list of blocks rendered twice, so ``report.md`` and
``report.html`` always say the same thing. The evidence section (``findings``) and the rest of
the report (``report``) both write blocks; neither needs the other to do so.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

# What the report calls the runs of each kind (``Checkpoint.kind``): runs are compared only
# with runs of their own kind.
KINDS = {"classify": "names classifiers", "names": "names generators", "poems": "poem language models"}



@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str  # `backticks` become inline code


@dataclass
class Code:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: Path  # a PNG inside the report folder
    alt: str


@dataclass
class Details:
    """Blocks folded away under a one-line summary (``<details>``: closed until clicked)."""
    summary: str
    blocks: list  # of Block


@dataclass
class Row:
    """Blocks side by side where the page is wide enough (two figures, two tables); one after the
    other on a phone and in Markdown."""
    blocks: list  # of Block


Block = Heading | Para | Code | Table | Image | Details | Row


def to_markdown(blocks: list[Block]) -> str:
    from poetgen.lab.compare import markdown_table

    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            parts.append(b.text)
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            parts.append(f"{fence}text\n{b.text}\n{fence}")
        elif isinstance(b, Table):
            parts.append(markdown_table(b.headers, b.rows))
        elif isinstance(b, Row):
            parts.append(to_markdown(b.blocks).rstrip("\n"))
        elif isinstance(b, Details):  # GitHub and most Markdown viewers fold it as HTML does
            parts.append(f"<details><summary>{html.escape(b.summary)}</summary>\n\n{to_markdown(b.blocks)}\n</details>")
        else:
            parts.append(f"![{b.alt}]({b.path.name})")
    return "\n\n".join(parts) + "\n"


# Fonts: the platform's UI font first, then CJK fonts by platform (macOS, Windows, Linux), so that
# poems never show as boxes where a Latin-only font comes first; monospace likewise.
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "PingFang SC",
       "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
       sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Noto Sans Mono CJK SC", "Noto Sans CJK SC",
            "Microsoft YaHei", monospace; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .85rem; }
code { background: #f6f8fa; padding: 0 .2rem; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
details { margin: .8rem 0; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; }
.row > div { flex: 1 1 20rem; min-width: 0; }
summary { cursor: pointer; font-weight: 600; }
p { overflow-wrap: break-word; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.5rem; }
"""


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def to_html(blocks: list[Block], title: str, fragment: bool = False) -> str:
    """One self-contained page (figures as data URIs); ``fragment``: only the body's elements."""
    from poetgen.lab.compare import _looks_numeric

    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Code):
            parts.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Row):
            cells = "".join(f"<div>{to_html([c], '', fragment=True)}</div>" for c in b.blocks)
            parts.append(f'<div class="row">{cells}</div>')
        elif isinstance(b, Details):
            inner = to_html(b.blocks, "", fragment=True)
            parts.append(f"<details><summary>{html.escape(b.summary)}</summary>\n{inner}\n</details>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            body = "".join(
                "<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if _looks_numeric(c)
                                 else f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            # wrapped, so a wide table scrolls inside its box instead of widening the page on a phone
            table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            parts.append(f'<div class="scroll">{table}</div>')
        else:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            parts.append(f'<p><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}"></p>')
    body = "\n".join(parts)
    if fragment:
        return body
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>'
            f'{html.escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
