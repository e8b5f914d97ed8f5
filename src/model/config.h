// What a PointNet is: task, number of outputs, feature transform or not.
#pragma once
#include <string>

namespace pointnet {

enum class ModelTask { Classification, Segmentation };

struct ModelConfig {
  ModelTask task = ModelTask::Classification;
  int num_classes = 40;           // classes (cls) or part labels (seg)
  bool feature_transform = false; // the 64x64 T-Net (STNkd) after conv1
  int input_channels = 3;         // xyz

  std::string task_name() const { return task == ModelTask::Classification ? "cls" : "seg"; }
};

// pointnet.pytorch's training constants.
constexpr float kDropoutP = 0.3f;                     // classifier, between fc2 and bn2
constexpr double kBatchNormMomentum = 0.1;
constexpr double kFeatureTransformWeight = 0.001;     // regulariser weight in the loss

}  // namespace pointnet
