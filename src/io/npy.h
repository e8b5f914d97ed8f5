// NumPy .npy files (format 1.0-3.0): read float arrays, write float32 arrays.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> values;   // C order, converted to float32
  // Where the values lie in the file, for messages (byte_of).
  size_t data_offset = 0;
  int item_size = 4;
  bool fortran = false;

  // The file offset of values[c_index] (the file may hold them in Fortran order).
  uint64_t byte_of(size_t c_index) const;
};

// Reads `path`; accepts '<f4', '<f8', '<f2' and their big-endian forms, C and
// Fortran order (returned in C order). Throws pointnet::Error naming the file
// and the byte offset of the problem.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::string& bytes, const std::string& name_for_errors);

// Writes a '<f4' C-order array, atomically.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* values);

}  // namespace pointnet
