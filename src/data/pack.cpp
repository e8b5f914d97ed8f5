#include "data/pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "core/errors.h"
#include "core/half.h"
#include "core/mapped_file.h"
#include "core/rng.h"
#include "data/batch.h"

namespace pointnet {
namespace {

constexpr char kMagic[8] = {'P', 'N', 'T', 'P', 'A', 'C', 'K', '\n'};
constexpr uint32_t kVersion = 2;        // 2 added the normals section; 1 is still read
constexpr uint32_t kOldestVersion = 1;
constexpr size_t kFixedHeader = 32;
constexpr size_t kAlign = 64;
constexpr size_t kShapeRecord = 16;  // u64 first point, u32 count, i32 label

// The checksum covers the whole file, with its own 8 bytes (24..32) read as zero.
uint64_t file_checksum(const unsigned char* p, size_t size) {
  const unsigned char zeros[8] = {};
  Checksum64 c;
  c.update(p, 24);
  c.update(zeros, sizeof zeros);
  c.update(p + kFixedHeader, size - kFixedHeader);
  return c.digest();
}

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void put_le(std::string& out, size_t at, uint64_t value, int bytes) {
  for (int k = 0; k < bytes; ++k) out[at + k] = static_cast<char>((value >> (8 * k)) & 0xff);
}

uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

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
void encode_values(const std::vector<float>& values, bool f16, char* dst) {
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

void decode_values(const unsigned char* src, size_t count, bool f16, std::vector<float>& out) {
  out.resize(count);
  if (f16) {
    for (size_t k = 0; k < count; ++k) out[k] = half_to_float(static_cast<uint16_t>(src[2 * k] | (src[2 * k + 1] << 8)));
  } else {
    std::memcpy(out.data(), src, count * 4);  // little-endian host (as the .npy reader assumes)
  }
}

struct Header {
  uint32_t version = 0;
  nlohmann::json json;
  size_t data_offset = 0;
  uint64_t data_bytes = 0;
};

// Checks the fixed header and parses the JSON; `verify` also checks the checksum.
Header parse_header(const MappedFile& file, bool verify) {
  const std::string& path = file.path();
  const unsigned char* p = file.data();
  if (file.size() < kFixedHeader || std::memcmp(p, kMagic, sizeof kMagic) != 0)
    fail(path, ": not a pointnet dataset pack (expected the magic \"PNTPACK\" at byte 0)");
  const uint32_t version = static_cast<uint32_t>(get_le(p + 8, 4));
  if (version < kOldestVersion || version > kVersion)
    fail(path, ": byte 8: pack format version ", version, ", but this build reads versions ", kOldestVersion, " to ",
         kVersion, " (re-create it with `pointnet pack`)");
  Header h;
  h.version = version;
  const uint64_t json_bytes = get_le(p + 12, 4);
  h.data_bytes = get_le(p + 16, 8);
  h.data_offset = align_up(kFixedHeader + json_bytes);
  if (h.data_offset > file.size() || h.data_bytes != file.size() - h.data_offset)
    fail(path, ": byte 12: the header says ", json_bytes, " header bytes and ", h.data_bytes, " data bytes, but the file has ",
         file.size(), " bytes: truncated or corrupted");
  if (verify) {
    const uint64_t stored = get_le(p + 24, 8);
    const uint64_t actual = file_checksum(p, file.size());
    if (stored != actual) fail(path, ": checksum mismatch: the pack is corrupted (re-create it with `pointnet pack`)");
  }
  try {
    h.json = nlohmann::json::parse(p + kFixedHeader, p + kFixedHeader + json_bytes);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": byte ", kFixedHeader + e.byte, ": invalid JSON header: ", e.what());
  }
  return h;
}

struct Section {
  uint64_t offset = 0, bytes = 0;
};

Section section(const Header& h, const std::string& path, const char* name, uint64_t expected_bytes) {
  Section s;
  try {
    s.offset = h.json.at("sections").at(name).at("offset");
    s.bytes = h.json.at("sections").at(name).at("bytes");
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": header: section '", name, "' missing or malformed (", e.what(), ")");
  }
  if (s.bytes != expected_bytes || s.offset % kAlign != 0 || s.offset > h.data_bytes || s.bytes > h.data_bytes - s.offset)
    fail(path, ": header: section '", name, "' at ", s.offset, " (", s.bytes, " bytes) does not fit the ",
         h.data_bytes, "-byte data section or its expected ", expected_bytes, " bytes");
  return s;
}

}  // namespace

