"""Print the single-page build of the book to one PDF with the system's headless Chromium.

``make pdf`` builds ``_build/singlehtml`` (``jupyter-book build --builder singlehtml``) and runs
``python tests/browser/print_pdf.py _build/singlehtml _build/pdf/book.pdf``. The page is served
on 127.0.0.1 with no other network, MathJax typesets every formula and every image loads before
Chromium prints; the print rules of ``book/_static/custom.css`` set A4 pages and fit tables and
figures to the page width. No TeX installation is needed.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from cdp import Chromium, StaticServer

CHECK_JS = (Path(__file__).parent / "check_page.js").read_text()
PAPER_WIDTH_PX = round((210 - 2 * 12) / 25.4 * 96)  # A4 less custom.css's 12 mm side margins, in CSS pixels


def single_page(site: Path) -> Path:
    """The one page of a singlehtml build, copied to ``print.html`` at the build's root.

    Sphinx writes it as ``<root document>.html`` (``book/abstract.html``) but with every link
    relative to the build's root, so it only renders from there; ``index.html`` redirects to it.
    """
    index = site / "index.html"
    match = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index.read_text(), re.I)
    page = site / match.group(1) if match else index
    if not page.is_file():
        raise FileNotFoundError(f"no single-page build at {page}: run `jupyter-book build . --builder singlehtml`")
    printable = site / "print.html"
    printable.write_text(page.read_text())
    return printable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the singlehtml build folder")
    parser.add_argument("pdf", type=Path, help="the PDF to write")
    args = parser.parse_args(argv)
    page = single_page(args.site.resolve())
    args.pdf.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with StaticServer(args.site) as server, Chromium(timeout=300) as chromium:
        # Lay the page out as it prints (A4 less the margins of custom.css), so that the check of the main
        # column finds what would be wider than the paper (Chromium would shrink every page to fit it).
        chromium.send("Emulation.setEmulatedMedia", media="print")
        chromium.send("Emulation.setDeviceMetricsOverride", width=PAPER_WIDTH_PX, height=1100,
                      deviceScaleFactor=1, mobile=False)
        chromium.open(server.url + page.relative_to(args.site.resolve()).as_posix())
        result = chromium.evaluate(CHECK_JS)
        chromium.print_pdf(args.pdf)
    stats = result["stats"]
    print(f"{args.pdf}: {args.pdf.stat().st_size / 1e6:.1f} MB, {stats['formulas']} formulas, "
          f"{stats['images']} images, {stats['tables']} tables, {time.monotonic() - start:.0f} s")
    # Raw TeX, images not loaded and anything wider than the paper: the PDF is written, and each is reported.
    for problem in result["problems"]:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
