// Reading a pack: one split as a Dataset. An f32 pack's shapes view the memory
// mapping (zero copy), which each view keeps alive; the whole file is verified
// first in one pass (data/pack_verify.h), unless an earlier load verified it
// unchanged (data/pack_stamp.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/errors.h"
#include "core/half.h"
#include "core/mapped_file.h"
#include "data/pack.h"
#include "data/pack_cache.h"
#include "data/pack_format.h"
#include "data/pack_paths.h"
#include "data/pack_stamp.h"
#include "data/pack_verify.h"

namespace pointnet {
namespace {

using namespace pack;

// What the header and shape table say, each part checked against the file.
struct Layout {
  Header h;
  std::string dtype;
  bool has_parts = false, has_normals = false;
  uint64_t shapes_total = 0, points_total = 0;
  Section shapes, points, parts, normals;
  PathTable paths;
  const unsigned char* data = nullptr;  // the data section

  size_t value_bytes() const { return dtype == "f16" ? 2 : 4; }
  const unsigned char* record(uint64_t shape) const { return data + shapes.offset + shape * kShapeRecord; }
  uint64_t first_point(uint64_t shape) const { return get_le(record(shape), 8); }
};

// Header fields into `ds` and `L`; every split bounded before any arithmetic.
void parse_fields(const std::string& path, Layout& L, Dataset& ds) {
  const nlohmann::json& j = L.h.json;
  try {
    ds.layout = j.at("layout").get<std::string>();
    const int64_t up = j.at("up_axis").get<int64_t>();
    if (up != 1 && up != 2) fail(path, ": header: up_axis ", up, " is not 1 (y) or 2 (z)");
    ds.up_axis = static_cast<int>(up);
    ds.class_names = j.at("class_names").get<std::vector<std::string>>();
    L.dtype = j.at("dtype").get<std::string>();
    L.has_parts = j.at("has_parts").get<bool>();
    if (L.h.version >= 2) L.has_normals = j.at("has_normals").get<bool>();
    for (const auto& [name, split] : j.at("splits").items()) {
      // No count from the file is trusted: each is bounded by the file's size.
      const uint64_t first = split.at("first").get<uint64_t>(), count = split.at("count").get<uint64_t>();
      if (first > L.h.data_bytes || count > L.h.data_bytes)
        fail(path, ": header: split '", name, "' claims more shapes than the file can hold");
      L.shapes_total = std::max(L.shapes_total, first + count);
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": header: missing or malformed field (", e.what(), ")");
  }
  if (ds.layout != "modelnet" && ds.layout != "shapenet_part") fail(path, ": header: unknown layout '", ds.layout, "'");
  if (L.dtype != "f32" && L.dtype != "f16") fail(path, ": header: unknown dtype '", L.dtype, "'");
  if (ds.class_names.empty()) fail(path, ": header: no class names");
}

// Sections and the shape table. The writer lays shapes out back to back:
// anything else (overlaps, gaps) is refused, so every point read is in the file.
void parse_sections(const MappedFile& file, Layout& L) {
  const std::string& path = file.path();
  L.data = file.data() + L.h.data_offset;
  L.shapes = section(L.h, path, "shapes", L.shapes_total * kShapeRecord);
  for (uint64_t i = 0; i < L.shapes_total; ++i) {
    if (L.first_point(i) != L.points_total)
      fail(path, ": byte ", L.h.data_offset + L.shapes.offset + i * kShapeRecord, ": shape ", i, " starts at point ",
           L.first_point(i), ", expected ", L.points_total, " (shapes must be contiguous)");
    L.points_total += get_le(L.record(i) + 8, 4);
    if (L.points_total > L.h.data_bytes) fail(path, ": the shape table claims more points than the file holds");
  }
  L.points = section(L.h, path, "points", L.points_total * 3 * L.value_bytes());
  L.parts = section(L.h, path, "parts", L.has_parts ? L.points_total : 0);
  if (L.h.version >= 2) L.normals = section(L.h, path, "normals", L.has_normals ? L.points.bytes : 0);
  if (L.h.version >= 3) {
    const Section s = section(L.h, path, "paths", 4 * L.shapes_total, true);
    L.paths = PathTable::from_section(L.data + s.offset, s.bytes, L.shapes_total, path);
  } else {
    L.paths = PathTable::from_json(L.h.json.at("splits"), L.shapes_total, path);
  }
}

// The header, sections and shape table; a file that fails here and also fails
// its checksum is reported as corrupted (the likelier cause), not by the symptom.
Layout parse_layout(const MappedFile& file, Dataset& ds) {
  Layout L;
  L.h = parse_fixed_header(file);
  try {
    parse_json(file, L.h);
    parse_fields(file.path(), L, ds);
    parse_sections(file, L);
  } catch (const Error&) {
    if (file_checksum(file.data(), file.size(), L.h.version) != stored_checksum(file))
      fail(file.path(), ": checksum mismatch: the pack is corrupted (re-create it with `pointnet pack`)");
    throw;
  }
  return L;
}

// The checksum, and that every f32 value is finite, in one pass; an error names the shape.
void verify_file(const MappedFile& file, const Layout& L) {
  std::vector<ByteRange> f32;
  if (L.dtype == "f32")
    for (const Section& s : {L.points, L.normals})
      f32.push_back({L.h.data_offset + s.offset, L.h.data_offset + s.offset + s.bytes});
  const Verdict v = verify(file.data(), file.size(), L.h.version, f32);
  if (!v.checksum_ok) fail(file.path(), ": checksum mismatch: the pack is corrupted (re-create it with `pointnet pack`)");
  if (v.first_nonfinite == Verdict{}.first_nonfinite) return;
  const uint64_t in_data = v.first_nonfinite - L.h.data_offset;
  const bool normal = in_data >= L.normals.offset && L.normals.bytes > 0;
  const uint64_t point = (in_data - (normal ? L.normals.offset : L.points.offset)) / 12;
  uint64_t lo = 0, hi = L.shapes_total;  // the last shape starting at or before `point`
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    (L.first_point(mid) <= point ? lo : hi) = mid;
  }
  fail(file.path(), ": byte ", v.first_nonfinite, ": shape ", lo, " (", L.paths(lo), "): non-finite ",
       normal ? "normal" : "coordinate", " at point ", point - L.first_point(lo));
}

// The packed splits that make up `opt.split`, as the folder loaders define them.
std::vector<std::string> wanted_splits(const std::string& path, const Dataset& ds, const LoadOptions& opt) {
  if (ds.layout == "shapenet_part") {
    if (opt.split == "trainval") return {"train", "val"};
    if (opt.split == "train" || opt.split == "val" || opt.split == "test") return {opt.split};
    fail(path, ": unknown split '", opt.split, "': expected train, val, test or trainval");
  }
  if (opt.split != "train" && opt.split != "test")
    fail(path, ": unknown split '", opt.split, "' for a ModelNet-style pack: expected 'train' or 'test'");
  if (opt.with_parts) fail(path, ": part labels requested, but a ModelNet-style pack has none (expected ShapeNet part)");
  if (!opt.class_choice.empty())
    fail(path, ": --class-choice '", opt.class_choice, "' selects a ShapeNet part category, but this is a ModelNet-style pack");
  return {opt.split};
}

// `count` f32 or f16 values at `src` as Floats: a view of the mapping for f32 (zero copy),
// converted for f16 (then checked here, as the verifier scans only f32).
Floats values_at(const unsigned char* src, size_t count, bool f16, const std::shared_ptr<const MappedFile>& file,
                 uint64_t shape) {
  if (!f16) return Floats::view(reinterpret_cast<const float*>(src), count, file);  // little-endian host
  std::vector<float> out(count);
  for (size_t k = 0; k < count; ++k) {
    out[k] = half_to_float(static_cast<uint16_t>(src[2 * k] | (src[2 * k + 1] << 8)));
    if (!std::isfinite(out[k])) fail(file->path(), ": shape ", shape, ": non-finite coordinate or normal");
  }
  return Floats(std::move(out));
}

// "<pack>:<path in the packed folder>" for each shape, from the path table,
// which lives as long as a shape names it.
class PackNames : public ShapeNames {
 public:
  PackNames(std::shared_ptr<const MappedFile> file, PathTable table) : file_(std::move(file)), table_(std::move(table)) {}
  std::string name(size_t shape) const override {
    const std::string_view name = table_(shape);
    return file_->path() + ":" + std::string(name);
  }

