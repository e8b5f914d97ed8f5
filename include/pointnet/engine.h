// The application API: load an engine built by `pointnet build` and classify
// or segment point clouds held in memory. No other pointnet header is needed;
// link the installed library with find_package(pointnet) and
// target_link_libraries(app PRIVATE pointnet::pointnet).
//
//   pointnet::Engine engine("model.engine");
//   auto result = engine.classify(xyz.data(), 1, n)[0];   // xyz: n points, x y z each
//   std::cout << result.class_name << " " << result.probability << "\n";
//
// Errors (a missing, damaged or foreign engine file; a cloud larger than the
// engine was built for) are thrown as std::runtime_error with a message that
// names the file and the problem.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace pointnet {

class Engine {
 public:
  explicit Engine(const std::string& path);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  struct Classification {
    int label = 0;                 // index into class_names()
    std::string class_name;
    float probability = 0.0f;      // of that class
    std::vector<float> log_probs;  // one per class
  };

  // points: `clouds` clouds of `points_per_cloud` points each, input_channels()
  // floats per point (x y z, then nx ny nz for a model trained with normals),
  // in any units and position: each cloud is centred and scaled into the unit
  // sphere first, as in training (normals are left as they are).
  std::vector<Classification> classify(const float* points, int clouds, int points_per_cloud);
  // Segmentation engines: one part label per point (0-based among all the
  // model's parts), `clouds` vectors of `points_per_cloud` labels.
  std::vector<std::vector<int>> segment(const float* points, int clouds, int points_per_cloud);

  bool is_segmenter() const;
  int input_channels() const;   // 3 or 6
  int num_outputs() const;      // classes (cls) or parts (seg)
  const std::vector<std::string>& class_names() const;  // classes (cls) or categories (seg)
  std::string precision() const;  // "fp32", "int8", ...
  std::string device() const;     // "cpu" or "cuda"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointnet
