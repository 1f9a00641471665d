"""Render the compact results tables of the docs from the JSON the benchmark
scripts write with ``--json`` (``bench_basic.py``, ``bench_order.py``,
``bench_weighted.py``, ``bench_geometry.py``, ``bench_grad.py``: one layout;
``thread_scaling.py``: its own).

    python benchmarks/table.py results.json     # print one table
    python benchmarks/table.py --update-docs    # rewrite the tables of docs/benchmarks.md
    python benchmarks/table.py --check-docs     # exit 1 if they differ from the JSON

The committed results, one file per script, are ``benchmarks/results/<name>.json``
(``basic``, ``order``, ``weighted``, ``geometry``, ``grad``, ``thread_scaling``).
In ``docs/benchmarks.md`` every table sits between ``<!-- table: <name> -->`` and
``<!-- /table -->``: ``--update-docs`` replaces what lies between with the table
rendered from ``benchmarks/results/<name>.json`` and leaves the rest of the page
(the hand-written text) as it is.

A table gives, per case, fastpool's time and its ratios to the fastest peer and to
the copy roofline at every thread count measured (ratios < 1: fastpool is faster).
``bench_grad.py``'s table has a column per peer instead (PyTorch's backward pass
alone, and its forward and backward). ``n/a`` where a number is missing (fastpool
not importable, no peer passed its check).  The fastest peer carries the marks of
the benchmark's own tables: † integer results within 1, ‡ another output dtype,
§ a different statistic (e.g. the mean of the two middle values for a median),
¶ another tie rule for the mode, ~ timed by one call only; a fastpool time with
``!`` failed its check.
"""

import argparse
import difflib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DOCS_PAGE = os.path.join(os.path.dirname(HERE), "docs", "benchmarks.md")
# The pages whose marked tables --update-docs rewrites.
DOCS_PAGES = [DOCS_PAGE, os.path.join(os.path.dirname(HERE), "README.md")]

MARKS = {"dtype": "‡", "lsb": "†", "other": "§", "ties": "¶", "MISMATCH": "!"}
LEGEND = {"‡": "‡ another output dtype (equal after rounding)", "†": "† integer results within 1",
          "§": "§ a different statistic, checked against its own reference",
          "¶": "¶ a most frequent value with another tie rule", "~": "~ timed by one call only",
          "!": "! fastpool's result failed its check"}

# How a script's table differs from the default (one "/ fastest peer" column per
# thread count): the gradients are compared with both of PyTorch's ways, one
# column each, and their case names drop the " grad" the script appends.
STYLES = {"bench_grad": {"peer_columns": True, "ms": ".3g", "case_suffix": " grad"}}

MARKER = re.compile(r"^<!-- table: (\w+) -->\n.*?^<!-- /table -->$", re.M | re.S)


def _num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def _peer_marks(r, name):
    info = r.get("peers", {}).get(name) or {}
    return MARKS.get(info.get("check"), "") + ("~" if info.get("timed_once") else "")


def machine(env):
    """The machine and library versions of a JSON's ``environment``, in words:
    "Intel(R) Xeon(R) Processor, 2 cores, numpy 2.4.6, torch 2.13.0+cpu"."""
    cores = f"{env.get('cpu_count')} cores"
    if env.get("affinity") and env.get("cpu_count") and env["affinity"] != env["cpu_count"]:
        cores = f"{env['affinity']} of {env['cpu_count']} cores"
    return f"{env.get('cpu') or 'unknown CPU'}, {cores}, numpy {env.get('numpy')}, torch {env.get('torch')}"


def style(data):
    return STYLES.get(data.get("benchmark"), {})


def case_label(data, case):
    """A case's name in the tables and charts."""
    suffix = style(data).get("case_suffix")
    return case[:-len(suffix)] if suffix and case.endswith(suffix) else case


def thread_counts(data):
    return sorted(data["results"], key=int)


def peer_columns(data):
    """The peers of a ``peer_columns`` table, in the order they first appear."""
    names = []
    for rows in data["results"].values():
        for r in rows:
            names += [p for p in r.get("peers", {}) if p not in names]
    return names


def _threads_name(t):
    return f"{t} thread" + ("s" if str(t) != "1" else "")


