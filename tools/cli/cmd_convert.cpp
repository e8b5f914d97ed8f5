// pointnet convert: a pointnet.pytorch .pth (torch.save of a state_dict) to
// our checkpoint, so it can be used (and fine-tuned) without Python.
#include <iostream>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "model/pth_import.h"

namespace pointnet::cli {
namespace {

// One name per line; blank lines and surrounding spaces are ignored.
std::vector<std::string> read_names_file(const std::string& path) {
  std::vector<std::string> names;
  const std::string text = read_file(path);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    const size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
    if (a != std::string::npos) names.push_back(line.substr(a, b - a + 1));
    start = end + 1;
  }
  if (names.empty()) fail(path, ": no class names in the file (expected one per line)");
  return names;
}

}  // namespace

Command add_convert(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("convert", "Convert a pointnet.pytorch .pth state_dict to a checkpoint");
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto names = std::make_shared<std::vector<std::string>>();
  auto names_file = std::make_shared<std::string>();
  sub->add_option("input", *input, "torch.save(model.state_dict()) file (zip or legacy format)")->required();
  sub->add_option("--out", *output, "checkpoint to write (.safetensors)")->required();
  auto* names_opt = sub->add_option("--class-names", *names, "class names in label order (seg: the one category)")
                        ->delimiter(',');
  sub->add_option("--class-names-file", *names_file, "class names, one per line")->excludes(names_opt);
  return {sub, [=] {
    const std::vector<std::string> given = names_file->empty() ? *names : read_names_file(*names_file);
    Checkpoint ck = import_pth(*input, given);
    ck.info.trainer = {{"imported_from", "pointnet.pytorch"}, {"source", *input},
                       {"class_names_known", !given.empty()}};
    CpuBackend<float> be;
    PointNet<float> model(ck.info.config, be);
    restore_model(ck, model);
    save_checkpoint(*output, model, nullptr, ck.info);
    const ModelConfig& c = ck.info.config;
    std::cout << *input << " -> " << *output << ": " << (c.task == ModelTask::Classification ? "PointNetCls" : "PointNetDenseCls")
              << ", " << c.num_classes << (c.task == ModelTask::Classification ? " classes" : " parts")
              << (c.feature_transform ? ", feature transform" : "") << "\n";
    if (given.empty())
      std::cout << "note: no class names given; eval matches a dataset's classes by index\n";
    return 0;
  }};
}

}  // namespace pointnet::cli
