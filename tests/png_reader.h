// Reads a PNG back with libpng (the simplified API) as 8-bit RGB, for the
// render tests: an independent check of what the writer produced.
#pragma once
#include <png.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pointnet::testing {

struct DecodedPng {
  bool ok = false;
  std::string message;
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)
  const uint8_t* at(int x, int y) const { return &rgb[(static_cast<size_t>(y) * width + x) * 3]; }
};

inline DecodedPng decode_png_file(const std::string& path) {
  DecodedPng out;
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    out.message = image.message;
    return out;
  }
  image.format = PNG_FORMAT_RGB;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr)) {
    out.message = image.message;
    png_image_free(&image);
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace pointnet::testing
