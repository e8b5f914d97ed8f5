#!/usr/bin/env python3
"""The CUDA engine's `pointnet bench --json` lines beside the PyTorch peer's
(bench/peers/torch_train_step.py --infer) for the same task, precision, batch
and points, as one table (scripts/gpu-engine-check.sh prints it last).

    python3 bench/engine_table.py engine-bench.jsonl peer.jsonl
"""
import json
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ours = rows(sys.argv[1])
    peers = rows(sys.argv[2]) if len(sys.argv) > 2 else []
    peer = {}
    for p in peers:
        key = (p["task"], p["precision"], p["batch"], p["points"], p.get("peer", "pytorch-eager"))
        peer[key] = p
    print("%-13s %5s %5s %12s %12s %9s %9s %8s %8s %8s %6s %8s %12s %7s" % (
        "engine", "B", "N", "e2e cl/s", "GPU cl/s", "lat med", "lat p99", "H2D", "compute", "D2H", "cv%",
        "check", "eager cl/s", "x eager"))
    for r in ours:
        eager = peer.get((r["task"], "fp16" if r["precision"] == "int8" else r["precision"], r["batch"], r["points"],
                          "pytorch-eager"))
        e = eager["clouds_per_s"] if eager else None
        print("%-13s %5d %5d %12.0f %12.0f %9.4f %9.4f %8.4f %8.4f %8.4f %6.1f %8.1e %12s %7s" % (
            r.get("label", r["precision"]), r["batch"], r["points"], r["clouds_per_s"], r["gpu_clouds_per_s"],
            r["latency_ms"]["median"], r["latency_ms"]["p99"], r["h2d_ms"]["median"], r["gpu_compute_ms"]["median"],
            r["d2h_ms"]["median"], 100 * r["cv"], r["check_rel_error"], "%.0f" % e if e else "-",
            "%.1f" % (r["clouds_per_s"] / e) if e else "-"))
    if peers:
        print()
        print("%-22s %5s %5s %5s %12s %10s %10s" % ("peer", "task", "B", "N", "clouds/s", "lat med", "lat p99"))
        for p in peers:
            print("%-22s %5s %5d %5d %12.0f %10.4f %10.4f" % (
                p.get("peer", "?") + " " + p["precision"], p["task"], p["batch"], p["points"], p["clouds_per_s"],
                p["latency_ms"]["median"], p["latency_ms"]["p99"]))
    print("(int8 rows are set beside PyTorch's fp16 autocast: it has no int8 GPU inference path)")


if __name__ == "__main__":
    main()
