"""The committed benchmark results (benchmarks/results/*.json) are what the docs
show: the tables of docs/benchmarks.md are rendered from them, the charts are
drawn from them, and thread_scaling.py writes the layout the chart reads."""

import copy
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
DOCS_PAGE = ROOT / "docs" / "benchmarks.md"
TABLES = ["basic", "order", "weighted", "geometry", "grad"]

sys.path.insert(0, str(BENCH))
import charts  # noqa: E402
import table  # noqa: E402


def synthetic_bench(threads=("1", "2")):
    """A tiny result in the layout of bench_basic.py --json: two cases, one of them
    without fastpool (n/a), one faster and one slower than its peer."""
    env = {"cpu": "Synthetic CPU 9000", "cpu_count": 64, "affinity": 64, "numpy": "9.9", "torch": "none"}
    results = {}
    for t in threads:
        results[t] = [
            {"case": "float32 8x8 2x2/2 max", "fastpool_ms": 1.0 / int(t), "fastpool_check": "exact",
             "fastest_peer": "torch", "fastest_peer_ms": 4.0, "ratio_fastpool_fastest_peer": 0.25 / int(t),
             "ratio_fastpool_roofline": 2.0 / int(t),
             "peers": {"torch": {"ms": 4.0, "check": "lsb", "timed_once": False}}},
            {"case": "float32 8x8 2x2/2 mean", "fastpool_ms": None, "fastpool_check": None,
             "fastest_peer": "cv2", "fastest_peer_ms": 0.5, "ratio_fastpool_fastest_peer": None,
             "ratio_fastpool_roofline": None, "peers": {"cv2": {"ms": 0.5, "check": "exact"}}},
        ]
    return {"benchmark": "bench_basic", "command": "python benchmarks/bench_basic.py --json x.json",
            "environment": env, "threads": [int(t) for t in threads], "results": results}


def synthetic_scaling():
    env = {"cpu": "Synthetic CPU 9000", "cpu_count": 8, "affinity": 8, "numpy": "9.9", "torch": "9.9"}
    rows = [{"case": "float32 8x8 global avg", "fastpool_ms": {"1": 8.0, "2": 4.2, "4": 2.5, "8": 2.0},
             "speedup": {"1": 1.0, "2": 8 / 4.2, "4": 8 / 2.5, "8": 4.0},
             "peers_ms": {"numpy": {"1": 7.0}, "torch": {"1": 7.5, "2": 4.0, "4": 3.0, "8": 2.9}},
             "other_cpu_load": {"1": 0.0, "2": 0.0, "4": 0.2, "8": 0.0}},
            {"case": "uint8 8x8 pyramid avg 4 levels", "fastpool_ms": {"1": 1.0, "2": 0.6, "4": 0.5, "8": 0.5},
             "speedup": {"1": 1.0, "2": 1 / 0.6, "4": 2.0, "8": 2.0}, "peers_ms": {}, "other_cpu_load": {}}]
    return {"benchmark": "thread_scaling", "command": "python benchmarks/thread_scaling.py",
            "quick": False, "threads": [1, 2, 4, 8], "repeats": 7, "environment": env, "results": rows}


# --------------------------------------------------------------------------- tables


def test_rows_from_a_later_run_are_marked_with_their_machine():
    data = synthetic_bench()
    plain = table.render(data)
    assert " *" not in plain
    later_env = dict(data["environment"], cpu="Later CPU 1")
    data["rows_from_a_later_run"] = {"cases": ["float32 8x8 2x2/2 mean"],
                                     "command": "python benchmarks/bench_basic.py --cases mean",
                                     "environment": later_env, "note": "after a change"}
    marked = table.render(data)
    rows = [line for line in marked.splitlines() if line.startswith("| float32")]
    assert rows[0].startswith("| float32 8x8 2x2/2 max |")
    assert rows[1].startswith("| float32 8x8 2x2/2 mean * |")
    assert "`python benchmarks/bench_basic.py --cases mean` on Later CPU 1, 64 cores" in marked
    assert "Synthetic CPU 9000" in marked


@pytest.mark.parametrize("page", [DOCS_PAGE, ROOT / "README.md"], ids=lambda p: p.name)
def test_docs_tables_are_rendered_from_the_committed_json(page):
    text = page.read_text(encoding="utf-8")
    tables = table.doc_tables(text)
    assert list(tables) == TABLES
    for name in TABLES:
        data = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        expected = table.render(data)
        assert tables[name] == expected, (
            f"{page.name}'s table {name!r} differs from benchmarks/results/{name}.json: "
            "run python benchmarks/table.py --update-docs")
        assert table.machine(data["environment"]) in expected
    assert table.update_docs(text) == text
    assert table.main(["--check-docs", "--docs", str(page)]) == 0


