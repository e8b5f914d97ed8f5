#!/usr/bin/env python3
"""The CPU peers of `pointnet bench`, on the weights of one of OUR checkpoints:
pointnet.pytorch's model (pointnet_torch.py) with the checkpoint's tensors, timed
as PyTorch eager and as ONNX Runtime on the graph torch.onnx.export writes for it.
Prints one JSON line per run with `pointnet bench --json`'s field names, plus
"peer" and library versions. scripts/bench-cpu.sh runs it beside ours.

    cpu_peers.py time  --peer torch|ort|torch-train --model CKPT [--threads T --batch B --points N]
    cpu_peers.py check --model CKPT --pointnet build/pointnet [--clouds C --points N] [--libtorch BIN]
    cpu_peers.py export --model CKPT --batch B --points N --out FILE.onnx

`time --peer ort` exports in a child process, so the timed process imports
onnxruntime and numpy only and its peak RSS is not inflated by torch.
`check` compares PyTorch's and ONNX Runtime's log-probs (and with --libtorch,
the LibTorch peer's: bench/peers/libtorch) with `pointnet predict --json` on
the same clouds (written as .npy files) and exits 1 beyond 1e-4.
Needs torch, onnx, onnxruntime, numpy (not the project's dependencies).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

from checkpoint_np import read_checkpoint
from latency import peak_rss_mb, rss_mb, summary, time_iterations

TOLERANCE = 1e-4  # fp32 log-probs, three implementations' summation orders apart


def build_torch_model(path):
    import torch
    from pointnet_torch import PointNetCls, PointNetDenseCls
    state, info = read_checkpoint(path)
    net = PointNetCls if info["task"] == "cls" else PointNetDenseCls
    model = net(k=info["num_classes"], feature_transform=info["feature_transform"])
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return model, info


def export_onnx(model_path, batch, points, out):
    """Static shapes (B, 3, N): ORT gets its best case, one graph per shape."""
    import torch
    model, _ = build_torch_model(model_path)
    model.eval()
    x = torch.zeros(batch, 3, points)
    # The TorchScript exporter writes the opset asked for (17); the dynamo one
    # (default since torch 2.9) needs onnxscript and wrote opset 18 here, at the
    # same ORT speed (measured 2026-11-24).
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), out, opset_version=17, dynamo=False, input_names=["points"],
                          output_names=["log_probs", "trans", "trans_feat"][:2 + model.feature_transform])


def random_batch(args, classes, task):
    """Points uniform in [-1, 1)^3 as `pointnet bench`, pointnet.pytorch's (B, 3, N) layout."""
    rng = np.random.default_rng(args.seed)
    points = rng.uniform(-1.0, 1.0, (args.batch, args.points, 3)).astype(np.float32)
    labels = rng.integers(0, classes, (args.batch,) if task == "cls" else (args.batch, args.points))
    return np.ascontiguousarray(points.transpose(0, 2, 1)), labels


def time_ort(args):
    import onnxruntime as ort
    _, info = read_checkpoint(args.model)
    onnx_path = args.onnx
    if not onnx_path:
        tmp = tempfile.TemporaryDirectory()
        onnx_path = os.path.join(tmp.name, "model.onnx")
        subprocess.run([sys.executable, __file__, "export", "--model", args.model, "--batch", str(args.batch),
                        "--points", str(args.points), "--out", onnx_path], check=True)
    baseline = rss_mb()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    x, _ = random_batch(args, info["num_classes"], info["task"])
    samples = time_iterations(lambda: session.run(["log_probs"], {"points": x}), args.warmup, args.iters,
                              args.seconds)
    return info, baseline, samples, {"onnxruntime": ort.__version__, "opset": 17}


def time_torch(args, train):
    import torch
    import torch.nn.functional as F
    from pointnet_torch import feature_transform_regularizer
    baseline = rss_mb()
    model, info = build_torch_model(args.model)
    xn, yn = random_batch(args, info["num_classes"], info["task"])
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    if train:  # as `pointnet bench --train`: forward (dropout, batch statistics), loss read back, backward, Adam
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))

        def step():
            opt.zero_grad(set_to_none=True)
            pred, _, trans_feat = model(x)
            loss = F.nll_loss(pred.reshape(-1, info["num_classes"]), y.reshape(-1))
            if info["feature_transform"]:
                loss = loss + 0.001 * feature_transform_regularizer(trans_feat)
            loss.backward()
            opt.step()
            loss.item()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)
    samples = time_iterations(step, args.warmup, args.iters, args.seconds)
    return info, baseline, samples, {"torch": torch.__version__}


