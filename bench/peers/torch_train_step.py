#!/usr/bin/env python3
"""The PyTorch peer of `pointnet bench`: pointnet.pytorch's model code
(bench/peers/pointnet_torch.py) timed on random data of the given shape, one
iteration at a time with a device synchronisation before each clock read.
By default one training step (forward, NLL loss, backward, Adam), as
`pointnet bench --train`; with --infer the eval-mode forward under no_grad, as
`pointnet bench`. Precisions: fp32, tf32, and bf16 / fp16 autocast (AMP; fp16 with GradScaler) on the GPU;
fp32 on the CPU. Prints one JSON object per precision, with the statistics
`pointnet bench --json` reports (latency_ms median/p99/min/mean, cv,
clouds_per_s = batch / median) plus the older step_ms_median/step_ms_min.

    python3 bench/peers/torch_train_step.py --batch 32 --points 1024
    python3 bench/peers/torch_train_step.py --device cpu --infer --classes 40
"""
import argparse
import contextlib
import json

import torch
import torch.nn.functional as F

from latency import summary, time_iterations as time_loop
from pointnet_torch import PointNetCls, PointNetDenseCls, feature_transform_regularizer


def time_iterations(args, precision):
    cuda = args.device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    net = PointNetCls if args.task == "cls" else PointNetDenseCls
    model = net(k=args.classes, feature_transform=args.feature_transform).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    x = torch.randn(args.batch, 3, args.points, device=args.device)
    y = torch.randint(0, args.classes, (args.batch,) if args.task == "cls" else (args.batch, args.points),
                      device=args.device)

    def amp():
        if cuda and precision in ("bf16", "fp16"):
            return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
        return contextlib.nullcontext()

    # fp16: AMP's dynamic loss scaling (GradScaler), as our trainer does.
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and precision == "fp16")

    def train_step():
        opt.zero_grad(set_to_none=True)
        with amp():
            pred, _, trans_feat = model(x)
            loss = F.nll_loss(pred.float().reshape(-1, args.classes), y.reshape(-1))
            if args.feature_transform:  # as the trainer: + 0.001 x the regulariser
                loss = loss + 0.001 * feature_transform_regularizer(trans_feat.float())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def infer():
        with torch.no_grad(), amp():
            model(x)

    if args.infer:
        model.eval()
        if args.compile:  # compiled once, outside the timing (warm-up runs the compilation)
            model = torch.compile(model, mode=args.compile)
        step = infer
    else:
        model.train()
        step = train_step
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = time_loop(step, warmup=args.warmup, iters=args.steps, sync=sync)
    stats = summary(times, args.batch)
    return {"peer": "torch.compile-" + args.compile if args.compile else "pytorch-eager", "torch": torch.__version__, "task": args.task, "device": args.device,
            "precision": precision, "batch": args.batch, "points": args.points, "train": not args.infer,
            "feature_transform": args.feature_transform, "classes": args.classes,
            "threads": torch.get_num_threads(), **stats,
            "peak_device_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
            "step_ms_median": stats["latency_ms"]["median"], "step_ms_min": stats["latency_ms"]["min"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("cls", "seg"), default="cls")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    ap.add_argument("--infer", action="store_true", help="time the eval-mode forward instead of a training step")
    ap.add_argument("--feature-transform", action="store_true")
    ap.add_argument("--compile", default="", help="with --infer: torch.compile mode (e.g. max-autotune); default eager")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--steps", type=int, default=50, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (torch.set_num_threads; 0: its default)")
    ap.add_argument("--precisions", default=None,
                    help="comma-separated (default: fp32,tf32,bf16 on cuda, fp32 on cpu)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    precisions = args.precisions.split(",") if args.precisions else (
        ["fp32", "tf32", "bf16"] if args.device == "cuda" else ["fp32"])
    if args.device == "cpu" and precisions != ["fp32"]:
        ap.error("--device cpu times fp32 only")
    for precision in precisions:
        print(json.dumps(time_iterations(args, precision)), flush=True)


if __name__ == "__main__":
    main()
