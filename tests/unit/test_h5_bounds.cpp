// The HDF5 reader allocates only for values the file holds: a dataset whose
// shape claims more than its storage (nothing written, or a lying header) is
// refused naming the file and dataset; compressed data may expand, boundedly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../layout_fixtures.h"
#include "../temp_dir.h"
#include "format_test_helpers.h"
#include "data/dataset.h"
#include "io/h5.h"

namespace pointnet {
namespace {

#ifdef POINTNET_HAS_HDF5
// `data` of `dims` floats; `write` fills it (else nothing is stored); `gzip` chunks and deflates it.
void write_data(const std::string& path, const std::vector<hsize_t>& dims, bool write, bool gzip) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  if (gzip) {
    H5Pset_chunk(plist, static_cast<int>(dims.size()), dims.data());
    H5Pset_deflate(plist, 9);
  }
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, "data", H5T_IEEE_F32LE, space, H5P_DEFAULT, plist, H5P_DEFAULT);
  size_t count = 1;
  for (hsize_t d : dims) count *= d;
  const std::vector<float> zeros(write ? count : 0);
  if (write) H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
  H5Dclose(set);
  H5Sclose(space);
  H5Pclose(plist);
  H5Fclose(file);
}
#endif

TEST(H5Bounds, ShapesWithoutStoredValuesAreRefusedCompressedOnesRead) {
#ifndef POINTNET_HAS_HDF5
  GTEST_SKIP() << "built without HDF5 (libhdf5-dev)";
#else
  testing::TempDir dir;
  const std::string path = (dir.path / "a.h5").string();
  write_data(path, {4000, 2048, 3}, false, false);  // 98 MB claimed, nothing stored
  testing::expect_error([&] { read_h5_floats(path, "data"); },
                        {"a.h5: dataset 'data': its shape needs 98304000 bytes but the file stores 0"});
  write_data(path, {16, 2048, 3}, true, true);  // 393 kB of zeros, deflated to ~1 kB: within the bound
  EXPECT_EQ(read_h5_floats(path, "data").values.size(), 16u * 2048 * 3);
  write_data(path, {3, 5}, true, false);
  EXPECT_EQ(read_h5_floats(path, "data").shape, (std::vector<uint64_t>{3, 5}));
#endif
}

// Raw-byte fuzzing found these in libhdf5 1.10 itself (tests/fuzz/fuzz_h5.cpp):
// a leak when H5Fopen fails, and a 378 GB malloc from a corrupted local heap
// size in H5Lexists. Outside the sanitizers, each must end in our Error.
TEST(H5Bounds, LibHdf5FindingsEndInACleanError) {
#ifndef POINTNET_HAS_HDF5
  GTEST_SKIP() << "built without HDF5 (libhdf5-dev)";
#else
  for (const char* name : {"leaks_on_failed_open.h5", "huge_local_heap.h5"}) {
    testing::TempDir dir;
    testing::write_text_file(dir.path / "shape_names.txt", "a\nb\nc\n");
    testing::write_text_file(dir.path / "train_files.txt", "ply_data_train0.h5\n");
    std::filesystem::copy_file(std::string(POINTNET_SOURCE_DIR "/tests/data/hdf5_malformed/") + name,
                               dir.path / "ply_data_train0.h5");
    testing::expect_error([&] { load_dataset(dir.path.string(), LoadOptions{}); }, {"ply_data_train0.h5"});
  }
#endif
}

}  // namespace
}  // namespace pointnet