bool is_pack_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char head[sizeof kMagic] = {};
  in.read(head, sizeof head);
  return in.gcount() == static_cast<std::streamsize>(sizeof head) && std::memcmp(head, kMagic, sizeof kMagic) == 0;
}

nlohmann::json pack_header(const std::string& path) {
  MappedFile file(path);
  return parse_header(file, false).json;
}

std::string pack_layout(const std::string& path) {
  const nlohmann::json header = pack_header(path);
  const auto it = header.find("layout");
  if (it == header.end() || !it->is_string()) fail(path, ": header: missing 'layout'");
  return it->get<std::string>();
}

PackSummary write_pack(const std::string& dir, const std::string& out, const PackOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("pack: --dtype must be f32 or f16, got '", options.dtype, "'");
  if (options.max_points < 0) fail("pack: --points must be positive");
  const std::string layout = dataset_layout(dir);
  if (is_pack_file(dir)) fail(dir, ": is already a pack");
  const bool shapenet = layout == "shapenet_part";
  const std::vector<std::string> splits = options.splits.empty() ? default_splits(layout) : options.splits;
  const bool f16 = options.dtype == "f16";

  std::vector<Dataset> parts_by_split;
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
    for (size_t i = 0; i < ds.shapes.size(); ++i) {
      Shape& s = ds.shapes[i];
      if (shapenet)  // store labels within the category; readers renumber as load_dataset does
        for (int32_t& p : s.parts) p -= ds.part_offset[s.label];
      Rng rng(mix_seed(options.seed, 0x9ACC + k, i));
      subsample(s, options.max_points, rng);
      for (const std::vector<float>* values : {&s.points, &s.normals})
        for (float v : *values) {
          if (!std::isfinite(v) || (f16 && std::fabs(v) > 65504.0f))
            fail(s.path, ": value ", v, " cannot be stored", f16 ? " as f16 (use --dtype f32)" : "");
        }
      for (int32_t p : s.parts)
        if (p < 0 || p > 255) fail(s.path, ": part label ", p, " is outside 0..255");
      std::string rel = s.path.rfind(dir, 0) == 0 ? s.path.substr(dir.size()) : s.path;
      while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
      paths.push_back(rel);
      points_total += static_cast<uint64_t>(s.num_points());
    }
    if (k > 0 && ds.class_names != parts_by_split[0].class_names)
      fail(dir, ": split '", splits[k], "' has other classes than split '", splits[0], "'");
    split_json[splits[k]] = {{"first", shapes_total}, {"count", ds.shapes.size()}, {"paths", paths}};
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

  const size_t value_bytes = f16 ? 2 : 4;
  Section shapes_sec{0, shapes_total * kShapeRecord};
  Section points_sec{align_up(shapes_sec.bytes), points_total * 3 * value_bytes};
  Section parts_sec{align_up(points_sec.offset + points_sec.bytes), shapenet ? points_total : 0};
  Section normals_sec{align_up(parts_sec.offset + parts_sec.bytes), has_normals ? points_sec.bytes : 0};
  const uint64_t data_bytes = normals_sec.offset + normals_sec.bytes;

  nlohmann::json header = {
      {"format", "pointnet-pack"}, {"version", kVersion}, {"layout", layout}, {"up_axis", first.up_axis},
      {"class_names", first.class_names}, {"dtype", options.dtype}, {"has_parts", shapenet},
      {"has_normals", has_normals}, {"source", dir}, {"source_format", combined_format(formats)}, {"max_points", options.max_points}, {"seed", options.seed}, {"mesh_points", options.mesh_points},
      {"splits", split_json},
      {"sections", {{"shapes", {{"offset", shapes_sec.offset}, {"bytes", shapes_sec.bytes}}},
                    {"points", {{"offset", points_sec.offset}, {"bytes", points_sec.bytes}}},
                    {"parts", {{"offset", parts_sec.offset}, {"bytes", parts_sec.bytes}}},
                    {"normals", {{"offset", normals_sec.offset}, {"bytes", normals_sec.bytes}}}}}};
  const std::string json = header.dump();
  if (json.size() > 0xffffffffu) fail("pack: header too large");
  const size_t data_offset = align_up(kFixedHeader + json.size());
  std::string bytes(data_offset + data_bytes, '\0');
  std::memcpy(&bytes[0], kMagic, sizeof kMagic);
  put_le(bytes, 8, kVersion, 4);
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
  put_le(bytes, 24, file_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), 8);
  write_file_atomic(out, bytes);
  summary.bytes = bytes.size();
  return summary;
}

