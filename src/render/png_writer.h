// Saves an Image as an 8-bit RGB PNG (libpng), atomically: a reader sees the
// old file or the whole new one.
#pragma once
#include <string>

#include "render/image.h"

namespace pointnet::render {

// The PNG file's bytes. Throws pointnet::Error if libpng fails.
std::string encode_png(const Image& image);

// encode_png + write_file_atomic; throws pointnet::Error naming `path`.
void write_png(const std::string& path, const Image& image);

}  // namespace pointnet::render
