"""Every example in the README, the docs and the public docstrings runs as written."""

import doctest
import pathlib

import pytest

import fastpool._beyond
import fastpool._order
import fastpool._pool
import fastpool._support
import fastpool._testimages
import fastpool._weighted
import fastpool._zarr
import fastpool.grad

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_page_examples(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=FLAGS)
    assert result.failed == 0


@pytest.mark.parametrize("module", [fastpool._pool, fastpool._beyond, fastpool._order, fastpool._weighted,
                                    fastpool._support, fastpool._testimages, fastpool.grad,
                                    fastpool._zarr],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
    assert result.attempted > 0
