#!/usr/bin/env python3
"""Golden files for the C++ PointNet: PyTorch runs pointnet.pytorch's model code
(fxia22/pointnet.pytorch, pointnet/model.py) in float64 on the CPU and records one
training step (forward, loss, backward, Adam) and one eval forward.

    python3 scripts/make_goldens.py --out tests/golden/data

Needs torch and numpy. Deterministic: parameters come from a hash formula (below,
mirrored bit for bit by tests/golden/golden_init.h), inputs from seeded numpy RNGs.
See tests/golden/README.md for the file layout.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "pointnet-golden"
VERSION = "1"
REGENERATE = "python3 scripts/make_goldens.py --out tests/golden/data"

# Parameters with more elements than this store only SUBSET_SIZE evenly spaced
# elements (flat indices floor(j * numel / SUBSET_SIZE)) plus the full L2 norm.
SUBSET_THRESHOLD = 256
SUBSET_SIZE = 64

# (case, task, feature_transform, num_classes, batch, points, seed)
CASES = [
    ("cls", "cls", False, 5, 8, 128, 1001),
    ("cls_ft", "cls", True, 5, 8, 128, 1002),
    ("seg", "seg", False, 4, 8, 64, 1003),
    ("seg_ft", "seg", True, 4, 8, 64, 1004),
]

DROPOUT_P = 0.3
REG_WEIGHT = 0.001
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

# pointnet.pytorch's model: one copy, shared with the peers in bench/peers/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers"))
from pointnet_torch import (PointNetCls, PointNetDenseCls,  # noqa: E402
                            feature_transform_regularizer)


# ---------------------------------------------------------------------------
# Deterministic parameter init. THE RULES (mirrored in tests/golden/golden_init.h):
#
#   For state_dict entry NAME with shape S, element i (flat, C order):
#     h = fnv1a64(NAME bytes)      offset 0xcbf29ce484222325, prime 0x100000001b3
#     x = splitmix64(h ^ (i * 0x9E3779B97F4A7C15 mod 2^64))
#         splitmix64(z): z += 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
#                        z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31   (all mod 2^64)
#     u = ((x >> 11) * 2^-53) * 2 - 1          uniform in [-1, 1), exact in double
#   Kind, from NAME (last component = after the final '.', module = the one before it):
#     last == "num_batches_tracked"            -> 0
#     last == "running_mean"                   -> 0.1 * u
#     last == "running_var"                    -> 1 + 0.25 * (u + 1)
#     module starts with "bn",   last "weight" -> 1 + 0.1 * u
#     module starts with "bn",   last "bias"   -> 0.1 * u
#     module starts with "conv"/"fc", "weight" -> u / sqrt(fan_in), fan_in = prod(S[1:])
#                                                 (Conv1d weight is (out, in, 1): fan_in = in)
#         and if NAME ends with "stn.fc3.weight" (T-Net last layer, also "fstn.fc3.weight"):
#                                                 (u / sqrt(fan_in)) * 0.1
#     module starts with "conv"/"fc", "bias"   -> 0.1 * u
#     anything else                            -> error
#   Every operation is one IEEE double operation, rounded to nearest, in the order
#   written (no fused multiply-add).
# ---------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


def splitmix64_np(z):
    """Vectorised splitmix64 over a uint64 array (numpy uint64 arithmetic wraps mod 2^64)."""
    z = z + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def golden_uniform(name, numel):
    h = np.uint64(fnv1a64(name))
    with np.errstate(over="ignore"):
        i = np.arange(numel, dtype=np.uint64)
        x = splitmix64_np(h ^ (i * np.uint64(GOLDEN)))
    u = (x >> np.uint64(11)).astype(np.float64) * (2.0 ** -53) * 2.0 - 1.0
    return u


def param_kind(name):
    parts = name.split(".")
    last = parts[-1]
    module = parts[-2] if len(parts) >= 2 else ""
    if last in ("num_batches_tracked", "running_mean", "running_var"):
        return last
    if module.startswith("bn") and last in ("weight", "bias"):
        return "bn_" + last
    if (module.startswith("conv") or module.startswith("fc")) and last in ("weight", "bias"):
        return last
    raise ValueError("golden init: no rule for parameter '%s'" % name)


def golden_param(name, shape):
    """float64 numpy array of `shape` holding the init values of state_dict entry `name`."""
    shape = tuple(int(s) for s in shape)
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    kind = param_kind(name)
    if kind == "num_batches_tracked":
        return np.zeros(shape, dtype=np.float64)
    u = golden_uniform(name, numel)
    if kind == "running_mean":
        v = 0.1 * u
    elif kind == "running_var":
        v = 1.0 + 0.25 * (u + 1.0)
    elif kind == "bn_weight":
        v = 1.0 + 0.1 * u
    elif kind == "bn_bias":
        v = 0.1 * u
    elif kind == "weight":
        fan_in = int(np.prod(shape[1:], dtype=np.int64))
        v = u / math.sqrt(fan_in)
        if name.endswith("stn.fc3.weight"):
            v = v * 0.1
    elif kind == "bias":
        v = 0.1 * u
    else:
        raise AssertionError(kind)
    return v.reshape(shape)


# ---------------------------------------------------------------------------
# safetensors writer (huggingface spec; no dependency on the safetensors package)
# ---------------------------------------------------------------------------

_DTYPES = {np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in _DTYPES:
            raise TypeError("%s: unsupported dtype %s" % (name, a.dtype))
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Golden generation
# ---------------------------------------------------------------------------


class FixedMask(nn.Module):
    """Stands in for nn.Dropout: multiplies by a stored (B, C) mask of 0 or 1/(1-p)
    in training mode, and (as nn.Dropout) passes values through in eval mode."""

    def __init__(self, mask):
        super(FixedMask, self).__init__()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return x * self.mask if self.training else x


def subset_indices(numel):
    return np.array([(j * numel) // SUBSET_SIZE for j in range(SUBSET_SIZE)], dtype=np.int64)


def put_maybe_subset(out, prefix, name, values, norm_prefix=None):
    """values: float64 numpy array. Full when small, else the evenly spaced subset."""
    flat = values.reshape(-1)
    if flat.size > SUBSET_THRESHOLD:
        idx = subset_indices(flat.size)
        out["%s_index.%s" % (prefix, name)] = idx
        out["%s.%s" % (prefix, name)] = flat[idx].copy()
        out["%s_norm.%s" % (prefix, name)] = np.array([np.linalg.norm(flat)], dtype=np.float64)
    else:
        out["%s.%s" % (prefix, name)] = values.copy()


def rel_error(got, ref):
    """||got - ref|| / ||ref||, in float64."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300))


