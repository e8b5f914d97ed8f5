#!/usr/bin/env python3
"""Golden .pth files for the C++ importer (pointnet convert, load_model on a .pth):
pointnet.pytorch's model (bench/peers/pointnet_torch.py) saved with
torch.save(state_dict), plus what PyTorch computes on a few fixed clouds in eval mode.

    /work/venv-peers/bin/python scripts/make_pth_goldens.py --out tests/golden/data/pth

Writes, for each case in CASES:
  <case>.pth                 torch.save of an OrderedDict state_dict (zip format), with
                             its _metadata, like model.state_dict()
  <case>.expected.safetensors  input.points F32 (B, N, 3); log_probs_f32 F32 (PyTorch
                             float32 eval forward); log_probs_f64 F64 (the same weights
                             cast to float64, forward in float64)
and cls_legacy.pth (the cls state_dict in the pre-1.6 legacy format; see
save_legacy) and dtypes.pth (a few small tensors in every
storage type, some non-contiguous: see DTYPE_TENSORS).

Small on purpose (the repo travels within 64 MiB): every weight with more than
BIG elements is a strided view into ONE shared float32 storage (rows overlap: row
stride a small prime), which torch.save keeps as a view, so the reader's
offset/stride handling is exercised too. Biases, BatchNorm tensors and small weights
are ordinary tensors with their own storages, as in a real checkpoint. BatchNorm
running statistics come from train-mode forwards over random clouds (cumulative
average), so they are realistic and far from 0 / 1.

Deterministic: torch.manual_seed per case; two runs give identical bytes (torch.save
names the archive's folder after the file, so keep the file names).
"""
import argparse
import collections
import io
import pickle
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers"))
from pointnet_torch import PointNetCls, PointNetDenseCls  # noqa: E402

# (case, task, feature_transform, k, seed)
CASES = [
    ("cls", "cls", False, 5, 2001),
    ("cls_ft", "cls", True, 5, 2002),
    ("seg", "seg", False, 4, 2003),
    ("seg_ft", "seg", True, 4, 2004),
]
VERSION = "1"                  # of the .expected.safetensors layout; tests/golden/test_pth_golden.cpp checks it
BATCH, POINTS = 3, 64          # the fixed clouds
BIG = 1024                     # weights with more elements become views
SHARED = 4608                  # elements in the one shared storage
PRIMES = (7, 5, 3, 2, 1)       # row strides to try, largest that fits first (1: fstn.fc3, 4096 rows)


def shared_view(base, shape, gen):
    """A (out, in[, 1]) view into base with overlapping rows."""
    out, inner = shape[0], int(np.prod(shape[1:]))
    for p in PRIMES:
        need = (out - 1) * p + inner
        if need <= base.numel():
            offset = int(torch.randint(0, base.numel() - need + 1, (1,), generator=gen))
            stride = (p,) + tuple(1 for _ in shape[1:])
            return base.as_strided(tuple(shape), stride, offset)
    raise ValueError(f"shape {shape} does not fit the shared storage")


