"""Joins `pointnet bench --json` lines (ours) and bench/peers/torch_train_step.py
lines (peer) read from stdin on (task, train, feature_transform, batch, points,
precision) and prints one table with the ratio. Used by scripts/gpu-check.sh."""
import json
import sys

ours, peer = {}, {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    key = (r["task"], r["train"], r["feature_transform"], r["batch"], r["points"], r["precision"])
    (peer if r.get("peer") else ours)[key] = r

print("%-4s %-5s %-3s %-11s %-5s | %12s %9s | %12s %9s | %7s | %s" % (
    "task", "step", "ft", "shape", "prec", "ours ms", "ours MiB", "torch ms", "torch MiB", "speedup", "memory"))
for key in sorted(ours, key=lambda k: (k[0], not k[1], k[2], k[4], ["fp32", "tf32", "bf16", "fp16"].index(k[5]))):
    task, train, ft, batch, points, precision = key
    o, p = ours[key], peer.get(key)
    om = o["latency_ms"]["median"]
    row = "%-4s %-5s %-3s %-11s %-5s | %12.3f %9.0f |" % (
        task, "train" if train else "infer", "ft" if ft else "-", "%dx%d" % (batch, points), precision, om,
        o.get("peak_device_mb", 0))
    if p:
        pm = p["latency_ms"]["median"]
        row += " %12.3f %9.0f | %6.2fx | %.2fx" % (pm, p.get("peak_device_mb") or 0, pm / om,
                                                  (o.get("peak_device_mb") or 0) / max(p.get("peak_device_mb") or 1, 1))
    else:
        row += " %12s %9s | %7s |" % ("-", "-", "-")
    print(row)
