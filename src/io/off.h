// Object File Format (.off) meshes, as in ModelNet, and uniform sampling of
// points on a mesh surface.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace pointnet {

struct Mesh {
  std::string path;                 // source file, for messages
  std::vector<float> vertices;      // (num_vertices, 3)
  std::vector<int32_t> triangles;   // (num_triangles, 3) vertex indices; polygons fan-triangulated
  int num_vertices() const { return static_cast<int>(vertices.size() / 3); }
  int num_triangles() const { return static_cast<int>(triangles.size() / 3); }
};

// Accepts OFF, COFF, NOFF and CNOFF headers (extra per-vertex columns such as
// normals or colours are ignored), '#' comments, blank lines, and ModelNet's
// "OFF490 518 0" (counts glued to the header). Faces need >= 3 vertices.
// Throws pointnet::Error naming the file and line.
Mesh read_off(const std::string& path);
Mesh parse_off(const std::string& text, const std::string& name_for_errors);

// Draws `num_points` points uniformly over the surface: a triangle with
// probability proportional to its area, then a uniform point in it
// (Osada et al. 2002: sqrt of the first barycentric draw). Per point the Rng is
// consumed as: triangle pick, r1, r2. Returns (num_points, 3) floats; when
// `normals` is given it receives (num_points, 3) unit normals, each point's
// triangle's (right-handed in the triangle's vertex order).
// Throws if the mesh has zero (or non-finite) total area.
std::vector<float> sample_mesh_surface(const Mesh& mesh, int num_points, Rng& rng,
                                       std::vector<float>* normals = nullptr);

}  // namespace pointnet
