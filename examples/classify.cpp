// Classify a point cloud with an engine from `pointnet build`, through the
// installed library (find_package(pointnet)). The cloud: a text file, one
// point per line, "x y z". Usage: classify MODEL.engine CLOUD.xyz
#include <fstream>
#include <iostream>
#include <vector>

#include <pointnet/engine.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: classify MODEL.engine CLOUD.xyz\n";
    return 1;
  }
  try {
    pointnet::Engine engine(argv[1]);
    std::ifstream in(argv[2]);
    std::vector<float> xyz;
    for (float v; in >> v;) xyz.push_back(v);
    const int n = static_cast<int>(xyz.size() / 3);
    if (n == 0 || xyz.size() % 3 != 0) {
      std::cerr << argv[2] << ": expected lines of x y z\n";
      return 1;
    }
    const auto result = engine.classify(xyz.data(), 1, n).at(0);
    std::cout << result.class_name << " " << result.probability << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
