#!/usr/bin/env python3
"""The peer for GPU training speed: pointnet.pytorch's classifier (the model
code of scripts/make_goldens.py), one training step (forward, NLL loss,
backward, Adam) timed on the GPU with random data of the given shape, in
fp32, tf32 and bf16 autocast (AMP). Prints one JSON object per precision.

    python3 bench/peers/torch_train_step.py --batch 32 --points 1024
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from make_goldens import PointNetCls  # noqa: E402  (pointnet.pytorch's model code)


def time_steps(precision, batch, points, classes, steps, warmup):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    model = PointNetCls(k=classes).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    x = torch.randn(batch, 3, points, device="cuda")
    y = torch.randint(0, classes, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            pred, _, _ = model(x)
            loss = F.nll_loss(pred.float(), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    return {"peer": "pytorch-eager", "torch": torch.__version__, "precision": precision, "batch": batch,
            "points": points, "step_ms_median": 1e3 * median, "step_ms_min": 1e3 * times[0],
            "clouds_per_s": batch / median}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    for precision in ("fp32", "tf32", "bf16"):
        print(json.dumps(time_steps(precision, args.batch, args.points, args.classes, args.steps, args.warmup)),
              flush=True)


if __name__ == "__main__":
    main()
