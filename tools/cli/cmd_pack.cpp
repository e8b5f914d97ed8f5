// pointnet pack: a dataset folder -> one checksummed, memory-mapped pack file.
#include <chrono>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "data/pack.h"

namespace pointnet::cli {

Command add_pack(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("pack", "Pack a dataset folder into one file that loads in seconds");
  auto data_dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto splits = std::make_shared<std::vector<std::string>>();
  auto opt = std::make_shared<PackOptions>();
  sub->add_option("data", *data_dir, "dataset folder (any layout in the README)")->required();
  sub->add_option("--out", *out, "pack file to write (atomically)")->required();
  sub->add_option("--dtype", opt->dtype, "f32 (exact) or f16 (half the size)")->check(CLI::IsMember({"f32", "f16"}));
  sub->add_option("--points", opt->max_points, "keep at most this many points per shape (seeded subset; default all)")
      ->check(CLI::Range(1, 100000000));
  sub->add_option("--splits", *splits, "splits to pack, comma-separated (default: all of the layout's)")->delimiter(',');
  sub->add_option("--mesh-points", opt->mesh_points, "points sampled from each .off mesh")->check(CLI::Range(1, 10000000));
  sub->add_option("--seed", opt->seed, "seed for mesh sampling and --points subsets");
  sub->add_flag_function("--modelnet10", [=](int64_t) { opt->modelnet_classes = 10; },
                         "ModelNet normal_resampled folders: read the 10-class lists (default: 40 when present)");
  return {sub, [=] {
    const auto start = std::chrono::steady_clock::now();
    opt->splits = *splits;
    const PackSummary s = write_pack(*data_dir, *out, *opt);
    std::ostringstream counts;
    for (const auto& [name, count] : s.split_counts) counts << " " << name << " " << count;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "wrote " << *out << ": " << s.layout << ", " << s.classes << " classes," << counts.str() << " shapes, "
              << s.points << " points, " << opt->dtype << (s.has_normals ? ", with normals, " : ", ") << s.bytes / 1e6 << " MB in " << seconds << " s\n";
    return 0;
  }};
}

}  // namespace pointnet::cli
