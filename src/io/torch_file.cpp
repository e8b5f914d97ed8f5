#include "io/torch_file.h"

#include <cstring>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/half.h"
#include "io/zip_archive.h"

namespace pointnet {

namespace {

using Kind = PickleValue::Kind;

// pickle of the int 0x1950a86a20f9469cfc6c, protocol 2: PROTO 2, LONG1 10 bytes.
constexpr char kLegacyMagic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr size_t kLegacyMagicSize = sizeof(kLegacyMagic) - 1;
constexpr int64_t kLegacyProtocol = 1001;

int element_size(const std::string& type, const std::string& where) {
  if (type == "FloatStorage" || type == "IntStorage") return 4;
  if (type == "DoubleStorage" || type == "LongStorage") return 8;
  if (type == "HalfStorage" || type == "BFloat16Storage") return 2;
  fail(where, ": storage type '", type, "' is not supported");
}

// Every storage a tensor in the tree refers to, keyed by storage key, in the
// order met. Iterative: the tree may be deep.
std::map<std::string, std::string> storage_types(const PickleValue& root) {
  std::map<std::string, std::string> out;
  std::vector<const PickleValue*> todo = {&root};
  while (!todo.empty()) {
    const PickleValue* v = todo.back();
    todo.pop_back();
    if (v->kind == Kind::Tensor) out.emplace(v->tensor.storage.key, v->tensor.storage.type);
    for (const PickleRef& c : v->items) todo.push_back(c.get());
    for (const auto& [k, x] : v->dict) {
      todo.push_back(k.get());
      todo.push_back(x.get());
    }
  }
  return out;
}

void parse_zip(TorchFile& file) {
  const ZipArchive zip(file.bytes, file.path);
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl) fail(file.path, ": the archive holds two pickles ('", pkl->name, "', '", e.name, "')");
      pkl = &e;
    }
  }
  if (!pkl)
    fail(file.path, ": a zip archive without '<name>/data.pkl': not a torch.save file (",
         zip.entries().size(), " entries", zip.entries().empty() ? "" : ", e.g. '" + zip.entries()[0].name + "'",
         ")");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<name>/"
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const std::string_view s = zip.read(*order);
    if (s != "little")
      fail(file.path, ": tensors were saved in byte order '", std::string(s), "'; only little-endian is supported");
  }
  const std::string data_dir = prefix + "data/";
  for (const ZipEntry& e : zip.entries()) {
    if (e.name.compare(0, data_dir.size(), data_dir) != 0) continue;
    zip.read(e);  // checks the CRC
    file.storages[e.name.substr(data_dir.size())] = {e.data_offset, e.size};
  }
  const std::string_view pickle = zip.read(*pkl);
  const Unpickled u = unpickle(pickle, file.path + " (" + pkl->name + ", byte offsets within it)");
  file.root = u.value;
}

void parse_legacy(TorchFile& file) {
  const std::string_view b = file.bytes;
  const std::string& where = file.path;
  Unpickled magic = unpickle(b, where, 0);
  Unpickled protocol = unpickle(b, where, magic.end);
  if (protocol.value->kind != Kind::Int || protocol.value->integer != kLegacyProtocol)
    fail(where, ": byte ", magic.end, ": legacy torch.save protocol is not ", kLegacyProtocol);
  Unpickled sys_info = unpickle(b, where, protocol.end);
  const PickleValue* little = sys_info.value->get("little_endian");
  if (!little || little->kind != Kind::Bool || !little->boolean)
    fail(where, ": byte ", protocol.end, ": the file was saved on a big-endian machine (or sys_info is malformed)");
  Unpickled object = unpickle(b, where, sys_info.end);
  Unpickled keys = unpickle(b, where, object.end);
  if (keys.value->kind != Kind::List)
    fail(where, ": byte ", object.end, ": the storage key list is a ", kind_name(keys.value->kind));
  const std::map<std::string, std::string> types = storage_types(*object.value);
  size_t pos = keys.end;
  for (const PickleRef& key : keys.value->items) {
    if (key->kind != Kind::String) fail(where, ": byte ", object.end, ": a storage key is a ", kind_name(key->kind));
    auto type = types.find(key->text);
    if (type == types.end())
      fail(where, ": storage '", key->text, "' is listed but no tensor uses it, so its element type is unknown");
    const uint64_t elsize = element_size(type->second, where);
    if (b.size() - pos < 8)
      fail(where, ": byte ", pos, ": the size of storage '", key->text, "' is missing: truncated file");
    int64_t count = 0;
    std::memcpy(&count, b.data() + pos, 8);
    if (count < 0 || static_cast<uint64_t>(count) > (b.size() - pos - 8) / elsize)
      fail(where, ": byte ", pos, ": storage '", key->text, "' claims ", count, " elements of ", elsize,
           " bytes but only ", b.size() - pos - 8, " bytes remain: truncated file");
    file.storages[key->text] = {pos + 8, static_cast<size_t>(count) * elsize};
    pos += 8 + count * elsize;
  }
  file.root = object.value;
  file.legacy = true;
}

}  // namespace

