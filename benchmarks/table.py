"""Render the compact results table of the docs from ``bench_basic.py --json``
or ``bench_order.py --json`` (the same JSON layout).

    python benchmarks/table.py results.json

Prints, per case, fastpool's time and its ratios to the fastest peer and to the
copy roofline at every thread count measured (ratios < 1: fastpool is faster).
``n/a`` where a number is missing (fastpool not importable, no peer passed its
check).  The fastest peer carries the marks of the benchmark's own tables:
† integer results within 1, ‡ another output dtype, § a different statistic
(e.g. the mean of the two middle values for a median), ¶ another tie rule for
the mode, ~ timed by one call only; a fastpool time with ``!`` failed its check.
"""

import argparse
import json

MARKS = {"dtype": "‡", "lsb": "†", "other": "§", "ties": "¶", "MISMATCH": "!"}
LEGEND = {"‡": "‡ another output dtype (equal after rounding)", "†": "† integer results within 1",
          "§": "§ a different statistic, checked against its own reference",
          "¶": "¶ a most frequent value with another tie rule", "~": "~ timed by one call only",
          "!": "! fastpool's result failed its check"}


def _num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def _peer_marks(r, name):
    info = r.get("peers", {}).get(name) or {}
    return MARKS.get(info.get("check"), "") + ("~" if info.get("timed_once") else "")


def render(data):
    threads = sorted(data["results"], key=int)
    cases = [r["case"] for r in data["results"][threads[0]]]
    head = ["case"]
    for t in threads:
        n = f"{t} thread" + ("s" if t != "1" else "")
        head += [f"{n}: fastpool ms", "/ fastest peer", "/ roofline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    used = set()
    for i, case in enumerate(cases):
        row = [case]
        for t in threads:
            r = data["results"][t][i]
            fp = _num(r.get("fastpool_ms"), ".2f")
            if r.get("fastpool_ms") is not None and str(r.get("fastpool_check", "")).split(" ")[0] not in (
                    "exact", "close"):
                fp += " !"
                used.add("!")
            if r.get("fastest_peer"):
                marks = _peer_marks(r, r["fastest_peer"])
                used.update(marks)
                peer = f" ({r['fastest_peer']} {_num(r.get('fastest_peer_ms'), '.3g')}{marks})"
            else:
                peer = " (no peer)"
            row += [fp, _num(r.get("ratio_fastpool_fastest_peer"), ".2f") + peer,
                    _num(r.get("ratio_fastpool_roofline"), ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    env = data["environment"]
    lines.append("")
    note = (f"Measured with `{data['command']}` on {env['cpu']}, "
            f"{env['cpu_count']} cores, numpy {env['numpy']}, torch {env['torch']}; "
            "medians of interleaved repeats.")
    if used:
        note += " " + "; ".join(LEGEND[m] for m in LEGEND if m in used) + "."
    if data.get("fastpool_standin"):
        note += (" NOT FASTPOOL: the rows marked [NumPy stand-in, not fastpool] time a slow NumPy stand-in"
                 " (fastpool lacked " + ", ".join(data["fastpool_standin"]) + ").")
    if data.get("fastpool_import_error"):
        note += f" fastpool was not importable ({data['fastpool_import_error']})."
    lines.append(note)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="the file written by bench_basic.py / bench_order.py --json")
    with open(parser.parse_args().json) as f:
        print(render(json.load(f)))


if __name__ == "__main__":
    main()
