// LZF compression (Marc Lehmann's liblzf format), as used by PCL's
// DATA binary_compressed. Our own implementation because liblzf is not on
// every machine we build on. Format, per token (the first byte is `ctrl`):
//   ctrl < 32:  a literal run of ctrl + 1 bytes follows;
//   otherwise:  a back reference: length L = ctrl >> 5 (7 means "7 + next
//               byte"), copy L + 2 bytes starting
//               ((ctrl & 31) << 8 | next byte) + 1 bytes back in the output.
#pragma once
#include <cstddef>
#include <string>

namespace pointnet {

// Compresses `n` bytes; any liblzf lzf_decompress() decodes the result.
// Empty input gives empty output. Incompressible input grows by ~1/32.
std::string lzf_compress(const unsigned char* data, size_t n);

// Decodes `n` bytes of LZF into exactly `out_size` bytes at `out`. Every read
// and write is bounds-checked: corrupt or truncated input, or output of any
// other size, throws pointnet::Error naming `name` and the byte offset
// (`base_offset` + offset in the compressed stream).
void lzf_decompress(const unsigned char* data, size_t n, unsigned char* out, size_t out_size,
                    const std::string& name, size_t base_offset = 0);

}  // namespace pointnet
