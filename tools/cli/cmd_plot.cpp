// pointnet plot: a run's loss and accuracy per epoch as a PNG.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "core/errors.h"
#include "render/png_writer.h"
#include "render/training_plot.h"
#include "size_option.h"

namespace pointnet::cli {

Command add_plot(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("plot", "Plot a training run's loss and accuracy per epoch to a PNG");
  auto run_dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>("1000x450");
  sub->add_option("run_dir", *run_dir, "run folder (holds metrics.jsonl) or a metrics.jsonl file")->required();
  sub->add_option("--out", *out, "PNG file to write")->required();
  sub->add_option("--size", *size, "WIDTHxHEIGHT in pixels");
  return {sub, [=] {
    const auto [width, height] = parse_size(*size);
    std::filesystem::path metrics = *run_dir;
    if (std::filesystem::is_directory(metrics)) metrics /= "metrics.jsonl";
    const render::TrainingCurves curves = render::read_training_curves(metrics.string());
    const std::string title = metrics.parent_path().filename().string() + ": " +
                              std::to_string(curves.epoch.size()) + " epochs";
    render::write_png(*out, render::render_training_plot(curves, title, width, height).image);
    std::cout << "wrote " << *out << "\n";
    return 0;
  }};
}

}  // namespace pointnet::cli
