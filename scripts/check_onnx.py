#!/usr/bin/env python3
"""Checks `pointnet export-onnx` end to end with the reference tools (not part of
the build or CI: needs numpy, onnx, onnxruntime and, for the PyTorch comparison,
torch):

  for cls, cls + feature transform, seg, seg + feature transform checkpoints
  (trained here for one epoch on `pointnet synth` data unless --checkpoint is
  given) and several export variants (BN folded or kept, opset 17 / 18 / 13,
  fixed shapes, normalisation in the graph):
    - onnx.checker.check_model(full_check=True) (includes shape inference);
    - ONNX Runtime on random clouds and on real clouds (from --data, when present)
      against `pointnet predict --json` log-probs;
    - ONNX Runtime's trans / trans_feat (and log-probs) against pointnet.pytorch's
      model in eval mode (bench/peers/pointnet_torch.py), when torch is importable.
  Prints, per case, the relative L2 error ||got - ref|| / ||ref|| (DESIGN.md's fp32
  measure; a trained model's log-probs reach -30 and more, where float32 rounding
  alone exceeds 1e-5 in absolute terms) and the max abs difference; exits 1 if
  any relative error exceeds --tolerance.

Usage: /work/venv-peers/bin/python scripts/check_onnx.py [--pointnet build/pointnet]
       [--data /work/shared/data/modelnet40-npy1024] [--checkpoint CKPT ...] [--work DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))
from checkpoint_np import read_checkpoint  # noqa: E402

# Export variants: (label, extra flags, whether the graph normalises raw clouds).
VARIANTS = [
    ("opset17 folded", [], False),
    ("opset17 keep-bn", ["--keep-batchnorm"], False),
    ("opset18 folded", ["--opset", "18"], False),
    ("opset13 folded", ["--opset", "13"], False),
    ("opset17 in-graph normalisation", ["--include-normalization"], True),
    ("fixed B=8 N=1024", ["--batch", "8", "--points", "1024"], False),  # run only on the batch of that shape
]


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result.stdout


def rel_err(got, ref):
    """||got - ref|| / ||ref|| in float64 (the relative L2 error DESIGN.md uses for fp32)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def normalize(cloud):
    """As pointnet's normalize_cloud(): centroid and radius in float64, result float32."""
    c = cloud.astype(np.float64)
    c = c - c.mean(axis=0)
    radius = np.sqrt((c * c).sum(axis=1).max())
    return (c / radius if radius > 0 else c).astype(np.float32)


def make_checkpoints(pointnet, work):
    """One-epoch checkpoints on tiny synthetic data: BN running statistics that are not 0/1."""
    out = {}
    for task in ("cls", "seg"):
        data = os.path.join(work, f"synth_{task}")
        if not os.path.isdir(data):
            run([pointnet, "synth", "--task", task, "--out", data, "--points", "300", "--train-per-class", "3",
                 "--test-per-class", "1"])
        for ft in (False, True):
            name = task + ("_ft" if ft else "")
            run_dir = os.path.join(work, "run_" + name)
            ckpt = os.path.join(run_dir, "model.safetensors")
            if not os.path.exists(ckpt):
                cmd = [pointnet, "train", "--task", task, "--data", data, "--out", run_dir, "--epochs", "1",
                       "--batch-size", "4", "--points", "256", "--test-data", "none", "--plain"]
                run(cmd + (["--feature-transform"] if ft else []))
            out[name] = ckpt
    return out