def cmd_time(args):
    if args.peer == "ort":
        info, baseline, samples, versions = time_ort(args)
    else:
        import torch
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        info, baseline, samples, versions = time_torch(args, args.peer == "torch-train")
    peer = {"ort": "onnxruntime", "torch": "pytorch-eager", "torch-train": "pytorch-eager"}[args.peer]
    out = {"peer": peer, **versions, "task": info["task"], "device": "cpu", "precision": "fp32",
           "batch": args.batch, "points": args.points, "train": args.peer == "torch-train",
           "feature_transform": info["feature_transform"], "classes": info["num_classes"], "model": args.model,
           "seed": args.seed, "threads": args.threads, "warmup": args.warmup, **summary(samples, args.batch),
           "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline}
    print(json.dumps(out), flush=True)


def normalize_cloud(xyz):
    """src/data/sampler.cpp's normalize_cloud: centroid and radius in double."""
    p = xyz.astype(np.float64)
    p -= p.mean(axis=0)
    radius = np.sqrt((p * p).sum(axis=1).max())
    return (p / radius if radius > 0 else p).astype(np.float32)


def cmd_check(args):
    import onnxruntime as ort
    import torch
    torch.set_num_threads(args.threads)
    model, info = build_torch_model(args.model)
    model.eval()
    rng = np.random.default_rng(args.seed)
    clouds = [rng.normal(0.0, 0.5, (args.points, 3)).astype(np.float32) for _ in range(args.clouds)]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, c in enumerate(clouds):
            files.append(os.path.join(tmp, f"cloud_{i}.npy"))
            np.save(files[-1], c)
        run = subprocess.run([args.pointnet, "--threads", str(args.threads), "predict", "--model", args.model,
                              "--json", "--input", *files], check=True, capture_output=True, text=True)
        ours = np.array([json.loads(line)["log_probs"] for line in run.stdout.splitlines()], dtype=np.float64)
        onnx_path = os.path.join(tmp, "model.onnx")
        export_onnx(args.model, args.clouds, args.points, onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        x = np.ascontiguousarray(np.stack([normalize_cloud(c) for c in clouds]).transpose(0, 2, 1))
        with torch.inference_mode():
            theirs = {"pytorch-eager": model(torch.from_numpy(x))[0].numpy(),
                      "onnxruntime": session.run(["log_probs"], {"points": x})[0]}
        if args.libtorch:  # the same normalised batch, through bench/peers/libtorch's `check`
            np.save(os.path.join(tmp, "clouds.npy"), x)
            run = subprocess.run([args.libtorch, "check", "--model", args.model, "--threads", str(args.threads),
                                  "--input", os.path.join(tmp, "clouds.npy")], check=True, capture_output=True,
                                 text=True)
            theirs["libtorch"] = np.array(json.loads(run.stdout)["log_probs"], dtype=np.float32)
    diff = {k: float(np.abs(v.astype(np.float64) - ours).max()) for k, v in theirs.items()}
    ok = all(d <= TOLERANCE for d in diff.values())
    print(json.dumps({"check": "log_probs vs pointnet predict", "model": args.model, "task": info["task"],
                      "clouds": args.clouds, "points": args.points, "max_abs_diff": diff,
                      "max_abs_log_prob": float(np.abs(ours).max()), "tolerance": TOLERANCE, "ok": ok}), flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("time", "check", "export"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True, help="our checkpoint (.safetensors)")
        p.add_argument("--points", type=int, default=1024)
        p.add_argument("--threads", type=int, default=os.cpu_count())
        p.add_argument("--seed", type=int, default=1)
        if name == "time":
            p.add_argument("--peer", choices=("torch", "ort", "torch-train"), required=True)
            p.add_argument("--batch", type=int, default=32)
            p.add_argument("--onnx", help="ort: a graph exported for this shape (default: export one now)")
            p.add_argument("--warmup", type=int, default=3)
            p.add_argument("--iters", type=int, default=0, help="default: at least 10 and at least 3 s")
            p.add_argument("--seconds", type=float, default=0.0)
        elif name == "check":
            p.add_argument("--pointnet", required=True, help="our binary, e.g. build/pointnet")
            p.add_argument("--clouds", type=int, default=3)
            p.add_argument("--libtorch", help="also check this LibTorch peer binary (bench/peers/libtorch)")
        else:
            p.add_argument("--batch", type=int, required=True)
            p.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.command == "export":
        export_onnx(args.model, args.batch, args.points, args.out)
    elif args.command == "check":
        sys.exit(cmd_check(args))
    else:
        cmd_time(args)


if __name__ == "__main__":
    main()
