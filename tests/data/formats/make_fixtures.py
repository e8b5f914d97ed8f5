#!/usr/bin/env python3
"""Writes the .ply/.pcd fixtures of tests/data/formats with independent tools
(plyfile for .ply, pypcd4 - which compresses with liblzf via python-lzf - for
.pcd) and expected.json, the values those tools were given, which
tests/unit/test_format_fixtures.cpp compares our readers against.

Not part of the build or CI. Regenerate with:
  /work/venv-peers/bin/python -m pip install plyfile pypcd4
  /work/venv-peers/bin/python tests/data/formats/make_fixtures.py
"""
import json
import os

import lzf
import numpy as np
import numpy.lib.recfunctions
import plyfile
import pypcd4

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(7)
expected = {}


def f32(a):
    return np.asarray(a, dtype=np.float32)


def tolist(a):
    return [float(v) if np.issubdtype(np.asarray(a).dtype, np.floating) else int(v) for v in np.ravel(a)]


# ---- .ply clouds: the same points in ascii, binary little- and big-endian ----
n = 6
xyz = f32(rng.uniform(-2, 2, (n, 3)).round(3))
nrm = rng.normal(size=(n, 3))
nrm = f32(nrm / np.linalg.norm(nrm, axis=1, keepdims=True))
labels = np.array([0, 3, 3, 1, 7, 2], dtype=np.int32)
vertex = np.empty(n, dtype=[("x", "f4"), ("intensity", "f8"), ("y", "f4"), ("z", "f4"), ("red", "u1"),
                            ("nx", "f4"), ("ny", "f4"), ("nz", "f4"), ("neighbours", "O"), ("label", "i4")])
vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
vertex["intensity"] = rng.uniform(size=n)
vertex["red"] = np.arange(n) * 40
vertex["nx"], vertex["ny"], vertex["nz"] = nrm[:, 0], nrm[:, 1], nrm[:, 2]
for i in range(n):
    vertex["neighbours"][i] = np.arange(i % 3, dtype=np.int32)  # lists of 0..2 items, skipped
vertex["label"] = labels
camera = np.array([(1.5, 2), (0.25, 9)], dtype=[("view_px", "f4"), ("flag", "u1")])


# plyfile writes rows of an element that has list properties value by value, in native byte
# order whatever the file declares: its big-endian file therefore gets no list property.
no_lists = np.lib.recfunctions.repack_fields(vertex[[n for n in vertex.dtype.names if n != "neighbours"]])


def elements(order):
    v = no_lists.astype(no_lists.dtype.newbyteorder(">")) if order == ">" else vertex
    return [plyfile.PlyElement.describe(camera, "camera"),  # an element before the vertices
            plyfile.PlyElement.describe(v, "vertex", len_types={"neighbours": "u1"})]


for name, text, order in [("points_ascii.ply", True, "="), ("points_binary_le.ply", False, "<"),
                          ("points_binary_be.ply", False, ">")]:
    plyfile.PlyData(elements(order), text=text, byte_order=order, comments=["made by plyfile"],
                    obj_info=["fixture for pointnet"]).write(os.path.join(HERE, name))
expected["points_ply"] = {"xyz": tolist(xyz), "normals": tolist(nrm), "labels": tolist(labels)}

# ---- .ply with integer and double coordinate types, no normals or labels ----
t = np.empty(4, dtype=[("x", "i1"), ("y", "u2"), ("z", "f8"), ("scalar_label", "f4")])
t["x"] = [-128, 0, 5, 127]
t["y"] = [0, 1, 65535, 300]
t["z"] = [0.5, -1e-3, 12345.678, -7.25]
t["scalar_label"] = [1, 2, 2, 5]  # CloudCompare stores labels as float
plyfile.PlyData([plyfile.PlyElement.describe(t, "vertex")], byte_order=">").write(
    os.path.join(HERE, "types_binary_be.ply"))
t2 = np.empty(3, dtype=[("z", "f8"), ("y", "i4"), ("x", "u1")])  # xyz out of order
t2["x"], t2["y"], t2["z"] = [1, 2, 255], [-100000, 0, 7], [0.125, 1e10, -3.5]
plyfile.PlyData([plyfile.PlyElement.describe(t2, "vertex")], text=True).write(
    os.path.join(HERE, "types_ascii.ply"))
expected["types_binary_be_ply"] = {
    "xyz": tolist(f32(np.stack([t["x"], t["y"], t["z"]], 1))), "labels": [1, 2, 2, 5]}
expected["types_ascii_ply"] = {"xyz": tolist(f32(np.stack([t2["x"], t2["y"], t2["z"]], 1)))}

