"""The Sphinx documentation in docs/ builds without a warning, and its API page
documents every public name."""

import pathlib
import subprocess
import sys

import fastpool
import fastpool.grad

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PICTURES = ["methods.png", "aliasing.png", "labels.png", "gradients.png", "benchmarks.png",
            "roofline.png"]


def test_sphinx_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(html)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"sphinx-build failed (status {result.returncode}):\n"
        f"{result.stderr}\n{result.stdout[-5000:]}")
    assert result.stderr.strip() == "", result.stderr

    api = (html / "api.html").read_text(encoding="utf-8")
    missing = [f"fastpool.{name}" for name in fastpool.__all__
               if f'id="fastpool.{name}"' not in api]
    missing += [f"fastpool.grad.{name}" for name in fastpool.grad.__all__
                if f'id="fastpool.grad.{name}"' not in api]
    assert not missing, f"not documented on the API page: {missing}"

    # the gallery and the benchmark chart are drawn during the build
    for name in PICTURES:
        assert (html / "_images" / name).stat().st_size > 1000, name
    for page in ["index", "getting_started", "guide", "semantics", "dask", "gradients",
                 "migration", "gallery", "benchmarks", "readme", "methodology"]:
        assert (html / f"{page}.html").is_file(), page