def real_clouds(data_dir, count):
    if not data_dir or not os.path.isdir(data_dir):
        return []
    files = []
    for cls in sorted(os.listdir(data_dir)):
        test = os.path.join(data_dir, cls, "test")
        if os.path.isdir(test):
            names = sorted(f for f in os.listdir(test) if f.endswith(".npy"))
            if names:
                files.append(os.path.join(test, names[0]))
    step = max(1, len(files) // count)
    return files[::step][:count]


def predict_log_probs(pointnet, ckpt, files):
    lines = run([pointnet, "predict", "--model", ckpt, "--json", "--input", *files]).splitlines()
    return [np.asarray(json.loads(line)["log_probs"], dtype=np.float64) for line in lines]


def torch_outputs(ckpt, batch):
    try:
        import torch
        from pointnet_torch import PointNetCls, PointNetDenseCls
    except ImportError:
        return None
    state, info = read_checkpoint(ckpt)
    net = PointNetCls if info["task"] == "cls" else PointNetDenseCls
    model = net(k=info["num_classes"], feature_transform=info["feature_transform"])
    state = {k: torch.from_numpy(v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        outs = model(torch.from_numpy(batch))
    return [None if o is None else o.numpy().astype(np.float64) for o in outs]


def check_case(args, name, ckpt, files_by_group, work):
    worst = 0.0
    _, info = read_checkpoint(ckpt)
    for label, flags, in_graph_norm in VARIANTS:
        onnx_path = os.path.join(work, f"{name}_{label.replace(' ', '_')}.onnx")
        run([args.pointnet, "export-onnx", "--model", ckpt, "--out", onnx_path, *flags])
        model = onnx.load(onnx_path)
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        assert json.loads(meta["class_names"]) == info["class_names"], "class_names metadata"
        assert model.producer_name == "pointnet"
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        for group, files in files_by_group.items():
            if not files:
                continue
            raw = [np.load(f)[:, :3].astype(np.float32) for f in files]
            # One batch per point count (the files of a group share it): a dynamic batch > 1.
            fed = raw if in_graph_norm else [normalize(c) for c in raw]
            batch = np.stack([c.T for c in fed])  # (B, 3, N)
            fixed = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
            if any(want and want != have for want, have in zip(fixed, batch.shape)):
                continue  # a fixed-shape export takes only its own shape
            got = dict(zip(outputs, session.run(None, {"points": batch})))
            ours = predict_log_probs(args.pointnet, ckpt, files)
            ours = np.stack(ours)
            diff, abs_diff = rel_err(got["log_probs"], ours), float(np.abs(got["log_probs"] - ours).max())
            worst = max(worst, diff)
            print(f"  {name:7s} {label:32s} {group:6s} B={len(files)} N={batch.shape[2]}: "
                  f"ORT vs pointnet predict: rel {diff:.2e} (max abs {abs_diff:.2e})")
            if not in_graph_norm and not args.no_torch:
                ref = torch_outputs(ckpt, batch)
                if ref is not None:
                    parts = [("log_probs", 0), ("trans", 1)] + ([("trans_feat", 2)] if "trans_feat" in got else [])
                    diffs = {k: rel_err(got[k], ref[i]) for k, i in parts}
                    worst = max(worst, max(diffs.values()))
                    print(f"  {'':7s} {'':32s} {'':6s} vs pointnet.pytorch (rel): " +
                          ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pointnet", default=os.path.join(ROOT, "build", "pointnet"))
    parser.add_argument("--data", default="/work/shared/data/modelnet40-npy1024")
    parser.add_argument("--real", type=int, default=8, help="real clouds per case")
    parser.add_argument("--checkpoint", nargs="*", default=None, help="check these instead of training small ones")
    parser.add_argument("--work", default=None, help="folder for data, checkpoints and .onnx files")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--no-torch", action="store_true", help="skip the pointnet.pytorch comparison")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="check_onnx_")
    os.makedirs(work, exist_ok=True)
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, work folder {work}")

    rng = np.random.default_rng(0)
    random_files = []
    for i in range(4):  # raw clouds off the unit sphere, so normalisation matters
        path = os.path.join(work, f"random_{i}.npy")
        np.save(path, (rng.normal(size=(500, 3)) * 3.0 + rng.normal(size=3) * 5.0).astype(np.float32))
        random_files.append(path)
    files_by_group = {"random": random_files, "real": real_clouds(args.data, args.real)}
    if not files_by_group["real"]:
        print(f"  (no real clouds: {args.data} is absent)")

    checkpoints = ({os.path.basename(os.path.dirname(p)) or p: p for p in args.checkpoint} if args.checkpoint
                   else make_checkpoints(args.pointnet, work))
    failures = []
    for name, ckpt in checkpoints.items():
        worst = check_case(args, name, ckpt, files_by_group, work)
        status = "ok" if worst <= args.tolerance else "FAIL"
        print(f"{name}: worst relative error {worst:.2e} (tolerance {args.tolerance:.0e}): {status}")
        if worst > args.tolerance or not np.isfinite(worst):
            failures.append(name)
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    print("all cases within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
