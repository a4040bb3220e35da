"""No hand-typed numbers in the book's prose (issue 18, item 3).

Every numeral in the prose (``book/*.md`` and the markdown cells of ``notebooks/*.ipynb`` and
``notebooks/pending/*.ipynb``) must come from a record through a glue role, or be something that
is not a result: a citation, code, math, a path, or an entry of the one allow-list,
``tests/prose_numerals_allow.yml``, which gives each kept numeral its context and its reason.

What is not prose (blanked before the search, keeping line numbers):

- the YAML front matter, HTML comments, target labels ``(name)=``, heading anchors ``{#name}``,
  the markers of ordered lists (``1.``);
- fenced code and the bodies of code-like directives (``{math}``, ``{code-cell}``, ...); in the
  other directives (``{note}``, ``{figure}``, ...) the option lines (``:width: 80%``) and a
  path argument are blanked and the body stays prose;
- every role with its content (``{glue:text}`...```, ``{cite:p}`...```, ``{doc}``, ``{ref}``,
  ``{numref}``, ``{eq}``, ``{math}``), inline code spans, math (``$...$``, ``$$...$$``,
  ``\\(...\\)``, ``\\[...\\]``);
- link targets ``[text](target)`` (the text stays), URLs, file names and paths.

A numeral is a run of digits (with its decimal point, thousands commas, and a following
``%``, ``×`` or suffix such as ``3rd`` or ``2D``) that does not continue a word: the digits of
names such as ``QM9``, ``RQ1``, ``L2`` or ``float64`` are part of the name. Number words
("two", "nineteen") are not numerals.

Each allow-list entry names a file (a glob relative to the repository), a regular expression and
a reason; it covers a numeral when the expression matches, on the numeral's source line, a span
that contains it. An entry that covers nothing fails the test too, so the list stays honest.
``python tests/unit/test_prose_numerals.py`` prints every uncovered numeral.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALLOW_FILE = ROOT / "tests" / "prose_numerals_allow.yml"

# Directives whose body is not prose: blanked whole.
CODE_DIRECTIVES = {"math", "code", "code-block", "code-cell", "sourcecode", "literalinclude", "raw",
                   "eval-rst", "glue:figure", "glue:math", "glue", "bibliography", "tableofcontents",
                   "mermaid", "csv-table"}
# Directives whose argument is a path, not a title.
PATH_ARGUMENT_DIRECTIVES = {"figure", "image", "include", "glue:figure"}


@dataclass(frozen=True)
class Hit:
    file: str      # relative to the repository
    where: str     # "line 12" or "cell 3, line 4"
    line: str      # the source line
    start: int     # the numeral's span in the line
    end: int

    @property
    def numeral(self) -> str:
        return self.line[self.start:self.end]

    def describe(self) -> str:
        a, b = max(0, self.start - 40), min(len(self.line), self.end + 40)
        context = (("…" if a else "") + self.line[a:self.start] + "[" + self.numeral + "]"
                   + self.line[self.end:b] + ("…" if b < len(self.line) else ""))
        return f"{self.file}:{self.where}: {self.numeral!r} in: {context.strip()}"


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines (so line numbers and columns hold)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def _blank_all(text: str, pattern: str, flags: int = 0, group: int = 0) -> str:
    for m in reversed(list(re.finditer(pattern, text, flags))):
        if m.group(group) is not None:
            text = _blank(text, m.start(group), m.end(group))
    return text


def _blank_fences(text: str) -> str:
    """Blank fenced code, code-like directives, directive options and path arguments."""
    lines = text.split("\n")
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # (closing fence, body is code)
    opening = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(\{([\w:-]+)\})?\s*(.*)$")
    for line in lines:
        stripped = line.strip()
        if stack:
            fence, code = stack[-1]
            if stripped.startswith(fence[0] * 3) and stripped.strip(fence[0]) == "" \
                    and len(stripped) >= len(fence):
                stack.pop()
                out.append("")
                continue
            if code:
                out.append("")
                continue
        m = opening.match(line)
        if m and (not stack or not stack[-1][1]):
            fence, directive, argument = m.group(2), m.group(4), m.group(5)
            if directive is None:
                code = fence[0] != ":"  # plain ``` / ~~~ is code; plain ::: is a div
            else:
                code = directive in CODE_DIRECTIVES
            stack.append((fence, code))
            if directive and not code and directive not in PATH_ARGUMENT_DIRECTIVES:
                out.append(" " * (len(line) - len(argument)) + argument)  # a title is prose
            else:
                out.append("")
            continue
        if stack and re.match(r"^\s*:[\w-]+:(\s|$)", line):
            out.append("")  # a directive option
            continue
        out.append(line)
    return "\n".join(out)


def prose_only(text: str) -> str:
    """The text with everything that is not prose blanked (same length, same line breaks)."""
    # The YAML front matter.
    m = re.match(r"\A---\n.*?\n---\n", text, re.S)
    if m:
        text = _blank(text, 0, m.end())
    text = _blank_all(text, r"<!--.*?-->", re.S)
    # Fences first, by line; what survives is prose with inline markup.
    fenced = _blank_fences(text)
    text = "\n".join(a if a == b else (b + " " * (len(a) - len(b)) if len(b) <= len(a) else a)
                     for a, b in zip(text.split("\n"), fenced.split("\n")))
    text = _blank_all(text, r"^\s*\([\w:.-]+\)=\s*$", re.M)                  # (label)=
    text = _blank_all(text, r"\{#[\w:.-]+\}")                                  # {#anchor}
    text = _blank_all(text, r"^\s*\d+[.)](?=\s)", re.M)                         # 1. an ordered list
    text = _blank_all(text, r"\{[\w:.-]+\}(`+)(.+?)\1", re.S)                  # roles, glue, cite
    text = _blank_all(text, r"(`+)(.+?)\1", re.S)                             # code spans
    text = _blank_all(text, r"\$\$.+?\$\$", re.S)                             # display math
    text = _blank_all(text, r"(?<![\\$])\$(?!\s)[^$]+?(?<![\s\\])\$(?!\d)")  # inline math
    text = _blank_all(text, r"\\\(.+?\\\)|\\\[.+?\\\]", re.S)
    text = _blank_all(text, r"\]\(([^)\s]+)\)", group=1)                       # [text](target)
    text = _blank_all(text, r"^\s*\[[^\]]+\]:\s*\S+", re.M)                    # [ref]: target
    text = _blank_all(text, r"<https?://[^>]+>|https?://[^\s)>\]]+")           # URLs
    text = _blank_all(text, r"(?<![\w/])(?:\.{0,2}/)?(?:[\w.-]+/)+[\w.*-]*")   # paths a/b/c
    text = _blank_all(text, r"\b[\w*-]+\.(?:py|ipynb|md|json|ya?ml|txt|csv|png|svg|pdf|bib|cfg|"
                            r"toml|pt|npz|sh|html)\b")                        # file names
    return text


NUMERAL = re.compile(
    r"(?<![\w.])"                          # not the tail of a word or of a number (QM9, v1.2)
    r"[+\-−±]?\d+(?:[.,]\d+)*"              # 2,000  1.5  -3
    r"(?:\s?(?:%|×|x\b|k\b|M\b|st\b|nd\b|rd\b|th\b|[Dd]\b))?"  # 10 %  1.5×  3rd  2D
)


def numerals(text: str) -> list[tuple[int, int, int]]:
    """(line index, start, end) of every numeral left in prose text."""
    found = []
    for i, line in enumerate(prose_only(text).split("\n")):
        for m in NUMERAL.finditer(line):
            found.append((i, m.start(), m.end()))
    return found


def prose_documents() -> list[tuple[str, str | None, str]]:
    """(file, cell label or None, text) of every piece of prose in the book."""
    docs: list[tuple[str, str | None, str]] = []
    for path in sorted((ROOT / "book").glob("*.md")):
        docs.append((path.relative_to(ROOT).as_posix(), None, path.read_text(encoding="utf-8")))
    for pattern in ("notebooks/*.ipynb", "notebooks/pending/*.ipynb"):
        for path in sorted(ROOT.glob(pattern)):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for index, cell in enumerate(cells):
                if cell["cell_type"] == "markdown":
                    source = cell["source"]
                    text = "".join(source) if isinstance(source, list) else source
                    docs.append((path.relative_to(ROOT).as_posix(), f"cell {index}", text))
    return docs


def all_hits() -> list[Hit]:
    hits = []
    for file, cell, text in prose_documents():
        lines = text.split("\n")
        for i, start, end in numerals(text):
            where = f"line {i + 1}" if cell is None else f"{cell}, line {i + 1}"
            hits.append(Hit(file, where, lines[i], start, end))
    return hits


def load_allow_list() -> list[dict]:
    entries = yaml.safe_load(ALLOW_FILE.read_text(encoding="utf-8")) or []
    for entry in entries:
        assert set(entry) >= {"file", "pattern", "reason"}, f"allow-list entry lacks a key: {entry}"
        assert entry["reason"].strip(), f"allow-list entry without a reason: {entry}"
        entry["regex"] = re.compile(entry["pattern"])
    return entries


def covering(entry: dict, hit: Hit) -> bool:
    if not fnmatch.fnmatch(hit.file, entry["file"]):
        return False
    return any(m.start() <= hit.start and hit.end <= m.end() for m in entry["regex"].finditer(hit.line))


def sort_hits(hits: list[Hit], entries: list[dict]) -> tuple[list[Hit], list[dict]]:
    """The hits no entry covers, and the entries that cover no hit."""
    used = [False] * len(entries)
    uncovered = []
    for hit in hits:
        matched = [k for k, e in enumerate(entries) if covering(e, hit)]
        for k in matched:
            used[k] = True
        if not matched:
            uncovered.append(hit)
    return uncovered, [e for e, u in zip(entries, used) if not u]


# --- the scanner itself, on made-up prose -------------------------------------------------------

def test_scanner_skips_markup_and_finds_typed_numbers():
    text = "\n".join([
        "---", "title: Chapter 3", "---",
        "(sec-12)=",
        "## Results at 64× {#res-2}",
        "The net reaches {glue:text}`acc_1:.2f` % {cite:p}`paul2020journal15` in `run 12` steps.",
        "See {doc}`chapter2`, $x_1 = 10^{-3}$, [the runs](../data/results/x2.json) and https://a.b/3.",
        "Records live in data/results/mnist_2/ and lib/factorlab/report/qm9.py.",
        "```python", "x = 42", "```",
        "```{math}", "y = 2^{10}", "```",
        ":::{figure} figures/fig3.png", ":width: 80%", "A caption with 7 runs.", ":::",
        "1. QM9, RQ1, L2 and float64 are names; it took about 90 s, 1.5× longer, 2,000 times, 3rd, 10 %.",
    ])
    found = [prose_only(text).split("\n")[i][a:b] for i, a, b in numerals(text)]
    assert found == ["64×", "7", "90", "1.5×", "2,000", "3rd", "10 %"]


def test_scanner_keeps_directive_bodies_and_titles_as_prose():
    text = "```{note} Seen 3 times\n:class: dropdown\nIt took 5 runs.\n```\n"
    assert [prose_only(text).split("\n")[i][a:b] for i, a, b in numerals(text)] == ["3", "5"]


def test_allow_entry_covers_only_its_own_span():
    entry = {"file": "book/*.md", "pattern": r"hidden width (16|32)", "reason": "grid labels"}
    entry["regex"] = re.compile(entry["pattern"])
    line = "dense networks of hidden width 16 and 32, trained for 16 epochs"
    hits = [Hit("book/x.md", "line 1", line, m.start(), m.end()) for m in NUMERAL.finditer(line)]
    assert [covering(entry, h) for h in hits] == [True, False, False]
    assert not covering(entry, Hit("notebooks/x.ipynb", "cell 1, line 1", line, hits[0].start, hits[0].end))


# --- the book -----------------------------------------------------------------------------------

def test_no_hand_typed_numerals_in_the_prose():
    uncovered, unused = sort_hits(all_hits(), load_allow_list())
    message = []
    if uncovered:
        message.append(f"{len(uncovered)} numeral(s) in the prose are typed by hand: glue them from a "
                       f"record, or list them in {ALLOW_FILE.relative_to(ROOT)} with the reason:")
        message += ["  " + hit.describe() for hit in uncovered]
    if unused:
        message.append(f"{len(unused)} allow-list entr(y/ies) cover no numeral any more: remove them:")
        message += [f"  {e['file']}: {e['pattern']!r}" for e in unused]
    assert not message, "\n".join(message)


def test_allow_list_entries_have_reasons_and_categories():
    for entry in load_allow_list():
        assert entry.get("category") in CATEGORIES, f"allow-list entry with an unknown category: {entry}"


CATEGORIES = {"name", "definition", "label", "setting", "citation", "version", "pending"}


if __name__ == "__main__":
    entries = load_allow_list() if ALLOW_FILE.exists() else []
    hits = all_hits()
    uncovered, unused = sort_hits(hits, entries)
    for hit in uncovered:
        print(hit.describe())
    for e in unused:
        print("UNUSED:", e["file"], e["pattern"])
    print(f"{len(hits)} numerals, {len(uncovered)} uncovered, {len(unused)} unused entries")
