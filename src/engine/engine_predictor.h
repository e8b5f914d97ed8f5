// A built engine behind the Predictor interface (eval, predict, bench), and
// the checkpoint-like description of it those commands read (classes, parts).
#pragma once
#include <memory>

#include "engine/engine_plan.h"
#include "eval/predictor.h"
#include "train/checkpoint.h"

namespace pointnet {

// Refuses a batch or cloud larger than the engine was built for, naming the
// limit and the `pointnet build` flag that raises it.
std::unique_ptr<Predictor> make_engine_predictor(const EnginePlan& plan, const std::string& source);

// Architecture, class names, part layout and up axis, as a checkpoint's.
CheckpointInfo engine_checkpoint_info(const EnginePlan& plan);

}  // namespace pointnet