def build(task, ft, k, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = PointNetCls(k=k, feature_transform=ft) if task == "cls" else PointNetDenseCls(k=k, feature_transform=ft)
    base = (torch.rand(SHARED, generator=gen) * 2 - 1) * 0.06
    views = {}
    for name, t in model.state_dict().items():
        if name.endswith("weight") and t.numel() > BIG:
            views[name] = shared_view(base, t.shape, gen)
    model.load_state_dict({**model.state_dict(), **views})
    # Running statistics from train-mode forwards (cumulative average), BN
    # weights and biases away from 1 / 0.
    with torch.no_grad():
        for name, t in model.named_parameters():
            if ".bn" in name or name.startswith("bn"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if name.endswith("weight")
                        else torch.rand(t.shape, generator=gen) * 0.2 - 0.1)
        # The T-Nets' last hidden layer scaled down, so that their transforms
        # are the identity plus a perturbation, as in trained models (a random
        # 64x64 transform makes the model ill-conditioned: float32 results would
        # then differ from float64 by more than the test's tolerance).
        for name, t in model.named_parameters():
            if "stn.bn5." in name:
                t.mul_(0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.momentum = None
        model.train()
        for _ in range(3):
            model(torch.rand(8, 3, POINTS, generator=gen) * 2 - 1)
    model.eval()
    sd = model.state_dict()
    saved = collections.OrderedDict()
    for name, t in sd.items():
        saved[name] = views[name] if name in views else t.clone()
    saved._metadata = sd._metadata
    return model, saved, gen


def write_safetensors(path, tensors):
    """safetensors by hand (no extra dependency): header JSON, then raw bytes."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).astype({"F32": "<f4", "F64": "<f8"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pointnet-pth-golden", "version": VERSION, "torch_version": torch.__version__,
                              "regenerate": "/work/venv-peers/bin/python scripts/make_pth_goldens.py --out tests/golden/data/pth"}
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def save_legacy(obj, path):
    """torch.save's legacy (pre-1.6) format, as torch.serialization._legacy_save
    writes it, but with storage keys "0", "1", ... in order of first use instead of
    memory addresses (which differ on every run, as does the order of the storage
    data, sorted by key). Checked by loading it back with torch.load."""
    storages = {}  # data_ptr -> (key, typed storage)

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if not isinstance(o, torch.storage.TypedStorage):
                return None
            ptr = o._untyped_storage.data_ptr()
            if ptr not in storages:
                storages[ptr] = (str(len(storages)), o)
            return ("storage", getattr(torch, o._pickle_storage_type()), storages[ptr][0], "cpu", o._size(), None)

    buf = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, buf, protocol=2)
    Pickler(buf, protocol=2).dump(obj)
    keys = sorted(key for key, _ in storages.values())
    pickle.dump(keys, buf, protocol=2)
    by_key = {key: st for key, st in storages.values()}
    for key in keys:
        st = by_key[key]
        buf.write(struct.pack("<q", st._size()))
        buf.write(bytes(st._untyped_storage.cpu()))
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    back = torch.load(path, weights_only=True)
    assert list(back) == list(obj) and all(torch.equal(back[k], obj[k]) for k in obj), "legacy round trip"


# dtypes.pth: value of element (i, j) of every 3x4 tensor = (i * 4 + j) * 0.5 - 1,
# exact in every type; the "_t" ones are saved transposed (4x3, strides (1, 4)),
# "_offset" is a (3, 4) view starting 5 elements into a longer storage.
def dtype_tensors():
    grid = torch.arange(12, dtype=torch.float64).reshape(3, 4) * 0.5 - 1
    out = collections.OrderedDict()
    for tag, dtype in [("f32", torch.float32), ("f64", torch.float64), ("f16", torch.float16),
                       ("bf16", torch.bfloat16)]:
        out[tag] = grid.to(dtype)
        out[tag + "_t"] = grid.to(dtype).t()
    out["i64"] = torch.arange(12, dtype=torch.int64).reshape(3, 4) - 3
    out["i32_t"] = (torch.arange(12, dtype=torch.int32).reshape(3, 4) - 3).t()
    longer = torch.cat([torch.full((5,), 99.0), grid.flatten().float(), torch.full((3,), 99.0)])
    out["f32_offset"] = longer[5:17].view(3, 4)
    out["scalar_i64"] = torch.tensor(7, dtype=torch.int64)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/data/pth")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for case, task, ft, k, seed in CASES:
        model, saved, gen = build(task, ft, k, seed)
        path = os.path.join(args.out, case + ".pth")
        torch.save(saved, path)
        points = torch.rand(BATCH, POINTS, 3, generator=gen) * 2 - 1   # (B, N, 3), float32
        with torch.no_grad():
            lp32 = model(points.transpose(2, 1).contiguous())[0]
            lp64 = model.double()(points.double().transpose(2, 1).contiguous())[0]
        write_safetensors(os.path.join(args.out, case + ".expected.safetensors"),
                          {"input.points": ("F32", points.numpy()), "log_probs_f32": ("F32", lp32.numpy()),
                           "log_probs_f64": ("F64", lp64.numpy())})
        if case == "cls":
            save_legacy(saved, os.path.join(args.out, "cls_legacy.pth"))
        print(path, os.path.getsize(path), "bytes")
    torch.save(dtype_tensors(), os.path.join(args.out, "dtypes.pth"))


if __name__ == "__main__":
    main()
