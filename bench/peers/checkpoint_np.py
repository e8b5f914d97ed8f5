"""Reads a `pointnet` checkpoint with numpy alone (no safetensors package, no
torch): a safetensors file is an 8-byte little-endian header length, a JSON
header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw
little-endian tensor data. Our metadata holds the model's JSON under "pointnet"
(src/train/checkpoint.h).
"""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8}


def read_checkpoint(path):
    """(state, info): the model's tensors by pointnet.pytorch's state_dict names
    (optimizer.* moments left out) and the "pointnet" metadata (task, num_classes,
    feature_transform, class_names, ...)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    meta = header.pop("__metadata__", {})
    if meta.get("format") != "pointnet-checkpoint":
        raise SystemExit(f"{path}: not a pointnet checkpoint (metadata format {meta.get('format')!r})")
    state = {}
    for name, t in header.items():
        if name.startswith("optimizer."):
            continue
        begin, end = t["data_offsets"]
        state[name] = np.frombuffer(data[begin:end], dtype=DTYPES[t["dtype"]]).reshape(t["shape"]).copy()
    return state, json.loads(meta["pointnet"])