Dataset read_pack(const std::string& path, const LoadOptions& opt) {
  MappedFile file(path);
  const Header h = parse_header(file, true);
  const nlohmann::json& j = h.json;
  Dataset ds;
  std::string dtype;
  bool has_parts = false, has_normals = false;
  uint64_t shapes_total = 0, points_total = 0;
  std::vector<std::string> wanted;
  try {
    ds.layout = j.at("layout").get<std::string>();
    const int64_t up = j.at("up_axis").get<int64_t>();
    if (up != 1 && up != 2) fail(path, ": header: up_axis ", up, " is not 1 (y) or 2 (z)");
    ds.up_axis = static_cast<int>(up);
    ds.class_names = j.at("class_names").get<std::vector<std::string>>();
    dtype = j.at("dtype").get<std::string>();
    has_parts = j.at("has_parts").get<bool>();
    if (h.version >= 2) has_normals = j.at("has_normals").get<bool>();
    for (const auto& [name, split] : j.at("splits").items()) {
      // Bounded before any arithmetic: no count from the file is trusted.
      if (split.at("first").get<uint64_t>() > h.data_bytes || split.at("count").get<uint64_t>() > h.data_bytes)
        fail(path, ": header: split '", name, "' claims more shapes than the file can hold");
      shapes_total = std::max<uint64_t>(shapes_total, split.at("first").get<uint64_t>() + split.at("count").get<uint64_t>());
      const nlohmann::json& paths = split.at("paths");
      if (!paths.is_array() || paths.size() != split.at("count").get<uint64_t>())
        fail(path, ": header: split '", name, "': 'paths' must be an array of one string per shape (", split.at("count"),
             " shapes)");
      for (const nlohmann::json& entry : paths)
        if (!entry.is_string()) fail(path, ": header: split '", name, "': 'paths' holds a non-string entry");
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": header: missing or malformed field (", e.what(), ")");
  }
  if (ds.layout != "modelnet" && ds.layout != "shapenet_part") fail(path, ": header: unknown layout '", ds.layout, "'");
  if (dtype != "f32" && dtype != "f16") fail(path, ": header: unknown dtype '", dtype, "'");
  if (ds.class_names.empty()) fail(path, ": header: no class names");
  ds.root = path;
  ds.format = "pack";
  ds.has_normals = has_normals;

  // Which splits make up the requested one (as the folder loaders define them).
  const bool shapenet = ds.layout == "shapenet_part";
  if (shapenet) {
    if (opt.split == "trainval") wanted = {"train", "val"};
    else if (opt.split == "train" || opt.split == "val" || opt.split == "test") wanted = {opt.split};
    else fail(path, ": unknown split '", opt.split, "': expected train, val, test or trainval");
  } else {
    if (opt.split != "train" && opt.split != "test")
      fail(path, ": unknown split '", opt.split, "' for a ModelNet-style pack: expected 'train' or 'test'");
    if (opt.with_parts) fail(path, ": part labels requested, but a ModelNet-style pack has none (expected ShapeNet part)");
    if (!opt.class_choice.empty())
      fail(path, ": --class-choice '", opt.class_choice, "' selects a ShapeNet part category, but this is a ModelNet-style pack");
    wanted = {opt.split};
  }
  int chosen = -1;
  if (!opt.class_choice.empty()) {
    auto it = std::find(ds.class_names.begin(), ds.class_names.end(), opt.class_choice);
    if (it == ds.class_names.end()) fail(path, ": unknown class choice '", opt.class_choice, "'");
    chosen = static_cast<int>(it - ds.class_names.begin());
  }
  if (opt.with_parts && !has_parts) fail(path, ": part labels requested, but this pack has none");

  // Section sizes follow from the shape table; every record is checked before use.
  const size_t value_bytes = dtype == "f16" ? 2 : 4;
  const Section shapes_sec = section(h, path, "shapes", shapes_total * kShapeRecord);
  const unsigned char* data = file.data() + h.data_offset;
  for (uint64_t i = 0; i < shapes_total; ++i) {
    const unsigned char* r = data + shapes_sec.offset + i * kShapeRecord;
    // The writer lays shapes out back to back: anything else (overlaps, gaps)
    // is refused, so the points read are bounded by the file's size.
    if (get_le(r, 8) != points_total)
      fail(path, ": byte ", h.data_offset + shapes_sec.offset + i * kShapeRecord, ": shape ", i,
           " starts at point ", get_le(r, 8), ", expected ", points_total, " (shapes must be contiguous)");
    points_total += get_le(r + 8, 4);
    if (points_total > h.data_bytes) fail(path, ": the shape table claims more points than the file holds");
  }
  const Section points_sec = section(h, path, "points", points_total * 3 * value_bytes);
  const Section parts_sec = section(h, path, "parts", has_parts ? points_total : 0);
  const Section normals_sec = h.version >= 2 ? section(h, path, "normals", has_normals ? points_sec.bytes : 0) : Section{};

  for (const std::string& name : wanted) {
    if (!j["splits"].contains(name))
      fail(path, ": the pack has no '", name, "' split (re-pack with --splits including it",
           name == "test" ? ", or train with --test-data DIR|PACK|none" : "", ")");
    const nlohmann::json& split = j["splits"][name];
    const uint64_t first = split["first"], count = split["count"];
    for (uint64_t i = first; i < first + count; ++i) {
      const unsigned char* r = data + shapes_sec.offset + i * kShapeRecord;
      const int64_t label = static_cast<int32_t>(get_le(r + 12, 4));
      if (label < 0 || label >= static_cast<int64_t>(ds.class_names.size()))
        fail(path, ": shape ", i, ": label ", label, " is outside 0..", ds.class_names.size() - 1);
      if (chosen >= 0 && label != chosen) continue;
      const uint64_t point0 = get_le(r, 8), n = get_le(r + 8, 4);
      if (n == 0) fail(path, ": shape ", i, ": no points");
      Shape s;
      s.path = path + ":" + split["paths"][i - first].get<std::string>();
      s.label = chosen >= 0 ? 0 : static_cast<int>(label);
      decode_values(data + points_sec.offset + point0 * 3 * value_bytes, n * 3, value_bytes == 2, s.points);
      if (has_normals) decode_values(data + normals_sec.offset + point0 * 3 * value_bytes, n * 3, value_bytes == 2, s.normals);
      for (const std::vector<float>* values : {&s.points, &s.normals})
        for (float v : *values)
          if (!std::isfinite(v)) fail(path, ": shape ", i, " (", s.path, "): non-finite coordinate or normal");
      if (opt.with_parts) {
        s.parts.resize(n);
        for (size_t k = 0; k < n; ++k) s.parts[k] = data[parts_sec.offset + point0 + k];
      }
      ds.shapes.push_back(std::move(s));
    }
  }
  if (chosen >= 0) ds.class_names = {opt.class_choice};
  if (ds.shapes.empty()) fail(path, ": no shapes in split '", opt.split, "'");
  // trainval: the folder loader groups by category, train before val within each.
  if (wanted.size() > 1)
    std::stable_sort(ds.shapes.begin(), ds.shapes.end(), [](const Shape& a, const Shape& b) { return a.label < b.label; });
  if (opt.with_parts) number_parts(ds);
  return ds;
}

}  // namespace pointnet
