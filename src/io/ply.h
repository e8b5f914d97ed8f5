// Stanford .ply files: ascii, binary_little_endian and binary_big_endian.
//
// Read: the `vertex` element's x y z (any PLY scalar type), nx ny nz when all
// three are present, and a per-point label from the first property named
// label, scalar_label, class, class_id, category, semantic or segment (an
// integer, or a float holding an integer). Other properties and elements
// are skipped by their declared types. A `face` element with a list property
// vertex_indices (or vertex_index) makes the file a mesh: polygons are
// fan-triangulated and the surface sampled as for .off, each point getting
// its triangle's unit normal (vertex labels and normals are then unused).
#pragma once
#include <string>
#include <string_view>

#include "io/cloud_file.h"

namespace pointnet {

// Throws pointnet::Error naming the file, the line (header, ascii) or byte
// offset (binary) and what was expected.
Cloud read_ply(const std::string& path, const CloudReadOptions& options);
Cloud parse_ply(std::string_view bytes, const std::string& name_for_errors, const CloudReadOptions& options);

enum class PlyEncoding { Ascii, BinaryLittleEndian };

// Writes x y z as float (+ nx ny nz float, + label int when the cloud has
// them), atomically. Binary round-trips exactly; ascii prints each float's
// shortest exact decimal form, so it does too.
void write_ply(const std::string& path, const Cloud& cloud, PlyEncoding encoding);

}  // namespace pointnet
