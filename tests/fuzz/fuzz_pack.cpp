// Dataset packs: the bytes go to a file (the reader memory-maps a path). The
// checksum is patched to match, or nearly every input would stop there.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "data/pack.h"
#include "fuzz_common.h"

namespace {

// As the file's version defines it (data/pack.h, pack_checksum).
void patch_checksum(std::string& bytes) {
  if (bytes.size() < 32) return;
  const uint64_t sum = pointnet::pack_checksum(bytes.data(), bytes.size());
  for (int k = 0; k < 8; ++k) bytes[24 + k] = static_cast<char>((sum >> (8 * k)) & 0xff);
}

const std::string& temp_path() {
  static const std::string path = "/tmp/pointnet_fuzz_pack_" + std::to_string(getpid()) + ".pnpack";
  return path;
}

}  // namespace

POINTNET_FUZZ_TARGET({
  // Every input verified in full: no stamp is read from or written to $HOME
  // (and the finite-values check below is the verifier's promise, unweakened).
  static const bool always_verify = ::setenv("POINTNET_PACK_VERIFY", "always", 1) == 0;
  (void)always_verify;
  std::string bytes(pointnet::fuzz::as_text(data, size));
  patch_checksum(bytes);
  // A plain write: write_file_atomic's fsync would make each run 100x slower.
  FILE* f = std::fopen(temp_path().c_str(), "wb");
  if (!f) __builtin_trap();
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  for (const char* split : {"train", "test", "trainval"}) {
    try {
      pointnet::LoadOptions options;
      options.split = split;
      pointnet::Dataset ds = pointnet::read_pack(temp_path(), options);
      for (const pointnet::Shape& s : ds.shapes) {
        if (s.points.size() % 3 != 0 || s.label < 0 || s.label >= static_cast<int>(ds.class_names.size()))
          __builtin_trap();
        for (float v : s.points)  // the verifier's promise; reads every viewed byte (ASan checks the bounds)
          if (!(v - v == 0)) __builtin_trap();
      }
    } catch (const pointnet::Error&) {
    }
  }
  pointnet::pack_header(temp_path());
})
