// pointnet pack: reads a dataset folder (every split) and writes one pack file.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/half.h"
#include "core/rng.h"
#include "data/batch.h"
#include "data/pack.h"
#include "data/pack_format.h"
#include "data/pack_paths.h"
#include "data/pack_verify.h"

namespace pointnet {
namespace {

using namespace pack;

std::vector<std::string> default_splits(const std::string& layout) {
  if (layout == "shapenet_part") return {"train", "val", "test"};
  return {"train", "test"};
}

// Keeps `max_points` of the shape's points (seeded subset, original order).
void subsample(Shape& s, int max_points, Rng& rng) {
  const int n = s.num_points();
  if (max_points <= 0 || n <= max_points) return;
  std::vector<int> index(n);
  for (int i = 0; i < n; ++i) index[i] = i;
  for (int i = 0; i < max_points; ++i) std::swap(index[i], index[i + rng.below(static_cast<uint32_t>(n - i))]);
  index.resize(max_points);
  std::sort(index.begin(), index.end());
  std::vector<float> points(static_cast<size_t>(max_points) * 3);
  std::vector<float> normals(s.normals.empty() ? 0 : points.size());
  std::vector<int32_t> parts(s.parts.empty() ? 0 : max_points);
  for (int i = 0; i < max_points; ++i) {
    std::memcpy(&points[3 * static_cast<size_t>(i)], &s.points[3 * static_cast<size_t>(index[i])], 3 * sizeof(float));
    if (!normals.empty())
      std::memcpy(&normals[3 * static_cast<size_t>(i)], &s.normals[3 * static_cast<size_t>(index[i])], 3 * sizeof(float));
    if (!parts.empty()) parts[i] = s.parts[index[i]];
  }
  s.points = std::move(points);
  s.normals = std::move(normals);
  s.parts = std::move(parts);
}

// Little-endian f32 or f16 values, as the points and normals sections hold them.
void encode_values(const Floats& values, bool f16, char* dst) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (f16) {
      const uint16_t h = float_to_half(values[i]);
      dst[2 * i] = static_cast<char>(h & 0xff);
      dst[2 * i + 1] = static_cast<char>(h >> 8);
    } else {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      for (int b = 0; b < 4; ++b) dst[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    }
  }
}

// One split as the pack stores it: parts within the category, subsampled, checked.
void prepare_split(Dataset& ds, const std::string& dir, const PackOptions& options, size_t split_index,
                   std::vector<std::string>& paths) {
  const bool shapenet = ds.layout == "shapenet_part", f16 = options.dtype == "f16";
  for (size_t i = 0; i < ds.shapes.size(); ++i) {
    Shape& s = ds.shapes[i];
    if (shapenet)  // store labels within the category; readers renumber as load_dataset does
      for (int32_t& p : s.parts) p -= ds.part_offset[s.label];
    Rng rng(mix_seed(options.seed, 0x9ACC + split_index, i));
    subsample(s, options.max_points, rng);
    for (const Floats* values : {&s.points, &s.normals})
      for (float v : *values) {
        if (!std::isfinite(v) || (f16 && std::fabs(v) > 65504.0f))
          fail(s.path, ": value ", v, " cannot be stored", f16 ? " as f16 (use --dtype f32)" : "");
      }
    for (int32_t p : s.parts)
      if (p < 0 || p > 255) fail(s.path, ": part label ", p, " is outside 0..255");
    const std::string full = s.path;
    std::string rel = full.rfind(dir, 0) == 0 ? full.substr(dir.size()) : full;
    while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
    paths.push_back(rel);
  }
}

}  // namespace

