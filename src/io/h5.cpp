#include "io/h5.h"

#include "core/errors.h"

#ifdef POINTNET_HAS_HDF5
#include <hdf5.h>

#include <mutex>
#endif

namespace pointnet {

#ifndef POINTNET_HAS_HDF5

namespace {
[[noreturn]] void no_hdf5(const std::string& file) {
  fail(file, ": an HDF5 file, but this pointnet was built without HDF5: install libhdf5-dev and rebuild");
}
}  // namespace

bool hdf5_supported() { return false; }
bool h5_has_dataset(const std::string& file, const std::string&) { no_hdf5(file); }
H5Array<float> read_h5_floats(const std::string& file, const std::string&) { no_hdf5(file); }
H5Array<int32_t> read_h5_ints(const std::string& file, const std::string&) { no_hdf5(file); }

#else

namespace {

// Debian's libhdf5 is the serial (not thread-safe) build: one call at a time.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

// Closes an HDF5 handle when it goes out of scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

hid_t open_file(const std::string& file) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as ours, not printed by the library
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) fail(file, ": cannot open as an HDF5 file (missing, unreadable or not HDF5)");
  return f;
}

// Memory is allocated only for values the file holds. Unfiltered, the
// dataset's storage must cover every element (a large shape with nothing
// stored behind it would read as fill values); through filters (gzip), the
// values may be at most kMaxExpansion times the stored bytes.
constexpr uint64_t kMaxExpansion = 1100;  // deflate's ceiling is ~1032:1

void check_stored(const std::string& file, const std::string& name, hid_t dataset, uint64_t bytes) {
  const uint64_t stored = H5Dget_storage_size(dataset);
  Handle plist{H5Dget_create_plist(dataset), H5Pclose};
  const int filters = plist.id >= 0 ? H5Pget_nfilters(plist.id) : -1;
  if (filters < 0) fail(file, ": dataset '", name, "': unreadable storage properties");
  if (filters == 0 ? stored < bytes : bytes / kMaxExpansion > stored)
    fail(file, ": dataset '", name, "': its shape needs ", bytes, " bytes but the file stores ", stored,
         filters ? " (compressed)" : "", " for it: truncated or corrupted");
}

template <typename T>
H5Array<T> read_dataset(const std::string& file, const std::string& name, hid_t memory_type, bool integer_only) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle f{open_file(file), H5Fclose};
  if (H5Lexists(f.id, name.c_str(), H5P_DEFAULT) <= 0) fail(file, ": no dataset '", name, "'");
  Handle d{H5Dopen2(f.id, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (d.id < 0) fail(file, ": '", name, "' is not a dataset");
  Handle type{H5Dget_type(d.id), H5Tclose};
  const H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_INTEGER && (integer_only || cls != H5T_FLOAT))
    fail(file, ": dataset '", name, "': expected ", integer_only ? "integers" : "numbers", ", found another HDF5 type");
  const size_t item_bytes = H5Tget_size(type.id);
  if (item_bytes == 0 || item_bytes > 16)
    fail(file, ": dataset '", name, "': ", item_bytes, "-byte elements: expected 1 to 16 bytes");
  Handle space{H5Dget_space(d.id), H5Sclose};
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.id);
  if (space_class != H5S_SIMPLE && space_class != H5S_SCALAR)
    fail(file, ": dataset '", name, "': holds no values (a null or unreadable dataspace)");
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 0 || rank > 8) fail(file, ": dataset '", name, "': unsupported rank ", rank);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (H5Sget_simple_extent_dims(space.id, dims.data(), nullptr) != rank)
    fail(file, ": dataset '", name, "': unreadable dimensions");
  H5Array<T> out;
  uint64_t count = 1;
  for (hsize_t n : dims) {
    out.shape.push_back(n);
    if (n != 0 && count > (uint64_t{1} << 32) / n)
      fail(file, ": dataset '", name, "': more than 2^32 elements, too large to load");
    count *= n;
  }
  check_stored(file, name, d.id, count * item_bytes);
  out.values.resize(count);
  if (count > 0 && H5Dread(d.id, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()) < 0)
    fail(file, ": dataset '", name, "': read failed (corrupted file, or values that do not convert)");
  return out;
}

}  // namespace

bool hdf5_supported() { return true; }

bool h5_has_dataset(const std::string& file, const std::string& name) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  Handle f{open_file(file), H5Fclose};
  return H5Lexists(f.id, name.c_str(), H5P_DEFAULT) > 0;
}

H5Array<float> read_h5_floats(const std::string& file, const std::string& name) {
  return read_dataset<float>(file, name, H5T_NATIVE_FLOAT, false);
}

H5Array<int32_t> read_h5_ints(const std::string& file, const std::string& name) {
  return read_dataset<int32_t>(file, name, H5T_NATIVE_INT32, true);
}

#endif

}  // namespace pointnet
