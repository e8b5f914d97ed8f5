// Entry point: parse, dispatch, and turn every user error into one clear line
// on stderr and exit status 1.
#include <omp.h>

#include <iostream>

#include "commands.h"
#include "core/errors.h"

namespace pointnet::cli {
namespace {
std::vector<std::string>& arguments() {
  static std::vector<std::string> a;
  return a;
}
}  // namespace
void set_program_arguments(int argc, char** argv) { arguments().assign(argv, argv + argc); }
const std::vector<std::string>& program_arguments() { return arguments(); }
}  // namespace pointnet::cli

int main(int argc, char** argv) {
  pointnet::cli::set_program_arguments(argc, argv);
  CLI::App app{"pointnet: PointNet classification and part segmentation, trained and run on the CPU"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may come before or after the subcommand
  app.option_defaults()->always_capture_default();
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::Range(0, 1024));
  const std::vector<pointnet::cli::Command> commands = {
      pointnet::cli::add_synth(app), pointnet::cli::add_train(app), pointnet::cli::add_eval(app),
      pointnet::cli::add_predict(app), pointnet::cli::add_pack(app), pointnet::cli::add_info(app),
      pointnet::cli::add_bench(app), pointnet::cli::add_convert(app), pointnet::cli::add_export_onnx(app),
      pointnet::cli::add_show(app), pointnet::cli::add_plot(app), pointnet::cli::add_build(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other parse error is a usage error: status 1.
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (threads > 0) omp_set_num_threads(threads);
  try {
    for (const auto& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory (try a smaller --batch-size or --points)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