bool looks_like_torch_file(std::string_view bytes) {
  return looks_like_zip(bytes) || bytes.substr(0, kLegacyMagicSize) == std::string_view(kLegacyMagic, kLegacyMagicSize);
}

TorchFile read_torch_file(const std::string& path) { return parse_torch_file(read_file(path), path); }

TorchFile parse_torch_file(std::string bytes, const std::string& path) {
  TorchFile file;
  file.path = path;
  file.bytes = std::move(bytes);
  if (looks_like_zip(file.bytes)) {
    parse_zip(file);
  } else if (looks_like_torch_file(file.bytes)) {
    parse_legacy(file);
  } else {
    fail(path, ": byte 0: not a torch.save file (expected a zip archive, 'PK\\x03\\x04', or the legacy "
               "format's pickled magic number)");
  }
  return file;
}

std::string materialized_dtype(const PickledStorage& storage) {
  return storage.type == "LongStorage" || storage.type == "IntStorage" ? "I64" : "F32";
}

TensorData materialize(const TorchFile& file, const PickledTensor& t, const std::string& name) {
  const std::string where = file.path + ": tensor '" + name + "'";
  auto span = file.storages.find(t.storage.key);
  if (span == file.storages.end()) fail(where, ": its storage '", t.storage.key, "' is not in the file");
  const int elsize = element_size(t.storage.type, where);
  const int64_t stored = static_cast<int64_t>(span->second.size / elsize);
  // The elements this storage (or legacy view) may use: [begin, end).
  const int64_t begin = t.storage.view_offset;
  if (t.storage.numel > stored || begin > stored - t.storage.numel)
    fail(where, ": storage '", t.storage.key, "' should hold ", begin, " + ", t.storage.numel, " elements but has ",
         stored, ": truncated or corrupt file");
  const int64_t end = begin + t.storage.numel;
  // Highest element any index reaches, with overflow checks: sizes, strides and
  // offsets come from the file.
  int64_t numel = 1, last = 0;
  constexpr int64_t kMaxElements = int64_t{1} << 26;  // 256 MB as float; PointNet's largest is 1M
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    const int64_t size = t.sizes[d], stride = t.strides[d];
    if (size < 0 || stride < 0) fail(where, ": negative size or stride in dimension ", d);
    if (size == 0) numel = 0;
    if (numel && (__builtin_mul_overflow(numel, size, &numel) || numel > kMaxElements))
      fail(where, ": more than ", kMaxElements, " elements");
    int64_t reach = 0;
    if (size > 0 && (__builtin_mul_overflow(size - 1, stride, &reach) || __builtin_add_overflow(last, reach, &last)))
      fail(where, ": size and stride in dimension ", d, " overflow");
  }
  int64_t first = 0;
  if (t.offset < 0 || __builtin_add_overflow(begin, t.offset, &first) || __builtin_add_overflow(first, last, &last))
    fail(where, ": bad storage offset ", t.offset);
  if (numel > 0 && last >= end)
    fail(where, ": offset ", t.offset, ", sizes and strides reach element ", last - begin, " of storage '",
         t.storage.key, "', which has ", end - begin, ": corrupt file");

  TensorData out;
  out.shape = t.sizes;
  out.dtype = materialized_dtype(t.storage);
  const bool integer = out.dtype == "I64";
  out.bytes.resize(static_cast<size_t>(numel) * (integer ? 8 : 4));
  const unsigned char* src = reinterpret_cast<const unsigned char*>(file.bytes.data()) + span->second.offset;
  std::vector<int64_t> index(t.sizes.size(), 0);
  int64_t at = first;  // element offset of the current index
  for (int64_t i = 0; i < numel; ++i) {
    const unsigned char* p = src + static_cast<size_t>(at) * elsize;
    if (integer) {
      int64_t v;
      if (elsize == 8) {
        std::memcpy(&v, p, 8);
      } else {
        int32_t v32;
        std::memcpy(&v32, p, 4);
        v = v32;
      }
      std::memcpy(out.bytes.data() + i * 8, &v, 8);
    } else {
      float v;
      if (t.storage.type == "FloatStorage") {
        std::memcpy(&v, p, 4);
      } else if (t.storage.type == "DoubleStorage") {
        double d;
        std::memcpy(&d, p, 8);
        v = static_cast<float>(d);
      } else {
        uint16_t h;
        std::memcpy(&h, p, 2);
        v = t.storage.type == "HalfStorage" ? half_to_float(h) : bfloat16_to_float(h);
      }
      std::memcpy(out.bytes.data() + i * 4, &v, 4);
    }
    // Next index in C order.
    for (size_t d = index.size(); d-- > 0;) {
      at += t.strides[d];
      if (++index[d] < t.sizes[d]) break;
      at -= t.strides[d] * t.sizes[d];
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace pointnet
