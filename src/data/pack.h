// Dataset packs: a whole dataset (every split) in one versioned, checksummed
// binary file, memory-mapped on read, so a dataset loads in well under a
// second the second time. train/eval accept a pack wherever they accept a
// folder. Format (all integers little-endian):
//
//   [0, 8)    magic "PNTPACK\n"
//   [8, 12)   u32 format version (2; version 1, without normals, is still read)
//   [12, 16)  u32 JSON header length H
//   [16, 24)  u64 data section length D
//   [24, 32)  u64 checksum64 of the whole file, these 8 bytes read as zero
//   [32, 32+H) JSON header: layout, classes, dtype, has_parts, has_normals (v2),
//              source_format (v2: "npy", "txt", "hdf5", ...), splits, section offsets
//   zero padding to a multiple of 64, then the data section (D bytes):
//     shapes: per shape {u64 first point, u32 point count, i32 label}
//     points: (total points, 3) as f32 or f16
//     parts:  (total points) u8 part label within the shape's category
//             (ShapeNet part packs only)
//     normals: (total points, 3) as the points (v2, when has_normals: every
//             shape of every packed split had normals); each section starts
//             at a multiple of 64
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
// same order, same labels and part numbering. Verifies the checksum first.
Dataset read_pack(const std::string& path, const LoadOptions& options);

}  // namespace pointnet
