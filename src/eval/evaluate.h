// Runs a trained model over a dataset split in eval mode and scores it:
// accuracy and confusion for classification, mIoU for part segmentation.
#pragma once
#include <cstdint>

#include "data/dataset.h"
#include "eval/metrics.h"
#include "eval/predictor.h"
#include "train/checkpoint.h"
#include "train/progress.h"

namespace pointnet {

// Renumbers `data`'s labels (and parts) to the model's classes, matched by
// name. Throws pointnet::Error for a class the model does not know, a category
// with a different number of parts, or a part label out of range.
void align_to_model(Dataset& data, const CheckpointInfo& info);

struct Evaluation {
  double loss = 0.0;            // mean NLL over clouds (cls) or points (seg)
  ClassificationReport classification;
  SegmentationReport segmentation;
};

// The seed for resampling shapes whose point count differs from the model's:
// fixed, so `train` and `eval` score the same checkpoint identically.
constexpr uint64_t kEvaluationSeed = 0x4556414C;

// Every shape of `data` (already aligned), in batches of `batch_size`, at
// `num_points` points, by `model` (the training model or an engine) (shapes with exactly that many are used whole, others
// resampled deterministically from `seed`). `progress` may be null.
Evaluation evaluate(Predictor& model, const Dataset& data, const CheckpointInfo& info, int num_points,
                    int batch_size, uint64_t seed, Progress* progress);

}  // namespace pointnet
