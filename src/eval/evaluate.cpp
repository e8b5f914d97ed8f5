#include "eval/evaluate.h"

#include <algorithm>
#include <optional>

#include "core/errors.h"
#include "data/batch.h"

namespace pointnet {

void align_to_model(Dataset& data, const CheckpointInfo& info) {
  const bool seg = info.config.task == ModelTask::Segmentation;
  std::vector<int> to_model(data.class_names.size(), -1);
  for (size_t c = 0; c < data.class_names.size(); ++c) {
    auto it = std::find(info.class_names.begin(), info.class_names.end(), data.class_names[c]);
    if (it == info.class_names.end())
      fail(data.root, ": class '", data.class_names[c], "' is not one the model was trained on (it knows ",
           info.class_names.size(), " classes, e.g. '", info.class_names.empty() ? "" : info.class_names[0], "')");
    to_model[c] = static_cast<int>(it - info.class_names.begin());
  }
  for (Shape& shape : data.shapes) {
    const int c = shape.label;
    shape.label = to_model[c];
    if (!seg) continue;
    for (int32_t& p : shape.parts) {
      const int local = p - data.part_offset[c];
      if (local < 0 || local >= info.part_count[shape.label])
        fail(shape.path, ": part label ", local + 1, " is out of range for category '", data.class_names[c],
             "' (1..", info.part_count[shape.label], ")");
      p = info.part_offset[shape.label] + local;
    }
  }
  data.class_names = info.class_names;
  data.part_offset = info.part_offset;
  data.part_count = info.part_count;
  data.num_parts = info.config.task == ModelTask::Segmentation ? info.config.num_classes : 0;
}

Evaluation evaluate(Predictor& model, const Dataset& data, const CheckpointInfo& info, int num_points,
                    int batch_size, uint64_t seed, Progress* progress) {
  const bool seg = info.config.task == ModelTask::Segmentation;
  const int K = info.config.num_classes, N = num_points;
  const int total = static_cast<int>(data.shapes.size());
  Evaluation result;
  std::vector<int> truth, predicted;
  std::optional<SegmentationMetrics> seg_metrics;
  if (seg) seg_metrics.emplace(info.part_offset, info.part_count);
  SampleOptions sampling;
  sampling.num_points = N;
  sampling.augment = false;
  sampling.up_axis = data.up_axis;
  sampling.use_normals = info.config.input_channels == 6;
  if (sampling.use_normals && !data.has_normals)
    fail(data.root, ": the model takes normals (trained with --use-normals), but this dataset has none");
  const int C = sampling.channels();
  std::vector<float> points(static_cast<size_t>(batch_size) * N * C);
  std::vector<int32_t> labels(static_cast<size_t>(batch_size) * (seg ? N : 1));
  std::vector<int32_t> choice;
  double loss_sum = 0.0;
  int64_t rows = 0;
  for (int start = 0; start < total; start += batch_size) {
    const int B = std::min(batch_size, total - start);
    std::vector<int> indices(B);
    for (int b = 0; b < B; ++b) indices[b] = start + b;
    assemble_batch(data, indices, sampling, seed, seg, points.data(), labels.data());
    const std::vector<float>& log_probs = model.predict(points.data(), B, N);
    const int label_rows = B * (seg ? N : 1);
    for (int r = 0; r < label_rows; ++r) loss_sum -= log_probs[static_cast<size_t>(r) * K + labels[r]];
    rows += label_rows;
    if (!seg) {
      for (int b = 0; b < B; ++b) {
        const float* row = log_probs.data() + static_cast<size_t>(b) * K;
        truth.push_back(labels[b]);
        predicted.push_back(static_cast<int>(std::max_element(row, row + K) - row));
      }
    } else {
      // Predict among the parts of the shape's own category (the category is
      // known at evaluation, as in the usual ShapeNet part protocol).
      choice.resize(N);
      for (int b = 0; b < B; ++b) {
        const int c = data.shapes[indices[b]].label;
        const int lo = info.part_offset[c], hi = lo + info.part_count[c];
        for (int n = 0; n < N; ++n) {
          const float* row = log_probs.data() + (static_cast<size_t>(b) * N + n) * K;
          choice[n] = static_cast<int32_t>(std::max_element(row + lo, row + hi) - row);
        }
        seg_metrics->add_shape(c, labels.data() + static_cast<size_t>(b) * N, choice.data(), N);
      }
    }
    if (progress) progress->update(start + B, "");
  }
  result.loss = rows ? loss_sum / rows : 0.0;
  if (!seg) result.classification = classification_report(truth, predicted, K);
  else result.segmentation = seg_metrics->report();
  return result;
}

}  // namespace pointnet
