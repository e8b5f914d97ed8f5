// The training step with dynamic loss scaling, on the CPU backend in fp32.
// fp32 overflows only near 2^128, so an artificially huge loss scale (2^130)
// plays the part that 2^16 plays for fp16: the first steps overflow and are
// skipped, the scale backs off, and training goes on. Because scaling by a
// power of two is exact in binary floating point (short of overflow), the
// scaled run must then equal an unscaled run that never saw the skipped
// batches, bit for bit: that checks the seed (S/M), the regulariser's weight
// (0.001 S), the unscaling inside Adam (1/S) and that a skip leaves no trace.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <vector>

#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "train/train_step.h"
#include "../scoped_env.h"

namespace pointnet {
namespace {

constexpr int kB = 8, kN = 32, kClasses = 4;

// One fixed batch: random clouds and labels to memorise, a fixed dropout mask.
struct Batch {
  std::vector<float> points, mask;
  std::vector<int32_t> targets;
  Batch() {
    Rng rng(77);
    points.resize(size_t(kB) * kN * 3);
    for (float& v : points) v = rng.normal();
    targets.resize(kB);
    for (int32_t& t : targets) t = static_cast<int32_t>(rng.below(kClasses));
    mask.resize(size_t(kB) * 256);
    for (float& m : mask) m = rng.uniform() < 0.3f ? 0.0f : 1.0f / 0.7f;
  }
};

ModelConfig model_config() {
  ModelConfig c;
  c.num_classes = kClasses;
  c.feature_transform = true;  // so the regulariser's weight is scaled too
  return c;
}

LossScalerConfig scale_config(double init, double max_scale = 16777216.0) {
  LossScalerConfig c;
  c.init_scale = init;
  c.max_scale = max_scale;
  return c;
}

// A model, its Adam, a scaler and the step over them, from a fixed initialisation.
struct Trainee {
  Trainee(Backend<float>& be, LossScaler s, const Batch& batch)
      : model(model_config(), be), adam(be, model.params().trainable_count()), scaler(s),
        step(model, adam, scaler), batch_(batch) {
    Rng rng(21);
    model.initialize(rng);
    model.set_dropout_mask(batch.mask);
  }
  StepResult run(double lr = 1e-3) {
    return step.run(batch_.points.data(), batch_.targets.data(), kB, kN, lr, nullptr);
  }

  PointNet<float> model;
  Adam<float> adam;
  LossScaler scaler;
  TrainStep step;

