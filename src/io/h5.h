// Numeric datasets from HDF5 files (libhdf5's C API), as PointNet's
// modelnet40_ply_hdf5_2048 stores them: `data` (n, 2048, 3) f32, `label`
// (n, 1) u8, optional `normal`. Built only when CMake finds libhdf5
// (POINTNET_HAS_HDF5); otherwise every call fails saying so.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

template <typename T>
struct H5Array {
  std::vector<uint64_t> shape;
  std::vector<T> values;  // row-major
};

// Whether this build can read HDF5.
bool hdf5_supported();

// Whether `file` has a dataset called `name` at its root.
bool h5_has_dataset(const std::string& file, const std::string& name);

// Reads a numeric dataset converted to float / int32 (HDF5 converts on read).
// Throws pointnet::Error naming the file and dataset when it is missing, not
// numeric (int32: not an integer type), or too large.
H5Array<float> read_h5_floats(const std::string& file, const std::string& name);
H5Array<int32_t> read_h5_ints(const std::string& file, const std::string& name);

}  // namespace pointnet