def float32_step(case, task, feature_transform, k, init, mask, x, tgt):
    """The same training forward and backward in float32: gradients and log-probs."""
    model = PointNetCls(k=k, feature_transform=feature_transform) if task == "cls" else \
        PointNetDenseCls(k=k, feature_transform=feature_transform)
    model.load_state_dict({n: t.to(torch.float32) if t.is_floating_point() else t for n, t in init.items()})
    if mask is not None:
        model.dropout = FixedMask(torch.from_numpy(mask).to(torch.float32))
    model.train()
    pred, _, trans_feat = model(x.to(torch.float32))
    if task == "cls":
        loss = F.nll_loss(pred, tgt)
    else:
        loss = F.nll_loss(pred.view(-1, k), tgt.view(-1))
    if feature_transform:
        loss = loss + REG_WEIGHT * feature_transform_regularizer(trans_feat)
    loss.backward()
    grads = {n: p.grad.detach().to(torch.float64).numpy() for n, p in model.named_parameters()}
    return grads, pred.detach().to(torch.float64).numpy()


def make_case(case, task, feature_transform, k, B, N, seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, size=(B, N, 3))                          # (B, N, 3)
    if task == "cls":
        target = rng.integers(0, k, size=(B,), dtype=np.int64)               # (B,)
        keep = rng.random((B, 256)) >= DROPOUT_P
        mask = keep.astype(np.float64) * (1.0 / (1.0 - DROPOUT_P))           # (B, 256)
        model = PointNetCls(k=k, feature_transform=feature_transform)
    else:
        target = rng.integers(0, k, size=(B, N), dtype=np.int64)             # (B, N)
        mask = None
        model = PointNetDenseCls(k=k, feature_transform=feature_transform)

    model = model.double()
    sd = model.state_dict()
    shapes = [[name, list(t.shape)] for name, t in sd.items()]
    init = {}
    for name, t in sd.items():
        v = golden_param(name, t.shape)
        init[name] = torch.from_numpy(v).to(t.dtype)
    model.load_state_dict(init)
    for name, t in model.state_dict().items():  # the model holds exactly the formula's values
        assert torch.equal(t, init[name]), name
    if mask is not None:
        model.dropout = FixedMask(torch.from_numpy(mask))

    model.train()
    x = torch.from_numpy(points).transpose(2, 1).contiguous()                # (B, 3, N)
    tgt = torch.from_numpy(target)
    pred, trans, trans_feat = model(x)
    if task == "cls":
        loss = F.nll_loss(pred, tgt)
    else:
        loss = F.nll_loss(pred.view(-1, k), tgt.view(-1))
    if feature_transform:
        loss = loss + REG_WEIGHT * feature_transform_regularizer(trans_feat)
    running = {n: b.detach().clone() for n, b in model.named_buffers()}
    opt = torch.optim.Adam(model.parameters(), **ADAM)
    opt.zero_grad()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.eval()
    with torch.no_grad():
        eval_pred, _, _ = model(x)

    out = {
        "input.points": points,
        "input.target": target,
        "output.log_probs": pred.detach().numpy(),
        "output.trans": trans.detach().numpy(),
        "output.loss": np.array([loss.item()], dtype=np.float64),
        "output.eval_log_probs": eval_pred.numpy(),
    }
    if mask is not None:
        out["input.dropout_mask"] = mask
    if feature_transform:
        out["output.trans_feat"] = trans_feat.detach().numpy()
    for name, t in init.items():
        out["init_check." + name] = t.reshape(-1)[:4].to(torch.float64).numpy().copy()
    for name, g in grads.items():
        put_maybe_subset(out, "grad", name, g.numpy())
    for name, p in after.items():
        put_maybe_subset(out, "after_step", name, p.numpy())
    for name, b in running.items():
        if name.endswith("running_mean") or name.endswith("running_var"):
            put_maybe_subset(out, "running", name, b.numpy())
    # PyTorch's own float32 error on the same step, per gradient tensor: the
    # yardstick for our float32 tolerances (a float implementation cannot be
    # expected to beat float's own rounding in this model).
    f32_grads, f32_log_probs = float32_step(case, task, feature_transform, k, init, mask, x, tgt)
    out["f32_error.output.log_probs"] = np.array([rel_error(f32_log_probs, pred.detach().numpy())])
    for name, g in grads.items():
        ref = g.numpy().reshape(-1)
        got = f32_grads[name].reshape(-1)
        if ref.size > SUBSET_THRESHOLD:
            idx = subset_indices(ref.size)
            ref, got = ref[idx], got[idx]
        out["f32_error.grad." + name] = np.array([rel_error(got, ref)])
    out = {n: np.ascontiguousarray(a) for n, a in out.items()}

    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "case": case,
        "task": task,
        "feature_transform": "1" if feature_transform else "0",
        "num_classes": str(k),
        "batch": str(B),
        "points": str(N),
        "seed": str(seed),
        "dropout_p": str(DROPOUT_P),
        "reg_weight": str(REG_WEIGHT),
        "adam": "lr=1e-3 betas=(0.9,0.999) eps=1e-8 weight_decay=0, one step",
        "subset": "numel > %d: %d flat indices floor(j*numel/%d)" % (SUBSET_THRESHOLD, SUBSET_SIZE, SUBSET_SIZE),
        "state_dict": json.dumps(shapes, separators=(",", ":")),
        "torch_version": torch.__version__,
        "regenerate": REGENERATE,
    }
    return out, metadata