 private:
  const Batch& batch_;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {  // NaN == NaN here
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Everything a step may change (CPU backend: host memory).
struct State {
  std::vector<float> values, m, v, buffers;
  int64_t batches_tracked = 0, adam_steps = 0;
  bool operator==(const State& o) const {
    return same_bits(values, o.values) && same_bits(m, o.m) && same_bits(v, o.v) && same_bits(buffers, o.buffers) &&
           batches_tracked == o.batches_tracked && adam_steps == o.adam_steps;
  }
};

State snapshot(const PointNet<float>& model, const Adam<float>& adam) {
  const ParamStore<float>& p = model.params();
  const size_t n = p.trainable_count();
  State s;
  s.values.assign(p.values(), p.values() + n);
  s.m.assign(adam.first_moment(), adam.first_moment() + n);
  s.v.assign(adam.second_moment(), adam.second_moment() + n);
  s.buffers.assign(p.buffers(), p.buffers() + p.buffer_count());
  s.batches_tracked = model.batches_tracked();
  s.adam_steps = adam.steps();
  return s;
}
State snapshot(const Trainee& t) { return snapshot(t.model, t.adam); }

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Without scaling the step is exactly the plain forward/loss/backward/Adam.
TEST(TrainStep, DisabledScalerIsThePlainStep) {
  CpuBackend<float> be;
  Batch batch;
  Trainee stepped(be, LossScaler::disabled(), batch);
  Trainee plain(be, LossScaler::disabled(), batch);
  for (int i = 0; i < 3; ++i) {
    const StepResult r = stepped.run();
    EXPECT_EQ(r.outcome, StepOutcome::kTaken);
    EXPECT_EQ(r.scale, 1.0);
    plain.model.forward(batch.points.data(), kB, kN, true);
    const LossValue loss = plain.model.loss(batch.targets.data());
    plain.model.backward(batch.targets.data());
    plain.adam.step(plain.model.params().values(), plain.model.params().grads(), 1e-3);
    EXPECT_EQ(r.loss.total, loss.total) << "step " << i;
  }
  EXPECT_TRUE(snapshot(stepped) == snapshot(plain));
  EXPECT_EQ(stepped.scaler.skipped_steps(), 0);
}

// backward(S) gives S times backward(1) exactly, the regulariser's term included.
TEST(TrainStep, ScaledBackwardIsExactlyScaled) {
  CpuBackend<float> be;
  Batch batch;
  Trainee t(be, LossScaler::disabled(), batch);
  const size_t n = t.model.params().trainable_count();
  t.model.forward(batch.points.data(), kB, kN, true);
  t.model.backward(batch.targets.data(), 1.0);
  const std::vector<float> g1(t.model.params().grads(), t.model.params().grads() + n);
  t.model.forward(batch.points.data(), kB, kN, true);  // same output: batch statistics, fixed mask
  const double S = std::ldexp(1.0, 20);
  t.model.backward(batch.targets.data(), S);
  const float* g2 = t.model.params().grads();
  size_t mismatched = 0, nonzero = 0;
  for (size_t i = 0; i < n; ++i) {
    mismatched += g2[i] != static_cast<float>(g1[i] * S);
    nonzero += g1[i] != 0.0f;
  }
  EXPECT_EQ(mismatched, 0u) << "of " << n << " gradients";
  EXPECT_GT(nonzero, n / 2);
}

TEST(TrainStep, AnOverflowSkipsWithoutTouchingTheModelOrAdam) {
  CpuBackend<float> be;
  Batch batch;
  Trainee t(be, LossScaler(scale_config(1.0)), batch);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(t.run().outcome, StepOutcome::kTaken);  // non-zero moments
  const State before = snapshot(t);
  ASSERT_EQ(before.adam_steps, 2);

  // 2^140: S/M rounds to float infinity, so every gradient overflows, whatever
  // their size (at 2^127 these ones fit: all are below 2).
  const double huge = std::ldexp(1.0, 140);
  LossScaler scaler(scale_config(huge, huge));
  TrainStep step(t.model, t.adam, scaler);
  const StepResult r = step.run(batch.points.data(), batch.targets.data(), kB, kN, 1e-3, nullptr);
  EXPECT_EQ(r.outcome, StepOutcome::kSkipped);
  EXPECT_TRUE(r.loss_finite) << "the forward is not scaled; only the gradients overflow";
  EXPECT_EQ(r.scale, huge);
  const size_t n = t.model.params().trainable_count();
  EXPECT_FALSE(all_finite(std::vector<float>(t.model.params().grads(), t.model.params().grads() + n)))
      << "the gradients at 2^140 should have overflowed";
  EXPECT_TRUE(snapshot(t) == before) << "a skipped step changed parameters, Adam state or running statistics";
  EXPECT_EQ(scaler.scale(), huge / 2);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_EQ(scaler.good_steps(), 0);
}

// Makes every forward non-finite: a NaN input point poisons BatchNorm's running
// statistics (ReLU then maps the NaN to 0, so that alone leaves the loss
// finite), and a NaN logit bias makes the loss NaN.
void poison(Batch& batch, PointNet<float>& model) {
  batch.points[5] = std::numeric_limits<float>::quiet_NaN();
  const int bias = model.params().find("fc3.bias");
  ASSERT_GE(bias, 0);
  model.params().value(bias)[0] = std::numeric_limits<float>::quiet_NaN();
}

// A non-finite loss is a skip while the scale can go lower, and fatal
// (kDiverged) at the floor and without scaling. Neither leaves a trace; the
// running statistics that the poisoned forward wrote are put back.
TEST(TrainStep, NonFiniteLossSkipsUntilTheFloorThenDiverges) {
  CpuBackend<float> be;
  Batch batch;
  LossScalerConfig config = scale_config(4.0);
  Trainee t(be, LossScaler(config), batch);
  poison(batch, t.model);
  if (HasFatalFailure()) return;
  const State before = snapshot(t);
  for (double expected_scale : {4.0, 2.0}) {
    const StepResult r = t.run();
    EXPECT_EQ(r.outcome, StepOutcome::kSkipped);
    EXPECT_FALSE(r.loss_finite);
    EXPECT_EQ(r.scale, expected_scale);
  }
  EXPECT_EQ(t.scaler.scale(), 1.0);
  EXPECT_TRUE(t.scaler.at_floor());
  const StepResult r = t.run();
  EXPECT_EQ(r.outcome, StepOutcome::kDiverged);
  EXPECT_FALSE(std::isfinite(r.loss.total));
  EXPECT_EQ(t.scaler.skipped_steps(), 2);
  EXPECT_TRUE(snapshot(t) == before) << "skipped or diverged steps changed the model or Adam";
  EXPECT_TRUE(all_finite(snapshot(t).buffers)) << "the NaN forward's running statistics were kept";

  Trainee plain(be, LossScaler::disabled(), batch);
  poison(batch, plain.model);
  if (HasFatalFailure()) return;
  EXPECT_EQ(plain.run().outcome, StepOutcome::kDiverged);
  EXPECT_EQ(plain.adam.steps(), 0);
}

// An artificially huge initial scale: the first steps overflow and are skipped,
// the scale halves each time until the gradients fit, then every step is taken
// and the model learns the batch. The scaled run equals an unscaled run of the
// steps taken, bit for bit.
TEST(TrainStep, HugeInitialScaleBacksOffThenLearns) {
  CpuBackend<float> be;
  Batch batch;
  const double huge = std::ldexp(1.0, 130);
  Trainee t(be, LossScaler(scale_config(huge, huge)), batch);
  const int steps = 40;
  std::vector<StepResult> results;
  for (int i = 0; i < steps; ++i) results.push_back(t.run());

  int skipped = 0, first_taken = -1;
  for (int i = 0; i < steps; ++i) {
    ASSERT_NE(results[i].outcome, StepOutcome::kDiverged) << "step " << i;
    if (results[i].outcome == StepOutcome::kSkipped) {
      ++skipped;
      EXPECT_EQ(first_taken, -1) << "step " << i << " overflowed again after the scale had settled";
      EXPECT_EQ(results[i].scale, std::ldexp(huge, -i)) << "the scale halves once per skipped step";
    } else if (first_taken < 0) {
      first_taken = i;
    }
  }
  std::cout << "[ info     ] from 2^130: " << skipped << " steps skipped, scale settled at 2^"
            << std::log2(t.scaler.scale()) << "; loss " << results[skipped].loss.total << " -> "
            << results.back().loss.total << "\n";
  EXPECT_GE(skipped, 3) << "2^130 should overflow fp32 gradients (all are below 4: at most 2^125 fits)";
  EXPECT_LE(skipped, 20) << "the scale should settle within a few halvings";
  EXPECT_EQ(first_taken, skipped);
  EXPECT_EQ(t.scaler.skipped_steps(), skipped);
  EXPECT_EQ(t.scaler.scale(), std::ldexp(huge, -skipped));
  EXPECT_EQ(t.adam.steps(), steps - skipped) << "skipped steps must not advance Adam's step count";
  // Learns: the memorised batch's loss falls well below its start (log 4 = 1.39).
  EXPECT_LT(results.back().loss.total, 0.5 * results[skipped].loss.total);

  Trainee unscaled(be, LossScaler::disabled(), batch);
  for (int i = 0; i < steps - skipped; ++i) {
    const StepResult r = unscaled.run();
    ASSERT_EQ(r.outcome, StepOutcome::kTaken);
    EXPECT_EQ(r.loss.total, results[skipped + i].loss.total) << "taken step " << i;
  }
  EXPECT_TRUE(snapshot(t) == snapshot(unscaled))
      << "the scaled run differs from an unscaled run of the same steps";
}

}  // namespace
}  // namespace pointnet

namespace pointnet {
namespace {

// The dropout mask drawn ahead of the forward (what a recorded step does
// before each replay) is the mask the forward would have drawn itself, and a
// replayed forward uses it up: the next forward draws its own again.
TEST(DropoutDrawnAhead, EqualsTheForwardsOwnDrawAndIsUsedOnce) {
  CpuBackend<float> be;
  ModelConfig config;
  config.num_classes = kClasses;
  PointNet<float> model(config, be);
  Rng init(3);
  model.initialize(init);
  const Batch batch;
  const size_t out = size_t(kB) * kClasses;
  const auto logp = [&] { return std::vector<float>(model.log_probs(), model.log_probs() + out); };

  Rng own(99);
  model.forward(batch.points.data(), kB, kN, true, &own);
  const std::vector<float> drawn_by_forward = logp();

  Rng ahead(99);
  model.draw_dropout(kB, ahead);
  Rng unused(12345);  // ignored: the mask is already drawn
  model.forward(batch.points.data(), kB, kN, true, &unused);
  EXPECT_EQ(logp(), drawn_by_forward);

  // Drawn ahead again, then "replayed" (no host forward): the mask is used up,
  // so the next forward draws from its own stream, not the stale mask.
  Rng other(5);
  model.draw_dropout(kB, other);
  const int64_t tracked = model.batches_tracked();
  model.replayed_training_forward(batch.points.data(), kB, kN);
  EXPECT_EQ(model.batches_tracked(), tracked + 1);
  Rng fresh(99);
  model.forward(batch.points.data(), kB, kN, true, &fresh);
  EXPECT_EQ(logp(), drawn_by_forward) << "the forward used the mask drawn for the replayed step";
}

}  // namespace
}  // namespace pointnet

namespace pointnet {
namespace {

// A backend that says it can record but cannot start a recording: TrainStep
// must fall back to the op-by-op step with nothing run twice and the same
// dropout mask, so the run equals one that never tried, bit for bit.
class UnrecordableCpu final : public CpuBackend<float> {
 public:
  bool can_record() const override { return true; }
  void begin_recording() override {
    ++attempts;
    fail("capture is not supported here");
  }
  int attempts = 0;
};

TEST(TrainStepRecording, FailedCaptureFallsBackToTheSameSteps) {
  testing::ScopedEnv env;  // restored however the test ends
  env.set("POINTNET_STEP_GRAPHS", "1");
  UnrecordableCpu tries;
  CpuBackend<float> plain_be;
  ModelConfig config;
  config.num_classes = kClasses;
  PointNet<float> a(config, tries), b(config, plain_be);
  Rng init_a(8), init_b(8);
  a.initialize(init_a);
  b.initialize(init_b);
  Adam<float> adam_a(tries, a.params().trainable_count()), adam_b(plain_be, b.params().trainable_count());
  LossScaler scaler_a = LossScaler::disabled(), scaler_b = LossScaler::disabled();
  TrainStep step_a(a, adam_a, scaler_a), step_b(b, adam_b, scaler_b);
  const Batch batch;
  for (int i = 0; i < 5; ++i) {
    Rng drop_a(40 + i), drop_b(40 + i);
    const StepResult ra = step_a.run(batch.points.data(), batch.targets.data(), kB, kN, 1e-3, &drop_a);
    const StepResult rb = step_b.run(batch.points.data(), batch.targets.data(), kB, kN, 1e-3, &drop_b);
    EXPECT_FALSE(step_a.last_step_replayed());
    ASSERT_EQ(ra.loss.total, rb.loss.total) << "step " << i;
    ASSERT_TRUE(snapshot(a, adam_a) == snapshot(b, adam_b)) << "step " << i;
    EXPECT_EQ(drop_a.uniform(), drop_b.uniform()) << "step " << i << ": the dropout streams moved apart";
  }
  EXPECT_EQ(tries.attempts, 1) << "one failed attempt, then the steps run op by op";
}

}  // namespace
}  // namespace pointnet
