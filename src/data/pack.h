// Dataset packs: a whole dataset (every split) in one versioned, checksummed
// binary file, memory-mapped on read: an f32 pack's shapes are views of the
// mapping (zero copy; the mapping lives as long as a shape viewing it), so a
// dataset loads in milliseconds the second time (docs/benchmarks.md). An f16
// pack is converted to f32 shapes as it loads (a copy). train/eval accept a
// pack wherever they accept a folder. Format (all integers little-endian):
//
//   [0, 8)    magic "PNTPACK\n"
//   [8, 12)   u32 format version (3; versions 1 and 2 are still read)
//   [12, 16)  u32 JSON header length H
//   [16, 24)  u64 data section length D
//   [24, 32)  u64 checksum of the whole file, these 8 bytes read as zero
//             (version 3: over 1 MiB chunks, verified on every core; versions
//             1-2: one checksum64; data/pack_verify.h)
//   [32, 32+H) JSON header: layout, classes, dtype, has_parts, has_normals (v2),
//              source_format (v2: "npy", "txt", "hdf5", ...), splits {first,
//              count} (v1-2: also each shape's path), section offsets
//   zero padding to a multiple of 64, then the data section (D bytes):
//     shapes: per shape {u64 first point, u32 point count, i32 label}
//     points: (total points, 3) as f32 or f16
//     parts:  (total points) u8 part label within the shape's category
//             (ShapeNet part packs only)
//     normals: (total points, 3) as the points (v2, when has_normals: every
//             shape of every packed split had normals)
//     paths:  (v3) each shape's path within the packed folder, for messages:
//             u32 end offset per shape, then the bytes (data/pack_paths.h)
//   each section starts at a multiple of 64.
//
// Reading verifies the checksum and that every f32 value is finite in one pass
// over the file (near memory speed, both cores), and refuses a header or
// shape table that does not fit the file, naming the file and the byte.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace pointnet {

struct PackOptions {
  std::string dtype = "f32";            // "f32" (exact) or "f16" (half the size)
  int max_points = 0;                   // >0: shapes with more points keep a seeded random subset
  std::vector<std::string> splits;      // empty: every split of the layout
  int mesh_points = 2048;               // points sampled from .off meshes
  uint64_t seed = 0;                    // mesh sampling and --points subsets
  int modelnet_classes = 0;             // LoadOptions::modelnet_classes (normal_resampled: 40 or 10)
  int version = 3;                      // format version written: 3, or 2 for older readers (and tests)
};

struct PackSummary {
  std::string layout;
  size_t classes = 0;
  std::vector<std::pair<std::string, size_t>> split_counts;
  uint64_t points = 0;
  uint64_t bytes = 0;
  bool has_normals = false;
};

// Reads the dataset folder `dir` and writes the pack to `out` atomically.
PackSummary write_pack(const std::string& dir, const std::string& out, const PackOptions& options);

// True when `path` is a regular file that starts with the pack magic.
bool is_pack_file(const std::string& path);

// The layout stored in a pack ("modelnet" or "shapenet_part"), from its header alone.
std::string pack_layout(const std::string& path);

// The pack's JSON header (layout, dtype, classes, splits, ...), without
// verifying the checksum (read_pack does that).
nlohmann::json pack_header(const std::string& path);

// Reads one split of a pack, as load_dataset() reads a folder: same shapes,
// same order, same labels and part numbering. Verifies the whole file first.
Dataset read_pack(const std::string& path, const LoadOptions& options);

// The checksum a pack's bytes 24..32 must hold, by the format version in its
// bytes 8..12 (those 8 bytes read as zero): for tests and fuzzers that craft
// packs. `size` >= 32.
uint64_t pack_checksum(const void* file, size_t size);

}  // namespace pointnet