# ---- .ply meshes: a unit cube as quads (ascii) and as triangles (binary) ----
cube_v = f32([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]])
quads = [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [2, 3, 7, 6], [1, 2, 6, 5], [0, 4, 7, 3]]
v = np.empty(8, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
v["x"], v["y"], v["z"] = cube_v[:, 0], cube_v[:, 1], cube_v[:, 2]
f = np.empty(6, dtype=[("vertex_indices", "O"), ("flags", "u2")])
for i, q in enumerate(quads):
    f["vertex_indices"][i] = np.array(q, dtype=np.int32)
f["flags"] = 3
# Faces before vertices, to test element order.
plyfile.PlyData([plyfile.PlyElement.describe(f, "face", len_types={"vertex_indices": "u1"}),
                 plyfile.PlyElement.describe(v, "vertex")], text=True).write(os.path.join(HERE, "cube_ascii.ply"))
tris = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
f2 = np.empty(len(tris), dtype=[("vertex_index", "O")])
for i, tr in enumerate(tris):
    f2["vertex_index"][i] = np.array(tr, dtype=np.uint16)
plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex"),
                 plyfile.PlyElement.describe(f2, "face", len_types={"vertex_index": "u4"},
                                             val_types={"vertex_index": "u2"})],
                byte_order="<").write(os.path.join(HERE, "cube_binary_le.ply"))
expected["cube"] = {"min": [0, 0, 0], "max": [1, 1, 1], "outward": True}

# ---- .pcd clouds: fields in a scrambled order with extra fields ----
m = 40  # enough repetition that liblzf compresses it (pypcd4 falls back to binary otherwise)
pxyz = f32(rng.uniform(-5, 5, (m, 3)).round(2))
pn = rng.normal(size=(m, 3))
pn = f32(pn / np.linalg.norm(pn, axis=1, keepdims=True))
plabel = (np.arange(m) % 4).astype(np.uint32)
fields = ("intensity", "x", "rgb", "y", "z", "normal_x", "normal_y", "normal_z", "desc", "label")
cols = [f32(np.full(m, 0.5)), pxyz[:, 0], f32(np.zeros(m)), pxyz[:, 1], pxyz[:, 2], pn[:, 0], pn[:, 1], pn[:, 2],
        f32(np.zeros(m)), f32(np.ones(m)), f32(np.zeros(m)), plabel]  # desc: COUNT 3, given as 3 columns
counts = (1,) * 8 + (3, 1)
meta = pypcd4.MetaData(fields=fields, size=(4,) * 10, type=("F",) * 9 + ("U",), count=counts, points=m, width=m)
cloud = pypcd4.PointCloud(meta, np.rec.fromarrays(cols, dtype=meta.build_dtype()))  # from_points has no COUNT > 1
for enc in ["ascii", "binary"]:
    cloud.save(os.path.join(HERE, f"points_{enc}.pcd"), encoding=pypcd4.Encoding(enc))
# pypcd4 lays a COUNT > 1 field out as COUNT separate planes in binary_compressed, where PCL
# keeps each point's COUNT values together; so this one has no such field.
cols = cols[:8] + cols[11:]
fields = fields[:8] + fields[9:]
cloud = pypcd4.PointCloud.from_points(cols, fields, (np.float32,) * 8 + (np.uint32,))
cloud.save(os.path.join(HERE, "points_binary_compressed.pcd"), encoding=pypcd4.Encoding("binary_compressed"))
expected["points_pcd"] = {"xyz": tolist(pxyz), "normals": tolist(pn), "labels": tolist(plabel)}

# ---- organised .pcd (WIDTH 5 x HEIGHT 4) with NaN "no return" points ----
w, h = 5, 4
oxyz = f32(rng.uniform(0, 3, (w * h, 3)).round(2))
nan_rows = [1, 6, 7, 13, 19]
oxyz[nan_rows] = np.nan
oxyz[9, 2] = np.nan  # one coordinate alone is enough to drop a point
ointensity = f32(np.arange(w * h))
org = pypcd4.PointCloud.from_points([oxyz[:, 0], oxyz[:, 1], oxyz[:, 2], ointensity],
                                    ("x", "y", "z", "intensity"), (np.float32,) * 4)
org = pypcd4.PointCloud(org.metadata.model_copy(update={"width": w, "height": h}), org.pc_data)
for enc in ["ascii", "binary", "binary_compressed"]:
    org.save(os.path.join(HERE, f"organised_{enc}.pcd"), encoding=pypcd4.Encoding(enc))
keep = [i for i in range(w * h) if np.all(np.isfinite(oxyz[i]))]
expected["organised_pcd"] = {"xyz": tolist(oxyz[keep]), "dropped": w * h - len(keep)}

# ---- liblzf test vector (python-lzf wraps liblzf's lzf_compress) ----
raw = b"PointNet point cloud: xyz xyz xyz xyz xyzxyzxyz " + bytes(range(40)) + b"\0" * 300 + b"tail"
expected["lzf"] = {"raw_hex": raw.hex(), "compressed_hex": lzf.compress(raw).hex()}

with open(os.path.join(HERE, "expected.json"), "w") as out:
    json.dump(expected, out, indent=1)
    out.write("\n")
for name in ["points_ascii.ply", "points_binary_le.ply", "points_binary_be.ply"]:  # plyfile reads them back
    back = plyfile.PlyData.read(os.path.join(HERE, name))["vertex"].data
    assert np.array_equal(np.stack([back["x"], back["y"], back["z"]], 1), xyz), name
    assert np.array_equal(back["label"], labels), name
for name in sorted(os.listdir(HERE)):
    if name.endswith(".pcd"):
        with open(os.path.join(HERE, name), "rb") as fp:
            head = fp.read(400)
        print(name, [l for l in head.split(b"\n") if l.startswith(b"DATA")][0].decode())
