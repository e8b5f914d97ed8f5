// pointnet train
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "core/errors.h"
#include "dist/launcher.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace pointnet::cli {

Command add_train(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("train", "Train a classifier or part segmenter (pointnet.pytorch's recipe)");
  auto task = std::make_shared<std::string>("cls");
  auto o = std::make_shared<TrainOptions>();
  auto epochs = std::make_shared<int>(0);
  sub->add_option("--task", *task, "cls or seg")->check(CLI::IsMember({"cls", "seg"}));
  sub->add_option("--data", o->data_dir, "dataset folder (ModelNet-style or ShapeNet part) or pack (from pointnet pack)")->required();
  sub->add_option("--out", o->out_dir, "run folder: checkpoint.safetensors, metrics.jsonl")->required();
  sub->add_option("--epochs", *epochs, "epochs (default 250 for cls, 25 for seg, as pointnet.pytorch)")
      ->check(CLI::Range(1, 100000));
  sub->add_option("--batch-size", o->batch_size, "clouds per batch")->check(CLI::Range(2, 65536));
  sub->add_option("--points", o->points, "points per cloud (default 1024 ModelNet-style, 2500 ShapeNet part)")
      ->check(CLI::Range(1, 1000000));
  sub->add_flag("--feature-transform", o->feature_transform, "add the 64x64 feature transform (STNkd)");
  sub->add_flag("--use-normals", o->use_normals, "6 input channels: xyz + the data's normals");
  sub->add_option("--sampling", o->sampling,
                  "random (N points drawn with replacement each epoch) or fps (each shape reduced once to its N "
                  "farthest points)")
      ->check(CLI::IsMember({"random", "fps"}));
  sub->add_flag_function("--modelnet10", [o](int64_t) { o->modelnet_classes = 10; },
                         "ModelNet normal_resampled folders: the 10-class lists (default: 40 when present)");
  sub->add_flag("--fp32-fc", o->fp32_fc,
                "with --precision tf32/bf16/fp16: keep the fully connected layers over clouds in fp32");
  sub->add_option("--class-choice", o->class_choice, "seg: train on this category only (e.g. Chair)");
  sub->add_option("--seed", o->seed, "random seed (runs are deterministic for a seed)");
  sub->add_flag("--resume", o->resume, "continue the run in --out where it stopped");
  sub->add_option("--lr", o->lr, "Adam learning rate")->check(CLI::PositiveNumber);
  sub->add_option("--lr-step", o->lr_step, "multiply the learning rate by --lr-gamma every N epochs")
      ->check(CLI::Range(1, 100000));
  sub->add_option("--lr-gamma", o->lr_gamma, "StepLR factor")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--eval-every", o->eval_every, "evaluate the test split every N epochs (0: at the end only)")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--test-data", o->test_data,
                  "evaluate on this dataset's test split instead of --data's; 'none': no evaluation");
  sub->add_flag("--no-augment", [o](int64_t) { o->augment = false; }, "no augmentation");
  sub->add_option("--augmentation", o->augmentation,
                  "rotate-jitter (pointnet.pytorch: rotation about the up axis + jitter) or scale-shift "
                  "(PointNet++: point dropout, scale 0.8-1.25, shift 0.1; no rotation)")
      ->check(CLI::IsMember({"rotate-jitter", "scale-shift"}));
  sub->add_option("--weight-decay", o->weight_decay, "Adam L2 weight decay (pointnet.pytorch: 0)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--dropout", o->dropout, "classifier dropout probability")->check(CLI::Range(0.0, 0.99));
  sub->add_flag("--plain", o->plain_output, "plain progress lines even on a terminal");
  sub->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--precision", o->precision,
                  "fp32, tf32, bf16 or fp16 (all but fp32 need --device cuda; fp16 trains with dynamic loss "
                  "scaling, docs/precision.md)")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16"}));
  sub->add_flag("--sync-bn", o->sync_batchnorm,
                "with several ranks (--gpus N, or processes started with POINTNET_WORLD_SIZE): BatchNorm "
                "normalises with the statistics of the global batch (SyncBN), as one GPU with the whole batch would; "
                "off: each GPU's own clouds (PyTorch's DistributedDataParallel default; docs/user-guide.md, "
                "'Several GPUs')");
  auto gpus = std::make_shared<int>(1);
  sub->add_option("--gpus", *gpus,
                  "train over N GPUs of this host: one process per GPU, gradients summed with NCCL, a global batch "
                  "of N x --batch-size (needs --device cuda; docs/user-guide.md, 'Several GPUs')")
      ->check(CLI::Range(1, 1024));
  return {sub, [=] {
    o->task = *task == "cls" ? Task::Classification : Task::Segmentation;
    o->epochs = *epochs > 0 ? *epochs : (*task == "cls" ? 250 : 25);
    if (*gpus > 1) {
      if (o->device != "cuda") fail("train: --gpus ", *gpus, " trains on GPUs: pass --device cuda");
      return launch_local_ranks(*gpus, without_gpus_option(program_arguments()));
    }
    install_interrupt_handler();
    const TrainResult r = train(*o);
    if (r.interrupted) return 130;
    if (r.rank != 0) return 0;  // rank 0 reports the run
    if (!r.evaluated)
      std::printf("trained %d epochs, %.1f s (no test evaluation)\n", r.epochs_done, r.seconds);
    else if (o->task == Task::Classification)
      std::printf("final test accuracy %.2f%% (mean class accuracy %.2f%%) after %d epochs, %.1f s\n",
                  100 * r.test_accuracy, 100 * r.test_mean_class_accuracy, r.epochs_done, r.seconds);
    else
      std::printf("final test instance mIoU %.2f%% (class mIoU %.2f%%) after %d epochs, %.1f s\n",
                  100 * r.test_instance_miou, 100 * r.test_class_miou, r.epochs_done, r.seconds);
    std::printf("checkpoint: %s\n", r.checkpoint.c_str());
    if (!r.model.empty()) std::printf("model: %s\n", r.model.c_str());
    return 0;
  }};
}

}  // namespace pointnet::cli
