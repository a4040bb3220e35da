"""Sphinx fixes for the built site (a local extension named in _config.yml).

sphinx-thebe 0.3.1 adds its inline configuration script once with ``filename=None`` and
Sphinx 7.4 re-adds the registry's copy with ``filename=''``; both land in every page, and the
second ``const THEBE_JS_URL`` is a SyntaxError in the reader's console. Drop repeated inline
scripts from each page's context.

The library reference (``book/library.md``) renders a chosen part of the package's docstrings,
which cross-reference the rest of the package for a reader of the source. A Python reference
written in such a docstring whose target the book does not document is shown as code without
a link instead of failing the strict (nitpicky) build; a reference written in the book's own
pages still must resolve.
"""
from __future__ import annotations


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for js in scripts:
        key = (getattr(js, "filename", None) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def _docstring_reference(app, domain, node) -> bool | None:
    """True (warning handled) for an unresolved ``py`` reference inside a factorlab docstring."""
    source = node.source or ""
    if domain is not None and domain.name == "py" and "docstring of factorlab." in source:
        return True
    return None


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    app.connect("warn-missing-reference", _docstring_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
