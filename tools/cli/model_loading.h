// Shared by the commands that take --model: load a checkpoint (ours, or a
// pointnet.pytorch .pth) into a model on the chosen device, and register the
// --device / --precision flags.
#pragma once
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/errors.h"
#include "data/dataset.h"
#include "engine/engine_file.h"
#include "engine/engine_predictor.h"
#include "eval/predictor.h"
#include "model/make_backend.h"
#include "model/pth_import.h"
#include "model/pointnet.h"
#include "train/checkpoint.h"

namespace pointnet::cli {

struct LoadedModel {
  Checkpoint checkpoint;                      // for an engine: its description only (no tensors)
  std::unique_ptr<Backend<float>> backend;    // null for an engine
  std::unique_ptr<PointNet<float>> model;     // null for an engine
  std::unique_ptr<Predictor> predictor;       // either way: clouds in, log-probs out
  bool is_engine = false;
  std::string engine_precision;               // an engine's: "fp32", "int8", ...
  int trained_points = 1024;  // the --points it was trained with
  bool class_names_known = true;  // false for a .pth: "class0", ... stand in
};

// An engine file (from `pointnet build`) fixes its device and precision at
// build time: --device / --precision given with it must agree or stay unset.
inline LoadedModel load_engine(const std::string& path, const std::string& device, const std::string& precision) {
  LoadedModel m;
  const EnginePlan plan = read_engine(path);
  if (precision != "fp32" && precision != precision_name(plan.precision))
    fail(path, ": this engine was built for ", precision_name(plan.precision), "; --precision ", precision,
         " cannot change it (build another engine, or drop --precision)");
  if (device != "cpu" && device != plan.device)
    fail(path, ": this engine was built for --device ", plan.device, ", not ", device);
  m.checkpoint.info = engine_checkpoint_info(plan);
  m.checkpoint.file.source = path;
  m.predictor = make_engine_predictor(plan, path);
  m.is_engine = true;
  m.engine_precision = precision_name(plan.precision);
  m.trained_points = plan.trained_points;
  return m;
}

// accept_engine: false for commands that need the weights themselves (export-onnx).
inline LoadedModel load_model(const std::string& path, const std::string& device, const std::string& precision,
                              bool accept_engine = true) {
  if (is_engine_file(path)) {
    if (!accept_engine) fail(path, ": this is a built engine; this command needs the checkpoint it was built from");
    return load_engine(path, device, precision);
  }
  LoadedModel m;
  // By content, not extension: a .pth renamed still loads, and the error for
  // a file that is neither names what was expected.
  if (is_torch_checkpoint(path)) {
    m.checkpoint = import_pth(path);
    m.class_names_known = false;
  } else {
    try {
      m.checkpoint = load_checkpoint(path);
    } catch (const Error& e) {
      // A broken .pth would otherwise be reported only as "not a safetensors file".
      const std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
      if ((ext != ".pth" && ext.substr(1) != ".pt") || !std::filesystem::is_regular_file(path)) throw;
      fail(e.what(), "; nor is it a torch.save file (expected a zip archive, 'PK\\x03\\x04', or the legacy "
           "format's pickled magic number at byte 0)");
    }
    // Converted without --class-names: "class0", ... are placeholders.
    const auto& t = m.checkpoint.info.trainer;
    if (t.is_object() && t.contains("class_names_known") && t["class_names_known"] == false)
      m.class_names_known = false;
  }
  m.backend = make_backend(device, precision);
  m.model = std::make_unique<PointNet<float>>(m.checkpoint.info.config, *m.backend);
  restore_model(m.checkpoint, *m.model);
  m.predictor = std::make_unique<ModelPredictor>(*m.model);
  const auto& trainer = m.checkpoint.info.trainer;
  if (trainer.is_object() && trainer.contains("recipe") && trainer["recipe"].contains("points"))
    m.trained_points = trainer["recipe"]["points"];
  return m;
}

// A .pth carries no class names: take the dataset's, matched by index, when
// the counts agree (with one warning); refuse when they do not.
inline void name_classes_from_dataset(LoadedModel& m, const Dataset& data, const std::string& model_path) {
  if (m.class_names_known) return;
  CheckpointInfo& info = m.checkpoint.info;
  const bool seg = info.config.task == ModelTask::Segmentation;
  const size_t want = info.class_names.size();
  if (data.class_names.size() != want)
    fail(model_path, ": the model has no class names and ", want, seg ? " category" : " classes", " but ", data.root,
         " has ", data.class_names.size(), seg ? " categories" : " classes",
         seg ? "; convert it with `pointnet convert --class-names <category>` to pick its category"
             : "; convert it with `pointnet convert --class-names ...` to match classes by name");
  if (seg && data.part_count.at(0) != info.part_count.at(0))
    fail(model_path, ": the model segments ", info.part_count[0], " parts but category '", data.class_names[0],
         "' of ", data.root, " has ", data.part_count[0]);
  std::cerr << "warning: " << model_path << " has no class names; using the dataset's, matched by index\n";
  info.class_names = data.class_names;
  m.class_names_known = true;
}

inline void add_device_options(CLI::App* sub, std::string* device, std::string* precision) {
  sub->add_option("--device", *device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--precision", *precision, "fp32, tf32, fp16 or bf16 (all but fp32 need --device cuda)")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16"}));
}

}  // namespace pointnet::cli
