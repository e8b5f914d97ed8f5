// Point Cloud Library .pcd files (v0.6/v0.7): DATA ascii, binary (row-major
// records) and binary_compressed (LZF over field-major data).
//
// Read: fields x y z in any order, normal_x normal_y normal_z when all three
// are present, label when present (integer; U/I of any size, or F holding an
// integer); every other field (rgb, intensity, curvature, '_' padding...) is
// skipped by its SIZE x COUNT. Organised (HEIGHT > 1) clouds are read as a
// flat list of their valid points: a point with a non-finite x, y or z (PCL's
// marker for "no return"), or with non-finite normals, is dropped and
// counted in `dropped`.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "io/cloud_file.h"

namespace pointnet {

// Throws pointnet::Error naming the file, the header line or the data's
// byte offset / line, and what was expected.
Cloud read_pcd(const std::string& path, size_t* dropped = nullptr);
Cloud parse_pcd(std::string_view bytes, const std::string& name_for_errors, size_t* dropped = nullptr);

enum class PcdEncoding { Ascii, Binary, BinaryCompressed };

// Writes FIELDS x y z (+ normal_x normal_y normal_z, + label as U or I 4 when
// the cloud has them), WIDTH n HEIGHT 1, atomically. Binary encodings
// round-trip exactly, and so does ascii (shortest exact decimal forms).
void write_pcd(const std::string& path, const Cloud& cloud, PcdEncoding encoding);

}  // namespace pointnet
