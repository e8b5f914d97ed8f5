// Text point clouds (.txt / .xyz / .pts): one point per row, columns split by
// white space or by commas, no header. The column count says what a row holds
// and must be the same on every row:
//   3: x y z
//   6: x y z nx ny nz                 (ModelNet40 normal_resampled: "x,y,z,nx,ny,nz")
//   7: x y z nx ny nz label           (ShapeNet part _normal files; label may be "12" or "12.000000")
// Blank lines (and CRLF line ends) are ignored.
#pragma once
#include <string>

#include "io/cloud_file.h"

namespace pointnet {

// Throws pointnet::Error naming the file, the line and the column of the first
// bad value (a non-number, NaN/Inf, a non-integral label) or of a row whose
// column count differs from the first row's.
Cloud parse_text_cloud(const std::string& text, const std::string& name_for_errors);
Cloud read_text_cloud(const std::string& path);

}  // namespace pointnet
