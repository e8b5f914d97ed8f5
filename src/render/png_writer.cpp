#include "render/png_writer.h"

#include <png.h>

#include <cstring>

#include "core/atomic_file.h"
#include "core/errors.h"

namespace pointnet::render {

std::string encode_png(const Image& image) {
  // libpng's simplified API reports errors through its return value and
  // image.message, so no setjmp/longjmp crosses C++ frames.
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width());
  png.height = static_cast<png_uint_32>(image.height());
  png.format = PNG_FORMAT_RGB;
  const png_int_32 stride = image.width() * 3;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.data(), stride, nullptr))
    fail("PNG encoder (libpng): ", png.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, image.data(), stride, nullptr))
    fail("PNG encoder (libpng): ", png.message);
  bytes.resize(size);
  png_image_free(&png);
  return bytes;
}

void write_png(const std::string& path, const Image& image) { write_file_atomic(path, encode_png(image)); }

}  // namespace pointnet::render
