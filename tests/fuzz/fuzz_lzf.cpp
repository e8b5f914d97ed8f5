// LZF: decoding arbitrary bytes must fail cleanly; compressing then decoding
// must give the input back.
#include <vector>

#include "fuzz_common.h"
#include "io/lzf.h"

POINTNET_FUZZ_TARGET({
  const std::string packed = pointnet::lzf_compress(data, size);
  std::vector<unsigned char> back(size);
  pointnet::lzf_decompress(reinterpret_cast<const unsigned char*>(packed.data()), packed.size(), back.data(),
                           back.size(), "round trip");
  for (size_t i = 0; i < size; ++i)
    if (back[i] != data[i]) __builtin_trap();
  if (size < 2) return 0;
  // First two bytes: the output size claimed; the rest: the compressed stream.
  std::vector<unsigned char> out(static_cast<size_t>(data[0]) << 8 | data[1]);
  pointnet::lzf_decompress(data + 2, size - 2, out.data(), out.size(), "fuzz.lzf");
})
