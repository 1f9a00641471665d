"""Render the compact results table of the docs from ``bench_basic.py --json``.

    python benchmarks/table.py results.json

Prints, per case, fastpool's time and its ratios to the fastest peer and to the
copy roofline at every thread count measured (ratios < 1: fastpool is faster).
"""

import argparse
import json


def render(data):
    threads = sorted(data["results"], key=int)
    cases = [r["case"] for r in data["results"][threads[0]]]
    head = ["case"]
    for t in threads:
        n = f"{t} thread" + ("s" if t != "1" else "")
        head += [f"{n}: fastpool ms", "/ fastest peer", "/ roofline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, case in enumerate(cases):
        row = [case]
        for t in threads:
            r = data["results"][t][i]
            row += [f"{r['fastpool_ms']:.2f}",
                    f"{r['ratio_fastpool_fastest_peer']:.2f} ({r['fastest_peer']} "
                    f"{r['fastest_peer_ms']:.3g})",
                    f"{r['ratio_fastpool_roofline']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    env = data["environment"]
    lines.append("")
    lines.append(f"Measured with `{data['command']}` on {env['cpu']}, "
                 f"{env['cpu_count']} cores, numpy {env['numpy']}, torch {env['torch']}; "
                 "medians of interleaved repeats.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="the file written by bench_basic.py --json")
    with open(parser.parse_args().json) as f:
        print(render(json.load(f)))


if __name__ == "__main__":
    main()
