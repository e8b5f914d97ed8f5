// The training loop: pointnet.pytorch's recipe (Adam 1e-3, StepLR 20 x 0.5,
// batch 32, NLL + 0.001 * feature-transform regulariser, rotation about the up
// axis + jitter), deterministic for a seed, resumable to the exact batch.
// --precision fp16 adds dynamic loss scaling (train_step.h, loss_scaler.h): the
// scaler's state rides in the checkpoint, and metrics.jsonl records each
// epoch's skipped steps and loss scale.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "model/config.h"
#include "dist/communicator.h"
#include "train/loss_scaler.h"

namespace pointnet {

struct TrainOptions {
  Task task = Task::Classification;
  std::string data_dir;
  std::string test_data;       // evaluate on this dataset's test split ("": data_dir's; "none": no evaluation)
  std::string out_dir;
  int epochs = 250;            // pointnet.pytorch: 250 (cls), 25 (seg)
  int batch_size = 32;
  int points = 0;              // 0: 1024 for ModelNet-style data, 2500 for ShapeNet part
  bool feature_transform = false;
  bool use_normals = false;    // 6 input channels: xyz + normals (the data must carry normals)
  std::string sampling = "random";  // "random" (draws with replacement) or "fps" (data/fps.h keep_farthest_points)
  int modelnet_classes = 0;    // ModelNet normal_resampled: 10 reads the 10-class lists (LoadOptions)
  std::string class_choice;    // seg: train on one category
  uint64_t seed = 1;
  bool resume = false;
  double lr = 1e-3;
  int lr_step = 20;            // StepLR step size (epochs)
  double lr_gamma = 0.5;
  bool augment = true;
  std::string augmentation = "rotate-jitter";  // or "scale-shift" (data/sampler.h Augmentation)
  double weight_decay = 0.0;   // Adam's L2 weight decay (pointnet.pytorch: none)
  double dropout = kDropoutP;  // the classifier's dropout probability
  int eval_every = 1;          // evaluate the test split every N epochs (0: only at the end)
  int mesh_points = 2048;      // points sampled from .off meshes
  bool plain_output = false;   // plain lines even on a terminal
  std::string device = "cpu";  // cpu or cuda
  std::string precision = "fp32";  // fp32; tf32, bf16, fp16 (cuda; fp16 with dynamic loss scaling)
  bool fp32_fc = false;        // reduced precision for the per-point layers only (make_backend)
  // Tests only (no flag): dynamic loss scaling with this config whatever the
  // precision, so the CPU can exercise it (from a huge scale: fp32 overflows
  // near 2^128). Unset: fp16 scales with GradScaler's defaults, others do not.
  std::optional<LossScalerConfig> loss_scaling;
  // Data parallelism over this rank's communicator (tests: a ThreadGroup's
  // rank). Unset: one process, unless the environment names a multi-process
  // run (dist/rendezvous.h: POINTNET_WORLD_SIZE > 1), which then trains over
  // NCCL on --device cuda. Each rank takes its slice of a global batch of
  // batch_size x ranks; rank 0 alone writes the run folder and evaluates.
  Communicator* communicator = nullptr;
  // SyncBN: with several ranks, BatchNorm normalises with the statistics of
  // the global batch (Backend::set_batchnorm_group), as one device would.
  bool sync_batchnorm = false;
};

struct TrainResult {
  int epochs_done = 0;
  bool interrupted = false;
  double test_accuracy = 0.0;        // cls: overall accuracy of the final model on the test split
  double test_mean_class_accuracy = 0.0;
  double test_instance_miou = 0.0;   // seg
  double test_class_miou = 0.0;
  double seconds = 0.0;
  bool evaluated = false;            // false with --test-data none
  std::string checkpoint;            // path of the last checkpoint written
  std::string model;                 // OUT/model.safetensors: the finished model without optimizer state
  int rank = 0, ranks = 1;           // this process's rank and the run's rank count
  uint64_t parameters_checksum = 0;  // of the final trainable values: the same on every rank of a run
};

// Trains, writing OUT/checkpoint.safetensors (every epoch and on interrupt),
// OUT/metrics.jsonl, and OUT/model.safetensors when the last epoch is done. Throws pointnet::Error for bad options or data.
TrainResult train(const TrainOptions& options);

}  // namespace pointnet
