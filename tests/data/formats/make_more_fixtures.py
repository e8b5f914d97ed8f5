#!/usr/bin/env python3
"""Writes the .off, text-cloud, .seg and HDF5 fixtures of tests/data/formats
with independent tools (trimesh for .off, numpy.savetxt for .xyz/.txt/.pts and
.seg, h5py for PointNet's HDF5 layout) and adds the values they were given to
expected.json under "more", which tests/unit/test_format_fixtures.cpp compares
our readers against. make_fixtures.py writes the .ply/.pcd/.npy ones.

Not part of the build or CI. Regenerate with:
  python3 -m venv /tmp/v && /tmp/v/bin/pip install numpy trimesh h5py
  /tmp/v/bin/python tests/data/formats/make_more_fixtures.py
"""
import json
import os

import h5py
import numpy as np
import trimesh

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(11)


def floats(a):
    return [float(v) for v in np.ravel(np.asarray(a, dtype=np.float32))]


more = {"tools": {"numpy": np.__version__, "trimesh": trimesh.__version__, "h5py": h5py.__version__}}

# ---- .off: a tetrahedron and a quad, written by trimesh (triangles) ----
vertices = np.array([[0, 0, 0], [1.5, 0, 0], [0, 2.25, 0], [0, 0, -0.75], [1.5, 2.25, 0.5]], dtype=np.float64)
faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3], [1, 4, 2]], dtype=np.int64)
mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
with open(os.path.join(HERE, "trimesh_mesh.off"), "wb") as f:
    f.write(trimesh.exchange.off.export_off(mesh).encode())
more["trimesh_mesh.off"] = {"vertices": floats(vertices), "triangles": [int(v) for v in faces.ravel()]}

# ---- text clouds: numpy.savetxt, %.9g (every float32 value round-trips exactly) ----
def cloud(n, columns):
    return np.asarray(rng.uniform(-1, 1, (n, columns)), dtype=np.float32)

xyz = cloud(9, 3)
np.savetxt(os.path.join(HERE, "numpy_points.xyz"), xyz, fmt="%.9g", delimiter=" ")
more["numpy_points.xyz"] = {"xyz": floats(xyz)}
with_normals = cloud(7, 6)
with_normals[:, 3:] /= np.linalg.norm(with_normals[:, 3:], axis=1, keepdims=True)
np.savetxt(os.path.join(HERE, "numpy_normals.txt"), with_normals, fmt="%.9g", delimiter=",")  # normal_resampled style
more["numpy_normals.txt"] = {"xyz": floats(with_normals[:, :3]), "normals": floats(with_normals[:, 3:])}
labelled = cloud(5, 7)
labelled[:, 6] = [0, 4, 4, 1, 2]  # ShapeNet part _normal style: x y z nx ny nz part
np.savetxt(os.path.join(HERE, "numpy_parts.txt"), labelled, fmt=["%.9g"] * 6 + ["%d"], delimiter=" ")
more["numpy_parts.txt"] = {"xyz": floats(labelled[:, :3]), "normals": floats(labelled[:, 3:6]),
                           "labels": [int(v) for v in labelled[:, 6]]}
pts = cloud(6, 3)
np.savetxt(os.path.join(HERE, "numpy_shape.pts"), pts, fmt="%.9g", delimiter=" ")
more["numpy_shape.pts"] = {"xyz": floats(pts)}
seg = np.array([1, 3, 3, 2, 1, 4], dtype=np.int64)  # one 1-based part per point of numpy_shape.pts
np.savetxt(os.path.join(HERE, "numpy_shape.seg"), seg, fmt="%d")
more["numpy_shape.seg"] = {"labels": [int(v) for v in seg]}

# ---- HDF5: PointNet's modelnet40_ply_hdf5_2048 file layout, written by h5py ----
data = cloud(3 * 16, 3).reshape(3, 16, 3)
label = np.array([[2], [0], [1]], dtype=np.uint8)
normal = cloud(3 * 16, 3).reshape(3, 16, 3)
with h5py.File(os.path.join(HERE, "h5py_ply_data.h5"), "w") as f:
    f.create_dataset("data", data=data, compression="gzip", chunks=(1, 16, 3))
    f.create_dataset("label", data=label)
    f.create_dataset("normal", data=normal)
more["h5py_ply_data.h5"] = {"data_shape": list(data.shape), "data": floats(data), "label": [int(v) for v in label.ravel()],
                            "normal": floats(normal)}

path = os.path.join(HERE, "expected.json")
with open(path) as f:
    expected = json.load(f)
expected["more"] = more
with open(path, "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
print("wrote", ", ".join(k for k in more if k != "tools"))