PackSummary write_pack(const std::string& dir, const std::string& out, const PackOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("pack: --dtype must be f32 or f16, got '", options.dtype, "'");
  if (options.max_points < 0) fail("pack: --points must be positive");
  if (options.version != 2 && options.version != 3) fail("pack: format version ", options.version, ": expected 2 or 3");
  const std::string layout = dataset_layout(dir);
  if (is_pack_file(dir)) fail(dir, ": is already a pack");
  const bool shapenet = layout == "shapenet_part", v3 = options.version == 3;
  const std::vector<std::string> splits = options.splits.empty() ? default_splits(layout) : options.splits;
  const bool f16 = options.dtype == "f16";

  std::vector<Dataset> parts_by_split;
  std::vector<std::string> all_paths;  // every shape's, in pack order
  nlohmann::json split_json = nlohmann::json::object();
  PackSummary summary;
  summary.layout = layout;
  uint64_t shapes_total = 0, points_total = 0;
  for (size_t k = 0; k < splits.size(); ++k) {
    if (split_json.contains(splits[k])) fail("pack: split '", splits[k], "' given twice");
    LoadOptions load;
    load.split = splits[k];
    load.with_parts = shapenet;
    load.mesh_points = options.mesh_points;
    load.seed = options.seed;
    load.modelnet_classes = options.modelnet_classes;
    Dataset ds = load_dataset(dir, load);
    std::vector<std::string> paths;
    prepare_split(ds, dir, options, k, paths);
    for (const Shape& s : ds.shapes) points_total += static_cast<uint64_t>(s.num_points());
    if (k > 0 && ds.class_names != parts_by_split[0].class_names)
      fail(dir, ": split '", splits[k], "' has other classes than split '", splits[0], "'");
    split_json[splits[k]] = {{"first", shapes_total}, {"count", ds.shapes.size()}};
    if (!v3) split_json[splits[k]]["paths"] = paths;
    all_paths.insert(all_paths.end(), paths.begin(), paths.end());
    summary.split_counts.emplace_back(splits[k], ds.shapes.size());
    shapes_total += ds.shapes.size();
    parts_by_split.push_back(std::move(ds));
  }
  const Dataset& first = parts_by_split.front();
  bool has_normals = true;
  std::vector<std::string> formats;
  for (const Dataset& ds : parts_by_split) {
    has_normals = has_normals && ds.has_normals;
    formats.push_back(ds.format);
  }
  summary.classes = first.class_names.size();
  summary.points = points_total;
  summary.has_normals = has_normals;

  const std::string path_table = v3 ? PathTable::encode(all_paths) : std::string();
  const size_t value_bytes = f16 ? 2 : 4;
  Section shapes_sec{0, shapes_total * kShapeRecord};
  Section points_sec{align_up(shapes_sec.bytes), points_total * 3 * value_bytes};
  Section parts_sec{align_up(points_sec.offset + points_sec.bytes), shapenet ? points_total : 0};
  Section normals_sec{align_up(parts_sec.offset + parts_sec.bytes), has_normals ? points_sec.bytes : 0};
  Section paths_sec{align_up(normals_sec.offset + normals_sec.bytes), path_table.size()};
  const uint64_t data_bytes = v3 ? paths_sec.offset + paths_sec.bytes : normals_sec.offset + normals_sec.bytes;

  auto entry = [](const Section& s) { return nlohmann::json{{"offset", s.offset}, {"bytes", s.bytes}}; };
  nlohmann::json sections = {{"shapes", entry(shapes_sec)}, {"points", entry(points_sec)},
                             {"parts", entry(parts_sec)}, {"normals", entry(normals_sec)}};
  if (v3) sections["paths"] = entry(paths_sec);
  const nlohmann::json header = {
      {"format", "pointnet-pack"}, {"version", options.version}, {"layout", layout}, {"up_axis", first.up_axis},
      {"class_names", first.class_names}, {"dtype", options.dtype}, {"has_parts", shapenet},
      {"has_normals", has_normals}, {"source", dir}, {"source_format", combined_format(formats)},
      {"max_points", options.max_points}, {"seed", options.seed}, {"mesh_points", options.mesh_points},
      {"splits", split_json}, {"sections", sections}};
  const std::string json = header.dump();
  if (json.size() > 0xffffffffu) fail("pack: header too large");
  const size_t data_offset = align_up(kFixedHeader + json.size());
  std::string bytes(data_offset + data_bytes, '\0');
  std::memcpy(&bytes[0], kMagic, sizeof kMagic);
  put_le(bytes, 8, static_cast<uint32_t>(options.version), 4);
  put_le(bytes, 12, json.size(), 4);
  put_le(bytes, 16, data_bytes, 8);
  std::memcpy(&bytes[kFixedHeader], json.data(), json.size());

  char* data = &bytes[data_offset];
  uint64_t shape_index = 0, point_index = 0;
  for (const Dataset& ds : parts_by_split) {
    for (const Shape& s : ds.shapes) {
      const size_t record = data_offset + shapes_sec.offset + shape_index * kShapeRecord;
      put_le(bytes, record, point_index, 8);
      put_le(bytes, record + 8, static_cast<uint32_t>(s.num_points()), 4);
      put_le(bytes, record + 12, static_cast<uint32_t>(s.label), 4);
      encode_values(s.points, f16, data + points_sec.offset + point_index * 3 * value_bytes);
      if (has_normals) encode_values(s.normals, f16, data + normals_sec.offset + point_index * 3 * value_bytes);
      for (size_t i = 0; i < s.parts.size(); ++i)
        data[parts_sec.offset + point_index + i] = static_cast<char>(s.parts[i]);
      ++shape_index;
      point_index += static_cast<uint64_t>(s.num_points());
    }
  }
  if (v3) std::memcpy(data + paths_sec.offset, path_table.data(), path_table.size());
  put_le(bytes, kChecksumAt, pack_checksum(bytes.data(), bytes.size()), 8);
  write_file_atomic(out, bytes);
  summary.bytes = bytes.size();
  return summary;
}

}  // namespace pointnet
