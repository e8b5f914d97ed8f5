// pointnet eval: score a checkpoint on a dataset split.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "data/fps.h"
#include "eval/evaluate.h"
#include "model_loading.h"

namespace pointnet::cli {

Command add_eval(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("eval", "Evaluate a checkpoint: accuracy and confusion (cls), mIoU (seg)");
  auto model_path = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  auto split = std::make_shared<std::string>("test");
  auto json = std::make_shared<bool>(false);
  auto points = std::make_shared<int>(0);
  auto batch = std::make_shared<int>(32);
  auto modelnet_classes = std::make_shared<int>(0);
  sub->add_option("--model", *model_path, "checkpoint (.safetensors, or a pointnet.pytorch .pth), or an engine from pointnet build")->required();
  auto device = std::make_shared<std::string>("cpu");
  auto precision = std::make_shared<std::string>("fp32");
  add_device_options(sub, device.get(), precision.get());
  sub->add_option("--data", *data_dir, "dataset folder or pack (from pointnet pack)")->required();
  sub->add_option("--split", *split, "train, test (ShapeNet part also: val, trainval)");
  sub->add_option("--points", *points, "points per cloud (default: as trained)")->check(CLI::Range(1, 1000000));
  sub->add_option("--batch-size", *batch, "clouds per batch")->check(CLI::Range(1, 65536));
  sub->add_flag("--json", *json, "print one JSON object");
  sub->add_flag_function("--modelnet10", [=](int64_t) { *modelnet_classes = 10; },
                         "ModelNet normal_resampled folders: read the 10-class lists (default: 40 when present)");
  return {sub, [=] {
    LoadedModel m = load_model(*model_path, *device, *precision);
    CheckpointInfo& info = m.checkpoint.info;
    const bool seg = info.config.task == ModelTask::Segmentation;
    LoadOptions load;
    load.split = *split;
    load.with_parts = seg;
    load.class_choice = info.class_choice;
    load.modelnet_classes = *modelnet_classes;
    Dataset data = load_dataset(*data_dir, load);
    name_classes_from_dataset(m, data, *model_path);
    align_to_model(data, info);
    const int n = *points > 0 ? *points : m.trained_points;
    // A model trained on each shape's farthest points is scored on them too.
    const auto& trainer = info.trainer;
    if (trainer.is_object() && trainer.contains("recipe") && trainer["recipe"].value("sampling", "") == "fps")
      keep_farthest_points(data, n);
    Progress progress("eval", static_cast<int64_t>(data.shapes.size()));
    const Evaluation ev = evaluate(*m.predictor, data, info, n, *batch, kEvaluationSeed, *json ? nullptr : &progress);
    if (!*json) progress.finish("");
    if (*json) {
      nlohmann::json out = seg ? to_json(ev.segmentation, info.class_names) : to_json(ev.classification, info.class_names);
      out["model"] = *model_path;
      out["data"] = *data_dir;
      out["split"] = *split;
      out["points"] = n;
      out["loss"] = ev.loss;
      std::cout << out.dump() << "\n";
    } else {
      std::cout << (seg ? format_report(ev.segmentation, info.class_names)
                        : format_report(ev.classification, info.class_names));
    }
    return 0;
  }};
}

}  // namespace pointnet::cli
