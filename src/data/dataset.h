// A dataset in memory: shapes with their class (or category) and, for part
// segmentation, a part label per point. One loader serves every layout.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/floats.h"
#include "data/shape_path.h"

namespace pointnet {

enum class Task { Classification, Segmentation };

struct Shape {
  ShapePath path;                 // source file (a pack's: its path table entry), for messages
  Floats points;                  // (n, 3) xyz as read from disk, not normalised (an f32 pack's: a view of the file)
  Floats normals;                 // (n, 3) normals as stored (not renormalised) when the data has them, else empty
  std::vector<int32_t> parts;     // (n) 0-based part label (see Dataset::part_offset); empty for cls data
  int label = 0;                  // index into Dataset::class_names
  int num_points() const { return static_cast<int>(points.size() / 3); }
};

struct Dataset {
  std::string root;                      // the folder it was read from
  std::string layout;                    // "modelnet" (classes) or "shapenet_part" (categories with parts)
  std::string format;                    // what the shapes were read from: "npy", "off", "npy+off", "txt", "hdf5", "pack"
  std::vector<std::string> class_names;  // classes (ModelNet) or categories (ShapeNet part)
  std::vector<Shape> shapes;
  int up_axis = 2;                       // 1 = y up (ShapeNet), 2 = z up (ModelNet)
  bool has_normals = false;              // every shape carries normals (Shape::normals)

  // Part segmentation only. With a class choice, parts are that category's own
  // 0..k-1; over all categories, part p of category c is part_offset[c] + p.
  int num_parts = 0;
  std::vector<int> part_offset;          // per category
  std::vector<int> part_count;           // per category
};

struct LoadOptions {
  std::string split = "train";    // "train", "test", "val" or "trainval" (ShapeNet part)
  std::string class_choice;       // ShapeNet part: keep one category (name as in synsetoffset2category.txt)
  bool with_parts = false;        // read .seg labels (segmentation)
  int mesh_points = 2048;         // points sampled from each .off mesh surface
  uint64_t seed = 0;              // seeds the mesh surface sampling
  int modelnet_classes = 0;       // ModelNet normal_resampled with both lists: 40 or 10; 0 = 40 when present
};

// Detects the layout of `dir` and reads the split. Layouts (README "Data layouts"):
//   ModelNet-style folders       <class>/{train,test}/*.{npy,off}
//   ModelNet normal_resampled    modelnet{40,10}_{shape_names,train,test}.txt, <class>/<id>.txt (PointNet++)
//   ModelNet HDF5                {train,test}_files.txt, shape_names.txt, ply_data_*.h5 (PointNet)
//   ShapeNet part v0             synsetoffset2category.txt, <synset>/points/*.pts, points_label/*.seg
//   ShapeNet part v0_normal      synsetoffset2category.txt, <synset>/<id>.txt rows "x y z nx ny nz label"
//   ShapeNet part HDF5           all_object_categories.txt, {train,val,test}_hdf5_file_list.txt, *.h5 with pid
// Throws pointnet::Error naming the file and what was wrong.
// `dir` may also be a dataset pack (see data/pack.h).
Dataset load_dataset(const std::string& dir, const LoadOptions& options);

// "modelnet", "shapenet_part" (folders or packs), or fails naming the path.
std::string dataset_layout(const std::string& path);

// The formats of several splits as one Dataset::format string: each "+"-joined
// list split apart, then the distinct names sorted and joined ("npy+off", "off+txt" -> "npy+off+txt").
std::string combined_format(const std::vector<std::string>& formats);

// Part segmentation: numbers each category's 0-based part labels after the
// previous categories' (sets part_count, part_offset, num_parts; part counts
// come from the labels present). Used by the folder and pack loaders alike.
void number_parts(Dataset& ds);

}  // namespace pointnet
