// HDF5 files as PointNet ships them (modelnet40_ply_hdf5_2048, ShapeNet part
// hdf5_data), read by our reader (src/io/h5.cpp) and the HDF5 layouts.
//
// Structured, not raw bytes: libhdf5 (1.10, not instrumented) has its own bugs
// on corrupted files (mutating raw bytes found, within a minute, a leak in a
// failed H5Fopen and a 378 GB malloc from a corrupted heap size in H5Lexists;
// both are libhdf5's, tests/data/hdf5_malformed/ keeps them and
// test_h5_bounds.cpp checks they end in a clean error). What this target tests
// is our side: the input describes valid HDF5 datasets `data`, `label`,
// `normal`, `pid` (type class, size, byte order, rank, dimensions, storage:
// contiguous, chunked, gzip, compact or never written, and the values), libhdf5
// writes them, and the file is read as the layouts read it: every dataset
// directly, then as the one training file of a ModelNet HDF5 folder.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "fuzz_common.h"
#include "io/h5.h"

namespace {

// A ModelNet HDF5 folder (classes a, b, c) whose training file is written per input.
const std::string& folder() {
  static const std::string dir = [] {
    const std::string d = "/tmp/pointnet_fuzz_h5_" + std::to_string(getpid());
    ::mkdir(d.c_str(), 0700);
    for (const auto& [name, text] : {std::pair<const char*, const char*>{"shape_names.txt", "a\nb\nc\n"},
                                     {"train_files.txt", "data/ply_data_train0.h5\n"}}) {
      FILE* f = std::fopen((d + "/" + name).c_str(), "wb");
      if (!f) __builtin_trap();
      std::fputs(text, f);
      std::fclose(f);
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return d;
  }();
  return dir;
}

// An HDF5 type from the input: the numbers PointNet's files hold, and types we must refuse.
hid_t pick_type(FuzzedDataProvider& in) {
  const bool big = in.ConsumeBool();
  switch (in.ConsumeIntegralInRange(0, 11)) {
    case 0: return H5Tcopy(big ? H5T_IEEE_F32BE : H5T_IEEE_F32LE);
    case 1: return H5Tcopy(big ? H5T_IEEE_F64BE : H5T_IEEE_F64LE);
    case 2: return H5Tcopy(big ? H5T_STD_U8BE : H5T_STD_U8LE);
    case 3: return H5Tcopy(big ? H5T_STD_I8BE : H5T_STD_I8LE);
    case 4: return H5Tcopy(big ? H5T_STD_I16BE : H5T_STD_I16LE);
    case 5: return H5Tcopy(big ? H5T_STD_U32BE : H5T_STD_U32LE);
    case 6: return H5Tcopy(big ? H5T_STD_I32BE : H5T_STD_I32LE);
    case 7: return H5Tcopy(big ? H5T_STD_I64BE : H5T_STD_I64LE);
    case 8: return H5Tcopy(big ? H5T_STD_U64BE : H5T_STD_U64LE);
    case 9: {  // a 16-bit float (half), as some exporters write
      const hid_t t = H5Tcopy(H5T_IEEE_F32LE);
      H5Tset_fields(t, 15, 10, 5, 0, 10);
      H5Tset_size(t, 2);
      H5Tset_ebias(t, 15);
      return t;
    }
    case 10: {  // a fixed string: not a number
      const hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, in.ConsumeIntegralInRange<size_t>(1, 8));
      return t;
    }
    default: {  // a compound {float, int}: not a number either
      const hid_t t = H5Tcreate(H5T_COMPOUND, 8);
      H5Tinsert(t, "f", 0, H5T_IEEE_F32LE);
      H5Tinsert(t, "i", 4, H5T_STD_I32LE);
      return t;
    }
  }
}

// One dataset at the file's root, shaped and stored as the input says.
void write_dataset(FuzzedDataProvider& in, hid_t file, const char* name) {
  std::vector<hsize_t> dims;
  if (in.ConsumeBool()) {  // PointNet's shapes: (n, points, 3), (n, 1), (n), (n, points)
    const hsize_t n = in.ConsumeIntegralInRange(0, 3), points = in.ConsumeIntegralInRange(0, 8);
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0: dims = {n, points, 3}; break;
      case 1: dims = {n, 1}; break;
      case 2: dims = {n}; break;
      default: dims = {n, points}; break;
    }
  } else {
    dims.resize(in.ConsumeIntegralInRange(0, 4));
    for (hsize_t& d : dims) d = in.ConsumeIntegralInRange(0, 40);
  }
  size_t count = 1;
  for (hsize_t d : dims) count *= d;
  if (count > 20000) return;  // keeps each run fast; the sizes that matter are small
  const hid_t type = pick_type(in);
  const hid_t space = dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  const int storage = in.ConsumeIntegralInRange(0, 4);  // contiguous, chunked, gzip, compact, never written
  if ((storage == 1 || storage == 2) && !dims.empty() && count > 0) {
    std::vector<hsize_t> chunk(dims);
    for (hsize_t& c : chunk) c = in.ConsumeIntegralInRange<hsize_t>(1, c);
    H5Pset_chunk(plist, static_cast<int>(chunk.size()), chunk.data());
    if (storage == 2) H5Pset_deflate(plist, 1);
  } else if (storage == 3 && count * H5Tget_size(type) < 60000) {
    H5Pset_layout(plist, H5D_COMPACT);
  }
  const hid_t set = H5Dcreate2(file, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  if (set >= 0 && storage != 4 && count > 0) {
    // The values: the input's bytes, in the file's type (any bit pattern: NaN, Inf, huge labels).
    std::vector<unsigned char> bytes = in.ConsumeBytes<unsigned char>(count * H5Tget_size(type));
    bytes.resize(count * H5Tget_size(type));
    H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
  }
  if (set >= 0) H5Dclose(set);
  H5Pclose(plist);
  H5Sclose(space);
  H5Tclose(type);
}

template <typename T>
void check(const pointnet::H5Array<T>& a) {
  uint64_t n = 1;
  for (uint64_t d : a.shape) n *= d;
  if (n != a.values.size()) __builtin_trap();
}

}  // namespace

POINTNET_FUZZ_TARGET({
  FuzzedDataProvider in(data, size);
  const std::string file = folder() + "/ply_data_train0.h5";
  const hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) __builtin_trap();
  for (const char* name : {"data", "label", "normal", "pid"})
    if (in.ConsumeBool()) write_dataset(in, f, name);
  H5Fclose(f);
  for (const char* name : {"data", "normal"}) {
    try {
      check(pointnet::read_h5_floats(file, name));
    } catch (const pointnet::Error&) {
    }
  }
  for (const char* name : {"label", "pid"}) {
    try {
      check(pointnet::read_h5_ints(file, name));
    } catch (const pointnet::Error&) {
    }
  }
  const pointnet::Dataset ds = pointnet::load_dataset(folder(), pointnet::LoadOptions{});
  for (const pointnet::Shape& s : ds.shapes) {
    if (s.label < 0 || s.label >= static_cast<int>(ds.class_names.size()) || s.points.empty() ||
        s.points.size() % 3 != 0 || (!s.normals.empty() && s.normals.size() != s.points.size()))
      __builtin_trap();
    for (float v : s.points)
      if (!(v - v == 0)) __builtin_trap();
  }
})