def test_update_docs_rewrites_only_between_the_markers(tmp_path):
    (tmp_path / "basic.json").write_text(json.dumps(synthetic_bench()), encoding="utf-8")
    page = ("# Title\n\nHand-written prose.\n\n<!-- table: basic -->\n\n| stale | table |\n|---|---|\n\n"
            "Measured with an old command.\n\n<!-- /table -->\n\nMore prose: 0.99x.\n")
    docs = tmp_path / "page.md"
    docs.write_text(page, encoding="utf-8")
    assert table.main(["--check-docs", "--docs", str(docs), "--results", str(tmp_path)]) == 1
    assert table.main(["--update-docs", "--docs", str(docs), "--results", str(tmp_path)]) == 0
    new = docs.read_text(encoding="utf-8")
    assert new.startswith("# Title\n\nHand-written prose.\n\n<!-- table: basic -->\n\n| case |")
    assert new.endswith("\n\n<!-- /table -->\n\nMore prose: 0.99x.\n")
    assert "stale" not in new and "old command" not in new
    assert table.doc_tables(new)["basic"] == table.render(synthetic_bench())
    assert table.main(["--check-docs", "--docs", str(docs), "--results", str(tmp_path)]) == 0


def test_render_synthetic():
    lines = table.render(synthetic_bench()).splitlines()
    assert lines[0] == ("| case | 1 thread: fastpool ms | / fastest peer | / roofline "
                        "| 2 threads: fastpool ms | / fastest peer | / roofline |")
    assert lines[2] == ("| float32 8x8 2x2/2 max | 1.00 | 0.25 (torch 4†) | 2.00 "
                        "| 0.50 | 0.12 (torch 4†) | 1.00 |")
    assert lines[3] == "| float32 8x8 2x2/2 mean | n/a | n/a (cv2 0.5) | n/a | n/a | n/a (cv2 0.5) | n/a |"
    assert "Synthetic CPU 9000, 64 cores, numpy 9.9, torch none" in lines[-1]
    assert "† integer results within 1" in lines[-1]


def test_render_gradients_has_a_column_per_peer():
    data = json.loads((RESULTS / "grad.json").read_text(encoding="utf-8"))
    lines = table.render(data).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:5] == ["case", "1 thread: fastpool ms", "/ torch backward", "/ torch fwd+bwd", "/ roofline"]
    first = data["results"]["1"][0]
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == first["case"].removesuffix(" grad")
    assert cells[1] == format(first["fastpool_ms"], ".3g")
    assert cells[2] == format(first["fastpool_ms"] / first["peers"]["torch-backward"]["ms"], ".2f")
    assert cells[3] == format(first["fastpool_ms"] / first["peers"]["torch-fwd+bwd"]["ms"], ".2f")
    assert cells[4] == format(first["ratio_fastpool_roofline"], ".2f")


def test_render_thread_scaling():
    data = synthetic_scaling()
    text = table.render(data)
    assert "| float32 8x8 global avg | 8.00 (1.00x) | 4.20 (1.90x) | 2.50 (3.20x) | 2.00 (4.00x) |" in text
    assert "QUICK" not in text
    data["quick"] = True
    assert "QUICK RUN" in table.render(data)


# --------------------------------------------------------------------------- charts


@pytest.fixture
def drawn_text(monkeypatch):
    """Every string the charts draw."""
    texts = []
    draw = charts.draw_text

    def record(canvas, text, *args, **kwargs):
        texts.append(text)
        draw(canvas, text, *args, **kwargs)
    monkeypatch.setattr(charts, "draw_text", record)
    return texts


def assert_picture(image, colours=()):
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 40 and image.shape[1] > 100
    assert (image != charts.BACKGROUND).any(axis=2).mean() > 0.01  # something is drawn
    for colour in colours:
        assert (image == colour).all(axis=2).any(), colour


GREEN, RED = (40, 140, 70), (200, 60, 50)


@pytest.mark.parametrize("kind", ["peer", "roofline"])
def test_ratio_charts_from_the_committed_json(kind, drawn_text):
    results = charts.load_results()
    assert set(TABLES) <= set(results)
    image = charts.ratio_chart(results, kind)
    assert_picture(image, [GREEN, RED])
    machine = table.machine(results["basic"]["environment"])
    assert any(machine in t for t in drawn_text), "the chart names the machine"
    rows = charts.ratio_rows(results, kind)
    sections = {r[0] for r in rows}
    assert sections == ({"basic", "order", "weighted", "geometry"} | ({"grad"} if kind == "roofline" else set()))
    assert len(rows) == sum(len(results[s]["results"]["1"]) for s in sections)
    for _, case, _, _, _ in rows:
        assert any(case in t for t in drawn_text), case