 private:
  std::shared_ptr<const MappedFile> file_;
  PathTable table_;
};

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
  Header h = parse_fixed_header(file);
  parse_json(file, h);
  return h.json;
}

std::string pack_layout(const std::string& path) {
  const nlohmann::json header = pack_header(path);
  const auto it = header.find("layout");
  if (it == header.end() || !it->is_string()) fail(path, ": header: missing 'layout'");
  return it->get<std::string>();
}

Dataset read_pack(const std::string& path, const LoadOptions& opt) {
  std::shared_ptr<const MappedFile> file = verified_mapping(path);  // another split of a pack read before
  const bool fresh = !file;
  const int64_t stat_time = wall_clock_ns();  // before the file's stat data is read (pack_stamp.h)
  // Populated: every byte is read, by the verification or soon by training.
  if (fresh) file = std::make_shared<const MappedFile>(path, true);
  Dataset ds;
  Layout L = parse_layout(*file, ds);  // (the fixed header, so the stored checksum, is in the file)
  if (fresh) {
    if (!stamp_says_verified(*file, stored_checksum(*file))) {  // an unchanged pack verified before is trusted
      verify_file(*file, L);
      write_stamp(*file, stored_checksum(*file), stat_time);
    }
    remember_verified(file);
  }
  const auto names = std::make_shared<const PackNames>(file, std::move(L.paths));
  ds.root = path;
  ds.format = "pack";
  ds.has_normals = L.has_normals;
  const std::vector<std::string> wanted = wanted_splits(path, ds, opt);
  int chosen = -1;
  if (!opt.class_choice.empty()) {
    auto it = std::find(ds.class_names.begin(), ds.class_names.end(), opt.class_choice);
    if (it == ds.class_names.end()) fail(path, ": unknown class choice '", opt.class_choice, "'");
    chosen = static_cast<int>(it - ds.class_names.begin());
  }
  if (opt.with_parts && !L.has_parts) fail(path, ": part labels requested, but this pack has none");

  const nlohmann::json& splits = L.h.json["splits"];
  const bool f16 = L.dtype == "f16";
  const size_t vb = L.value_bytes();
  for (const std::string& name : wanted) {
    if (!splits.contains(name))
      fail(path, ": the pack has no '", name, "' split (re-pack with --splits including it",
           name == "test" ? ", or train with --test-data DIR|PACK|none" : "", ")");
    const uint64_t first = splits[name]["first"], count = splits[name]["count"];
    ds.shapes.reserve(ds.shapes.size() + count);
    for (uint64_t i = first; i < first + count; ++i) {
      const int64_t label = static_cast<int32_t>(get_le(L.record(i) + 12, 4));
      if (label < 0 || label >= static_cast<int64_t>(ds.class_names.size()))
        fail(path, ": shape ", i, ": label ", label, " is outside 0..", ds.class_names.size() - 1);
      if (chosen >= 0 && label != chosen) continue;
      const uint64_t point0 = L.first_point(i), n = get_le(L.record(i) + 8, 4);
      if (n == 0) fail(path, ": shape ", i, ": no points");
      Shape s;
      s.path = ShapePath(names, i);  // "<pack>:<path in the packed folder>" when asked
      s.label = chosen >= 0 ? 0 : static_cast<int>(label);
      s.points = values_at(L.data + L.points.offset + point0 * 3 * vb, n * 3, f16, file, i);
      if (L.has_normals) s.normals = values_at(L.data + L.normals.offset + point0 * 3 * vb, n * 3, f16, file, i);
      if (opt.with_parts) s.parts.assign(L.data + L.parts.offset + point0, L.data + L.parts.offset + point0 + n);
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
