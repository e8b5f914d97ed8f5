// pointnet synth: writes the embedded synthetic dataset.
#include <iostream>

#include "commands.h"
#include "data/synth.h"

namespace pointnet::cli {

Command add_synth(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("synth", "Generate the synthetic dataset (ModelNet or ShapeNet-part layout)");
  auto task = std::make_shared<std::string>("cls");
  auto out = std::make_shared<std::string>();
  auto opt = std::make_shared<SynthOptions>();
  sub->add_option("--task", *task, "cls (ModelNet-style folders) or seg (ShapeNet part v0)")
      ->check(CLI::IsMember({"cls", "seg"}));
  sub->add_option("--out", *out, "output folder")->required();
  sub->add_option("--seed", opt->seed, "random seed");
  sub->add_option("--points", opt->points, "points per shape")->check(CLI::Range(1, 1000000));
  sub->add_option("--train-per-class", opt->train_per_class, "training shapes per class")->check(CLI::Range(1, 1000000));
  sub->add_option("--test-per-class", opt->test_per_class, "test shapes per class")->check(CLI::Range(1, 1000000));
  sub->add_option("--noise", opt->noise, "Gaussian noise sigma")->check(CLI::Range(0.0, 1.0));
  return {sub, [=] {
    if (*task == "cls") write_synthetic_classification(*out, *opt);
    else write_synthetic_segmentation(*out, *opt);
    std::cout << "wrote synthetic " << *task << " data to " << *out << "\n";
    return 0;
  }};
}

}  // namespace pointnet::cli