def test_ratio_chart_from_synthetic_json(drawn_text):
    image = charts.ratio_chart({"basic": synthetic_bench()}, "peer")
    assert_picture(image, [GREEN])  # 0.25 and 0.125: green bars only
    assert not (image == RED).all(axis=2).any()
    assert any("Synthetic CPU 9000, 64 cores" in t for t in drawn_text)
    assert "0.25 / 0.12" in drawn_text and "n/a / n/a" in drawn_text
    one = charts.ratio_chart({"basic": synthetic_bench(threads=("1",))}, "roofline")
    assert_picture(one, [RED])  # 2.0 at one thread


def test_thread_scaling_chart(drawn_text):
    image = charts.thread_scaling_chart(synthetic_scaling())
    assert_picture(image, [charts.BLUE, charts.ORANGE, charts.RED])  # red: the disturbed point
    assert any("Synthetic CPU 9000, 8 cores" in t for t in drawn_text)
    assert "4.00x" in drawn_text and "uint8 8x8 pyramid avg 4 levels" in drawn_text
    missing = charts.thread_scaling_chart(None)
    assert missing.ndim == 3 and any("thread_scaling.py --json" in t for t in drawn_text)
    committed = charts.load_results().get("thread_scaling")
    if committed is not None:
        assert_picture(charts.thread_scaling_chart(committed), [charts.BLUE])
        assert any(table.machine(committed["environment"]) in t for t in drawn_text)


def test_docs_build_draws_the_three_charts(tmp_path):
    paths = charts.main(str(tmp_path))
    assert sorted(pathlib.Path(p).name for p in paths) == ["benchmarks.png", "roofline.png",
                                                            "thread_scaling.png"]
    for p in paths:
        assert pathlib.Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- thread_scaling.py


def test_thread_scaling_writes_its_json(tmp_path):
    out = tmp_path / "ts.json"
    cmd = [sys.executable, str(BENCH / "thread_scaling.py"), "--quick", "--threads", "1",
           "--cases", "global max,pyramid max", "--json", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["benchmark"] == "thread_scaling" and data["quick"] is True
    assert data["threads"] == [1] and data["repeats"] == 3
    assert "--quick --threads 1" in data["command"]
    env = data["environment"]
    for key in ("cpu", "cpu_count", "numpy", "torch", "fastpool"):
        assert key in env, key
    assert [r["case"] for r in data["results"]] == ["float32 1024x1024 global max",
                                                    "uint8 1024x1024 pyramid max 4 levels"]
    for r in data["results"]:
        assert set(r) >= {"case", "fastpool_ms", "speedup", "peers_ms", "other_cpu_load"}
        assert r["fastpool_ms"]["1"] > 0 and r["speedup"] == {"1": 1.0}
    assert data["results"][0]["peers_ms"]["numpy"]["1"] > 0
    assert data["results"][1]["peers_ms"] == {}
    assert "QUICK RUN" in table.render(data)
    # A dot turns red where other processes loaded the CPU during the timing, which
    # a busy CI machine does at random: the chart is checked for the colours the
    # measured loads call for, then with the loads pinned both ways.
    busy = [(r["other_cpu_load"].get("1") or 0) > 0.05 for r in data["results"]]
    assert_picture(charts.thread_scaling_chart(data),
                   [charts.RED if b else charts.BLUE for b in busy])
    for load, colour in ((0.0, charts.BLUE), (0.5, charts.RED)):
        pinned = copy.deepcopy(data)
        for r in pinned["results"]:
            r["other_cpu_load"] = {"1": load}
        assert_picture(charts.thread_scaling_chart(pinned), [colour])


def test_default_threads():
    spec = importlib.util.spec_from_file_location("thread_scaling", BENCH / "thread_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.default_threads(1) == [1]
    assert module.default_threads(2) == [1, 2]
    assert module.default_threads(12) == [1, 2, 4, 8, 12]
    assert module.default_threads(16) == [1, 2, 4, 8, 16]
    assert module.default_threads() == module.default_threads(module.usable_cores())
    doc = module.payload([], [1, 2], 7, False, "cmd", env=copy.deepcopy(synthetic_scaling()["environment"]))
    assert set(doc) >= {"benchmark", "command", "quick", "threads", "repeats", "environment", "results"}
