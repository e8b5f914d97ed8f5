// The embedded default datasets: procedural shapes written in the ModelNet and
// ShapeNet-part layouts, so that training and the quickstart run on a fresh
// machine with nothing to download.
//
// Every shape is a triangle mesh (box, cylinder, torus, ... or an object built
// from such parts) with jittered parameters, a random anisotropic scale and a
// random rotation about the up axis, normalised to the unit sphere, then sampled
// uniformly by surface area, with Gaussian noise on every coordinate. A shape's
// random numbers come from (seed, task, class, index) alone, so the bytes written
// depend on the options only, not on the thread count.
//
// Generation is all-or-nothing: files go to a hidden sibling folder that is
// renamed to DIR at the end, and DIR/synth.json records the options. If DIR
// already holds a synthetic dataset made with identical options, the writers
// return at once (idempotent); any other non-empty DIR is an error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

struct SynthOptions {
  uint64_t seed = 1;
  int points = 1024;          // points per shape
  int train_per_class = 200;  // shapes per class (cls) or per category (seg) in the train split
  int test_per_class = 50;
  float noise = 0.01f;        // Gaussian noise sigma on every coordinate (relative to unit scale)
};

// Writes ModelNet-style DIR/<class>/{train,test}/<class>_NNNN.npy, each (points, 3)
// float32, z up. Numbers run on from train into test, as in ModelNet
// (train 0001..T, test T+1..T+S).
void write_synthetic_classification(const std::string& dir, const SynthOptions& options);

// Writes ShapeNet part v0: DIR/synsetoffset2category.txt ("<Category>\t<synset>" lines),
// DIR/<synset>/points/<id>.pts ("x y z" lines), DIR/<synset>/points_label/<id>.seg
// (1-based part per line), DIR/train_test_split/shuffled_{train,val,test}_file_list.json
// (JSON arrays of "shape_data/<synset>/<id>"), y up. Ids are "<split>_NNNN".
// val gets ~10% of the train count (at least one shape), in addition to train.
void write_synthetic_segmentation(const std::string& dir, const SynthOptions& options);

std::vector<std::string> synthetic_class_names();     // cls classes, in label order
std::vector<std::string> synthetic_category_names();  // seg categories, in label order
// Part names of a seg category (part p is label p + 1 in the .seg files); throws
// pointnet::Error for an unknown category.
std::vector<std::string> synthetic_part_names(const std::string& category);

}  // namespace pointnet
