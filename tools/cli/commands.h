// The `pointnet` command: one function per subcommand, each registering its
// flags on a CLI11 subcommand and returning the action to run.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace pointnet::cli {

// A registered subcommand and what to run when it was the one given.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_synth(CLI::App& app);
Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_predict(CLI::App& app);
Command add_pack(CLI::App& app);
Command add_info(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_show(CLI::App& app);
Command add_plot(CLI::App& app);
Command add_export_onnx(CLI::App& app);
Command add_build(CLI::App& app);

// This program's command line, for subcommands that run it again (train --gpus).
void set_program_arguments(int argc, char** argv);
const std::vector<std::string>& program_arguments();

}  // namespace pointnet::cli