def render(data):
    """The markdown table and its "Measured with ..." line for one script's JSON."""
    if data.get("benchmark") == "thread_scaling":
        return render_scaling(data)
    st = style(data)
    threads = thread_counts(data)
    cases = [r["case"] for r in data["results"][threads[0]]]
    peers = peer_columns(data) if st.get("peer_columns") else None
    head = ["case"]
    for t in threads:
        head.append(f"{_threads_name(t)}: fastpool ms")
        head += [f"/ {p.replace('-', ' ')}" for p in peers] if peers else ["/ fastest peer"]
        head.append("/ roofline")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    used = set()
    later = data.get("rows_from_a_later_run") or {}
    for i, case in enumerate(cases):
        row = [case_label(data, case) + (" *" if case in later.get("cases", ()) else "")]
        for t in threads:
            r = data["results"][t][i]
            fp = _num(r.get("fastpool_ms"), st.get("ms", ".2f"))
            if r.get("fastpool_ms") is not None and str(r.get("fastpool_check", "")).split(" ")[0] not in (
                    "exact", "close"):
                fp += " !"
                used.add("!")
            row.append(fp)
            if peers:
                for p in peers:
                    ms = (r.get("peers", {}).get(p) or {}).get("ms")
                    ratio = None if ms is None or r.get("fastpool_ms") is None else r["fastpool_ms"] / ms
                    marks = _peer_marks(r, p) if ratio is not None else ""
                    used.update(marks)
                    row.append(_num(ratio, ".2f") + marks)
            else:
                if r.get("fastest_peer"):
                    marks = _peer_marks(r, r["fastest_peer"])
                    used.update(marks)
                    peer = f" ({r['fastest_peer']} {_num(r.get('fastest_peer_ms'), '.3g')}{marks})"
                else:
                    peer = " (no peer)"
                row.append(_num(r.get("ratio_fastpool_fastest_peer"), ".2f") + peer)
            row.append(_num(r.get("ratio_fastpool_roofline"), ".2f"))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    note = f"Measured with `{data['command']}` on {machine(data['environment'])}; medians of interleaved repeats."
    if used:
        note += " " + "; ".join(LEGEND[m] for m in LEGEND if m in used) + "."
    if any(case in later.get("cases", ()) for case in cases):
        note += (f" * re-measured in a later run, `{later['command']}` on "
                 f"{machine(later['environment'])}: compare its ratios with the other rows', "
                 "not its milliseconds.")
    if data.get("fastpool_standin"):
        note += (" NOT FASTPOOL: the rows marked [NumPy stand-in, not fastpool] time a slow NumPy stand-in"
                 " (fastpool lacked " + ", ".join(data["fastpool_standin"]) + ").")
    if data.get("fastpool_import_error"):
        note += f" fastpool was not importable ({data['fastpool_import_error']})."
    lines.append(note)
    return "\n".join(lines)


def render_scaling(data):
    """The table of ``thread_scaling.py --json``: fastpool's time and speed-up over
    one thread at every thread count, and the peers' times."""
    threads = [str(t) for t in data["threads"]]
    head = ["case"] + [f"{_threads_name(t)}: fastpool ms (speed-up)" for t in threads] + ["peers ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data["results"]:
        row = [r["case"]]
        for t in threads:
            ms, up = r["fastpool_ms"].get(t), r["speedup"].get(t)
            row.append(_num(ms, ".2f") + ("" if up is None else f" ({up:.2f}x)"))
        peers = []
        for p, by_t in r.get("peers_ms", {}).items():
            ts = sorted(by_t, key=int)
            peers.append(f"{p} " + " / ".join(_num(by_t[t], ".3g") for t in ts)
                         + f" ({', '.join(ts)} thread{'s' if ts != ['1'] else ''})")
        row.append("; ".join(peers) or "none")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    note = (f"Measured with `{data['command']}` on {machine(data['environment'])}; "
            f"medians of {data['repeats']} calls.")
    if data.get("quick"):
        note += " QUICK RUN (--quick, small arrays): a smoke test, not a measurement."
    lines.append(note)
    return "\n".join(lines)


def load(name, results=RESULTS):
    """The committed JSON of one script (``"basic"``, ..., ``"thread_scaling"``)."""
    with open(os.path.join(results, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def doc_tables(text):
    """``{name: the text between the markers of <!-- table: name -->}``."""
    return {m.group(1): m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0].strip("\n")
            for m in MARKER.finditer(text)}


def update_docs(text, results=RESULTS):
    """``text`` (a page) with every marked table re-rendered from ``results``."""
    def table(m):
        name = m.group(1)
        return f"<!-- table: {name} -->\n\n{render(load(name, results))}\n\n<!-- /table -->"
    return MARKER.sub(table, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", help="a file written by one of the scripts with --json")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--update-docs", action="store_true",
                      help="rewrite the marked tables of the docs page from the results folder")
    mode.add_argument("--check-docs", action="store_true",
                      help="exit with status 1 if the docs page's tables differ from the results")
    parser.add_argument("--docs", action="append",
                        help="a page with marked tables (default: docs/benchmarks.md and "
                             "README.md; may be given more than once)")
    parser.add_argument("--results", default=RESULTS, help="the JSON folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    if not (args.update_docs or args.check_docs):
        if args.json is None:
            parser.error("give a JSON file, --update-docs or --check-docs")
        with open(args.json, encoding="utf-8") as f:
            print(render(json.load(f)))
        return 0
    if args.json is not None:
        parser.error("--update-docs / --check-docs read the results folder, not a file")
    status = 0
    for page in args.docs or DOCS_PAGES:
        status = max(status, _update_page(page, args.results, args.check_docs))
    return status


def _update_page(page, results, check):
    """Rewrite (or, with ``check``, compare) the marked tables of one page."""
    with open(page, encoding="utf-8") as f:
        old = f.read()
    names = list(doc_tables(old))
    if not names:
        sys.exit(f"{page}: no <!-- table: NAME --> ... <!-- /table --> markers")
    new = update_docs(old, results)
    if check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), page, "rendered from " + results))
            return 1
        print(f"{page}: the tables {', '.join(names)} match {results}")
        return 0
    if new != old:
        with open(page, "w", encoding="utf-8") as f:
            f.write(new)
    print(f"{page}: {'updated' if new != old else 'unchanged'} ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
