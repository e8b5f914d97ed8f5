#!/usr/bin/env python3
"""Prints the markdown table of scripts/bench-cpu.sh from its results file (JSON
lines: a "meta" line, "check" lines, one line per timed run with "peer" and
"repeat"): ours beside ONNX Runtime, PyTorch and, where it ran, LibTorch. Each
cell is the median over repeats, with the range over repeats in brackets when
they differ; a ratio is ours' throughput over the peer's, per repeat (> 1: ours
is faster), so for B=1 it is their latency over ours.

    python3 bench/peers/cpu_table.py RESULTS.jsonl
"""
import json
import statistics
import sys

# The peers' "peer" names and column names; LibTorch (bench/peers/libtorch) gets
# its columns only when the results have it (it is built where libtorch-dev is).
PEERS = {"onnxruntime": "ONNX Runtime", "pytorch-eager": "PyTorch", "libtorch": "LibTorch"}
SHORT = {"onnxruntime": "ORT"}
OURS = ("pointnet", "pointnet-int8")  # our fp32 and int8 engines: one table row each, beside the same fp32 peers


def cell(values, fmt):
    if not values:
        return "-"
    text, low, high = (fmt.format(v) for v in (statistics.median(values), min(values), max(values)))
    return text if low == high else f"{text} ({low}-{high})"


def main(path):
    lines = [json.loads(line) for line in open(path) if line.strip()]
    meta = next((l for l in lines if l.get("meta")), {})
    runs = [l for l in lines if "peer" in l]
    cases = []  # in first-seen order: (task, batch, points, train)
    for r in runs:
        key = (r["task"], r["batch"], r["points"], r["train"])
        if key not in cases:
            cases.append(key)
    if meta:
        print(f"{meta['date']}, {meta['cpu']}, {meta['threads']} threads, pointnet {meta['commit']}, "
              f"{meta['versions']}; load average before each repeat: {', '.join(meta.get('loadavg', []))}\n")
    seen = {r["peer"] for r in runs}
    peers = [p for p in PEERS if p != "libtorch" or p in seen]
    short = [SHORT.get(p, PEERS[p]) for p in peers]
    print("| work | ours clouds/s | " + " | ".join(f"{PEERS[p]} clouds/s" for p in peers) + " | "
          + " | ".join(f"ours vs {s}" for s in short) + f" | median latency ms, ours / {' / '.join(short)} "
          f"| peak RSS MiB, ours / {' / '.join(short)} |")
    print("|---" * (3 + 2 * len(peers)) + "|---|")
    int8_gains = []
    for task, batch, points, train in cases:
        by = {p: [r for r in runs if r["peer"] == p and (r["task"], r["batch"], r["points"], r["train"]) ==
                  (task, batch, points, train)] for p in list(peers) + list(OURS)}
        for ours_name in OURS:
            if not by[ours_name]:
                continue
            names = [ours_name] + peers

            def ratio(peer):
                ours = {r["repeat"]: r["clouds_per_s"] for r in by[ours_name]}
                return cell([ours[r["repeat"]] / r["clouds_per_s"] for r in by[peer] if r["repeat"] in ours],
                            "{:.2f}x")
            precision = " int8" if ours_name == "pointnet-int8" else ""
            work = f"{task} {'training step' if train else 'inference'}{precision}, B={batch} x {points}"
            tput = " | ".join(cell([r["clouds_per_s"] for r in by[p]], "{:.0f}") for p in names)
            ratios = " | ".join(ratio(p) for p in peers)
            latency = " / ".join(cell([r["latency_ms"]["median"] for r in by[p]], "{:.1f}") for p in names)
            rss = " / ".join(cell([r["peak_rss_mb"] for r in by[p]], "{:.0f}") for p in names)
            print(f"| {work} | {tput} | {ratios} | {latency} | {rss} |")
            if ours_name == "pointnet-int8":
                fp32 = {r["repeat"]: r["clouds_per_s"] for r in by["pointnet"]}
                int8_gains.append((work, cell([r["clouds_per_s"] / fp32[r["repeat"]] for r in by[ours_name]
                                               if r["repeat"] in fp32], "{:.2f}x")))
    for work, gain in int8_gains:
        print(f"\nours int8 vs ours fp32, {work}: {gain}", end="")
    for c in (l for l in lines if "check" in l):
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in c["max_abs_diff"].items())
        print(f"\ncheck ({c['task']}, {c['clouds']} clouds x {c['points']}): max |log-prob - ours| {diffs} "
              f"(tolerance {c['tolerance']:g}): {'ok' if c['ok'] else 'FAILED'}", end="")
    print()


if __name__ == "__main__":
    main(sys.argv[1])