def main():
    global SUBSET_THRESHOLD, SUBSET_SIZE, REGENERATE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (tests/golden/data)")
    ap.add_argument("--subset-threshold", type=int, default=SUBSET_THRESHOLD,
                    help="parameters with more elements store only a subset (default %(default)s)")
    ap.add_argument("--subset-size", type=int, default=SUBSET_SIZE,
                    help="elements in that subset (default %(default)s)")
    args = ap.parse_args()
    if (args.subset_threshold, args.subset_size) != (SUBSET_THRESHOLD, SUBSET_SIZE):
        REGENERATE += " --subset-threshold %d --subset-size %d" % (args.subset_threshold, args.subset_size)
    SUBSET_THRESHOLD, SUBSET_SIZE = args.subset_threshold, args.subset_size
    torch.manual_seed(0)  # nothing random should come from torch; this only pins it if something does
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # reductions in one fixed order
    os.makedirs(args.out, exist_ok=True)
    for case, task, ft, k, B, N, seed in CASES:
        out, meta = make_case(case, task, ft, k, B, N, seed)
        path = os.path.join(args.out, case + ".safetensors")
        write_safetensors(path, out, meta)
        print("%-8s loss %.17g  tensors %d  bytes %d" % (case, out["output.loss"][0], len(out), os.path.getsize(path)))


if __name__ == "__main__":
    main()
