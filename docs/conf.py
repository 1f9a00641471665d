"""Sphinx configuration of the fastpool documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
Works offline: no intersphinx inventories, no remote images.  The gallery and
the benchmark plot are drawn by ``docs/gallery.py`` at the start of every build
(into ``docs/_gallery/``, git-ignored), so the pictures are never stale.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for gallery.py

import fastpool  # noqa: E402

project = "fastpool"
author = "the fastpool developers"
copyright = "the fastpool developers"
version = release = fastpool.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_gallery", "Thumbs.db", ".DS_Store"]
templates_path = []
html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["fastpool.css"]
html_title = f"fastpool {release}"
html_theme_options = {
    "description": "Fast N-dimensional pooling of NumPy arrays",
    "page_width": "1100px",
    "sidebar_width": "230px",
}

# --- autodoc / autosummary / numpydoc
autosummary_generate = False  # the API page lists every function itself
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures are the docstrings' business
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# --- MyST: the Markdown pages in docs/ are used as they are
myst_heading_anchors = 3
myst_enable_extensions = []

# Markdown files outside docs/ shown as pages (by a MyST include): links to
# them from any page, written for GitHub (``../README.md``), go to the page.
ROOT = os.path.dirname(HERE)
INCLUDED = {"README.md": "readme", os.path.join("benchmarks", "README.md"): "methodology"}


def _draw_pictures(app):
    import gallery
    gallery.main(os.path.join(HERE, "_gallery"))


def _link_included(app, doctree):
    """Point MyST links to a file outside docs/ that a page includes at that page.

    A link in an included file (the README's ``docs/semantics.md`` is handled by
    the include's ``relative-docs``) is relative to that file; one to any other
    existing file outside docs/ (written for GitHub) keeps its text, unlinked.
    """
    from sphinx import addnodes
    srcdir = os.path.normpath(str(app.srcdir))
    for node in list(doctree.findall(addnodes.pending_xref)):
        if node.get("reftype") != "myst":
            continue
        target = node.get("reftarget", "")
        if node.get("refdomain") == "doc":
            path, anchor = os.path.join(srcdir, target) + ".md", node.get("reftargetid")
        elif (node.get("refdomain") is None and "://" not in target
              and not target.startswith(("#", "mailto:"))):
            target, _, anchor = target.partition("#")
            source = node.source or str(app.env.doc2path(app.env.docname))
            path = os.path.join(os.path.dirname(source), target)
        else:
            continue
        path = os.path.normpath(path)
        page = INCLUDED.get(os.path.relpath(path, ROOT))
        if page is not None:
            node["refdomain"], node["reftarget"] = "doc", page
            node["reftargetid"] = anchor or None
        elif os.path.exists(path) and os.path.commonpath([path, srcdir]) != srcdir:
            node.replace_self(node[0].deepcopy() if len(node) else [])


def setup(app):
    app.connect("builder-inited", _draw_pictures)
    app.connect("doctree-read", _link_included)

