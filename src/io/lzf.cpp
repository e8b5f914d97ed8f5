// LZF codec. The compressor is a greedy single-probe hash matcher like
// liblzf's (not byte-identical to it, which the format does not require).
#include "io/lzf.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/errors.h"

namespace pointnet {
namespace {

constexpr size_t kMaxLiteral = 32;            // 5 bits of ctrl, run length - 1
constexpr size_t kMaxOffset = size_t{1} << 13;  // 13 bits of distance - 1
constexpr size_t kMaxMatch = 264;             // 2 + 7 + 255
constexpr int kHashBits = 14;

uint32_t hash3(const unsigned char* p) {
  uint32_t v = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
  return (v * 2654435761u) >> (32 - kHashBits);
}

}  // namespace

std::string lzf_compress(const unsigned char* in, size_t n) {
  std::string out;
  out.reserve(n + n / kMaxLiteral + 1);
  std::vector<size_t> last(size_t{1} << kHashBits, SIZE_MAX);  // last position of each 3-byte hash
  size_t literal_start = 0;
  auto flush_literals = [&](size_t end) {
    while (literal_start < end) {
      const size_t run = std::min(kMaxLiteral, end - literal_start);
      out.push_back(static_cast<char>(run - 1));
      out.append(reinterpret_cast<const char*>(in + literal_start), run);
      literal_start += run;
    }
  };
  size_t i = 0;
  while (i + 2 < n) {
    const uint32_t h = hash3(in + i);
    const size_t ref = last[h];
    last[h] = i;
    if (ref != SIZE_MAX && i - ref <= kMaxOffset && in[ref] == in[i] && in[ref + 1] == in[i + 1] &&
        in[ref + 2] == in[i + 2]) {
      const size_t max_len = std::min(kMaxMatch, n - i);
      size_t len = 3;
      while (len < max_len && in[ref + len] == in[i + len]) ++len;
      flush_literals(i);
      const size_t distance = i - ref - 1, code = len - 2;
      if (code < 7) {
        out.push_back(static_cast<char>((code << 5) | (distance >> 8)));
      } else {
        out.push_back(static_cast<char>((7 << 5) | (distance >> 8)));
        out.push_back(static_cast<char>(code - 7));
      }
      out.push_back(static_cast<char>(distance & 0xff));
      // Index the positions inside the match too, so the next repeats find it.
      for (size_t k = i + 1; k < i + len && k + 2 < n; ++k) last[hash3(in + k)] = k;
      i += len;
      literal_start = i;
    } else {
      ++i;
    }
  }
  flush_literals(n);
  return out;
}

void lzf_decompress(const unsigned char* in, size_t n, unsigned char* out, size_t out_size,
                    const std::string& name, size_t base) {
  size_t ip = 0, op = 0;
  while (ip < n) {
    const size_t token_at = ip;
    const unsigned ctrl = in[ip++];
    if (ctrl < 32) {
      const size_t run = ctrl + 1;
      if (run > n - ip)
        fail(name, ": byte ", base + token_at, ": corrupt LZF data: literal run of ", run,
             " bytes but only ", n - ip, " left in the compressed data");
      if (run > out_size - op)
        fail(name, ": byte ", base + token_at, ": corrupt LZF data: output exceeds the declared ",
             out_size, " bytes");
      std::copy(in + ip, in + ip + run, out + op);
      ip += run;
      op += run;
      continue;
    }
    size_t len = ctrl >> 5;
    if (len == 7) {
      if (ip >= n) fail(name, ": byte ", base + token_at, ": corrupt LZF data: truncated back reference");
      len += in[ip++];
    }
    len += 2;
    if (ip >= n) fail(name, ": byte ", base + token_at, ": corrupt LZF data: truncated back reference");
    const size_t distance = ((size_t{ctrl} & 31) << 8) + in[ip++] + 1;
    if (distance > op)
      fail(name, ": byte ", base + token_at, ": corrupt LZF data: back reference ", distance,
           " bytes before the start of the output (", op, " bytes written)");
    if (len > out_size - op)
      fail(name, ": byte ", base + token_at, ": corrupt LZF data: output exceeds the declared ",
           out_size, " bytes");
    // Byte by byte: a reference may overlap the bytes it is producing.
    for (size_t k = 0; k < len; ++k, ++op) out[op] = out[op - distance];
  }
  if (op != out_size)
    fail(name, ": byte ", base + n, ": LZF data decodes to ", op, " bytes: expected ", out_size);
}

}  // namespace pointnet
