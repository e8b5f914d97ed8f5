// The LibTorch peer of `pointnet bench` (issue 4): pointnet.pytorch's
// PointNetCls without feature transform (fxia22/pointnet.pytorch, model.py),
// written with torch::nn layer for layer as bench/peers/pointnet_torch.py, on
// the weights of one of OUR checkpoints, timed by the rule of `pointnet bench` and
// bench/peers/latency.py (src/bench/latency_stats.cpp itself is compiled in).
//
//   pointnet_libtorch time  --model CKPT [--batch B --points N --threads T --train
//                           --warmup W --iters I --seconds S --seed S]
//   pointnet_libtorch check --model CKPT --input CLOUDS.npy [--threads T]
//   pointnet_libtorch --version
//
// `time` prints one JSON line with `pointnet bench --json`'s field names plus
// "peer": "libtorch" and the library version: eval() under InferenceMode at
// B x N, or with --train one training step (forward with dropout and batch
// statistics, NLL loss read back, backward, Adam lr 1e-3). `check` reads a
// float32 (C, 3, N) batch of clouds, already normalised (cpu_peers.py check
// writes it), and prints {"log_probs": [[...] x C]}.
// A separate CMake project (CMakeLists.txt beside this file), built by
// scripts/bench-cpu.sh only when LibTorch is installed; never part of CI.
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/latency_stats.h"
#include "core/errors.h"
#include "core/safetensors.h"
#include "io/npy.h"

namespace nn = torch::nn;
using pointnet::fail;
using torch::Tensor;

namespace {

nn::Conv1d pointwise(int64_t in, int64_t out) { return nn::Conv1d(nn::Conv1dOptions(in, out, 1)); }

// max over points: (B, C, N) -> (B, C)
Tensor max_over_points(const Tensor& x) { return std::get<0>(torch::max(x, 2, true)).view({-1, x.size(1)}); }

struct STN3dImpl : nn::Module {
  nn::Conv1d conv1{pointwise(3, 64)}, conv2{pointwise(64, 128)}, conv3{pointwise(128, 1024)};
  nn::Linear fc1{1024, 512}, fc2{512, 256}, fc3{256, 9};
  nn::BatchNorm1d bn1{64}, bn2{128}, bn3{1024}, bn4{512}, bn5{256};

  STN3dImpl() {
    register_module("conv1", conv1), register_module("conv2", conv2), register_module("conv3", conv3);
    register_module("fc1", fc1), register_module("fc2", fc2), register_module("fc3", fc3);
    register_module("bn1", bn1), register_module("bn2", bn2), register_module("bn3", bn3);
    register_module("bn4", bn4), register_module("bn5", bn5);
  }
  Tensor forward(Tensor x) {  // (B, 3, N) -> (B, 3, 3)
    const int64_t batch = x.size(0);
    x = torch::relu(bn1(conv1(x)));
    x = torch::relu(bn2(conv2(x)));
    x = torch::relu(bn3(conv3(x)));
    x = max_over_points(x);
    x = torch::relu(bn4(fc1(x)));
    x = torch::relu(bn5(fc2(x)));
    x = fc3(x) + torch::eye(3, x.options()).view({1, 9}).repeat({batch, 1});
    return x.view({-1, 3, 3});
  }
};
TORCH_MODULE(STN3d);

struct PointNetfeatImpl : nn::Module {  // global_feat=True, feature_transform=False
  STN3d stn;
  nn::Conv1d conv1{pointwise(3, 64)}, conv2{pointwise(64, 128)}, conv3{pointwise(128, 1024)};
  nn::BatchNorm1d bn1{64}, bn2{128}, bn3{1024};

  PointNetfeatImpl() {
    register_module("stn", stn);
    register_module("conv1", conv1), register_module("conv2", conv2), register_module("conv3", conv3);
    register_module("bn1", bn1), register_module("bn2", bn2), register_module("bn3", bn3);
  }
  Tensor forward(Tensor x) {  // (B, 3, N) -> (B, 1024)
    const Tensor trans = stn(x);
    x = torch::bmm(x.transpose(2, 1), trans).transpose(2, 1);
    x = torch::relu(bn1(conv1(x)));
    x = torch::relu(bn2(conv2(x)));
    x = bn3(conv3(x));
    return max_over_points(x);
  }
};
TORCH_MODULE(PointNetfeat);

struct PointNetClsImpl : nn::Module {
  PointNetfeat feat;
  nn::Linear fc1{1024, 512}, fc2{512, 256}, fc3;
  nn::Dropout dropout{0.3};
  nn::BatchNorm1d bn1{512}, bn2{256};

  explicit PointNetClsImpl(int64_t k) : fc3(256, k) {
    register_module("feat", feat);
    register_module("fc1", fc1), register_module("fc2", fc2), register_module("fc3", fc3);
    register_module("dropout", dropout), register_module("bn1", bn1), register_module("bn2", bn2);
  }
  Tensor forward(Tensor x) {  // (B, 3, N) -> log-probs (B, k)
    x = feat(x);
    x = torch::relu(bn1(fc1(x)));
    x = torch::relu(bn2(dropout(fc2(x))));
    return torch::log_softmax(fc3(x), 1);
  }
};
TORCH_MODULE(PointNetCls);

// Copies every parameter and buffer from the checkpoint by pointnet.pytorch's
// state_dict name; as load_state_dict(strict=True), a missing, extra or
// differently shaped tensor is an error (the Adam moments optimizer.* aside).
PointNetCls load_model(const std::string& path) {
  const pointnet::SafeTensors file = pointnet::read_safetensors(path);
  auto meta = file.metadata.find("pointnet");
  if (file.metadata.count("format") == 0 || file.metadata.at("format") != "pointnet-checkpoint" ||
      meta == file.metadata.end())
    fail(path, ": not a pointnet checkpoint (no metadata 'format': 'pointnet-checkpoint' and 'pointnet')");
  const nlohmann::json info = nlohmann::json::parse(meta->second);
  if (info.at("task") != "cls" || info.at("feature_transform") != false || info.at("input_channels") != 3)
    fail(path, ": the LibTorch peer runs classifiers without feature transform on xyz only; this is task ",
         info.at("task"), ", feature_transform ", info.at("feature_transform"), ", input_channels ",
         info.at("input_channels"));
  PointNetCls model(info.at("num_classes").get<int64_t>());
  torch::NoGradGuard no_grad;
  std::set<std::string> loaded;
  auto copy = [&](const std::string& name, Tensor& into) {
    const pointnet::TensorData& t = file.get(name);
    if (t.shape != into.sizes().vec())
      fail(path, ": tensor '", name, "' has shape ", c10::IntArrayRef(t.shape), ", the model expects ",
           into.sizes());
    if (into.scalar_type() == torch::kLong) {
      std::vector<int64_t> v = t.as_i64();
      into.copy_(torch::from_blob(v.data(), into.sizes(), torch::kLong));
    } else {
      std::vector<float> v = t.as_f32();
      into.copy_(torch::from_blob(v.data(), into.sizes(), torch::kFloat));
    }
    loaded.insert(name);
  };
  for (auto& p : model->named_parameters()) copy(p.key(), p.value());
  for (auto& b : model->named_buffers()) copy(b.key(), b.value());
  for (const auto& [name, t] : file.tensors)
    if (name.rfind("optimizer.", 0) != 0 && loaded.count(name) == 0)
      fail(path, ": tensor '", name, "' is not in pointnet.pytorch's PointNetCls (no feature transform)");
  return model;
}

double rss_mb() {  // resident memory now (VmRSS), as latency.py's rss_mb
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

struct Options {
  std::string command, model, input;
  int64_t batch = 32, points = 1024, seed = 1;
  int threads = 1, warmup = 3, iters = 0;
  double seconds = 0.0;
  bool train = false;
};

Options parse(int argc, char** argv) {
  if (argc < 2) fail("usage: see the top of bench/peers/libtorch/pointnet_libtorch.cpp");
  Options o;
  o.command = argv[1];
  if (o.command != "time" && o.command != "check") fail("unknown command '", o.command, "' (time or check)");
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--train") {
      o.train = true;
      continue;
    }
    if (i + 1 >= argc) fail(flag, ": expected a value");
    const std::string value = argv[++i];
    if (flag == "--model") o.model = value;
    else if (flag == "--input") o.input = value;
    else if (flag == "--batch") o.batch = std::stoll(value);
    else if (flag == "--points") o.points = std::stoll(value);
    else if (flag == "--seed") o.seed = std::stoll(value);
    else if (flag == "--threads") o.threads = std::stoi(value);
    else if (flag == "--warmup") o.warmup = std::stoi(value);
    else if (flag == "--iters") o.iters = std::stoi(value);
    else if (flag == "--seconds") o.seconds = std::stod(value);
    else fail("unknown flag '", flag, "'");
  }
  if (o.model.empty()) fail("--model CKPT is required");
  if (o.command == "check" && o.input.empty()) fail("check: --input CLOUDS.npy is required");
  if (o.batch < 1 || o.points < 1 || o.threads < 1 || o.warmup < 0 || o.iters < 0 || o.seconds < 0)
    fail("--batch, --points and --threads must be positive, --warmup, --iters and --seconds not negative");
  return o;
}

int check_model(const Options& o, PointNetCls& model) {
  const pointnet::NpyArray clouds = pointnet::read_npy(o.input);
  if (clouds.shape.size() != 3 || clouds.shape[1] != 3)
    fail(o.input, ": expected a (clouds, 3, points) array, found ", c10::IntArrayRef(clouds.shape));
  model->eval();
  torch::InferenceMode guard;
  std::vector<float> values = clouds.values;
  const Tensor log_probs = model(torch::from_blob(values.data(), clouds.shape, torch::kFloat)).contiguous();
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t c = 0; c < log_probs.size(0); ++c) {
    const float* row = log_probs[c].data_ptr<float>();
    rows.push_back(std::vector<float>(row, row + log_probs.size(1)));
  }
  std::cout << nlohmann::json{{"peer", "libtorch"}, {"log_probs", rows}}.dump() << std::endl;
  return 0;
}

int time_model(const Options& o, PointNetCls& model, int64_t classes, double baseline_mb) {
  torch::manual_seed(o.seed);
  const Tensor x = torch::rand({o.batch, 3, o.points}) * 2 - 1;  // uniform in [-1, 1)^3, as `pointnet bench`
  const Tensor y = torch::randint(classes, {o.batch}, torch::kLong);
  std::function<void()> step;
  std::unique_ptr<torch::optim::Adam> adam;
  if (o.train) {  // as `pointnet bench --train` and cpu_peers.py's torch-train
    model->train();
    adam = std::make_unique<torch::optim::Adam>(model->parameters(),
                                                torch::optim::AdamOptions(1e-3).betas({0.9, 0.999}));
    step = [&] {
      model->zero_grad(/*set_to_none=*/true);
      const Tensor loss = torch::nll_loss(model(x), y);
      loss.backward();
      adam->step();
      (void)loss.item<float>();
    };
  } else {
    model->eval();
    step = [&] {
      torch::InferenceMode guard;
      model(x);
    };
  }
  pointnet::TimingPlan plan;  // `pointnet bench`'s rule (tools/cli/cmd_bench.cpp)
  plan.warmup = o.warmup;
  if (o.iters > 0) {
    plan.min_iters = plan.max_iters = o.iters;
  } else if (o.seconds > 0) {
    plan.min_iters = 1, plan.min_seconds = o.seconds;
  } else {
    plan.min_iters = 10, plan.min_seconds = 3.0;
  }
  const pointnet::LatencyStats s = pointnet::summarize_latencies(pointnet::time_iterations(plan, step, nullptr));
  const nlohmann::json out = {
      {"peer", "libtorch"}, {"libtorch", TORCH_VERSION}, {"task", "cls"}, {"device", "cpu"},
      {"precision", "fp32"}, {"batch", o.batch}, {"points", o.points}, {"train", o.train},
      {"feature_transform", false}, {"classes", classes}, {"model", o.model}, {"seed", o.seed},
      {"threads", torch::get_num_threads()}, {"warmup", o.warmup}, {"iters", s.count},
      {"clouds_per_s", o.batch / s.median},
      {"latency_ms", {{"median", 1e3 * s.median}, {"p99", 1e3 * s.p99}, {"min", 1e3 * s.min},
                      {"mean", 1e3 * s.mean}, {"max", 1e3 * s.max}}},
      {"cv", s.cv}, {"peak_rss_mb", pointnet::peak_rss_mb()}, {"baseline_rss_mb", baseline_mb}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::puts(TORCH_VERSION);
    return 0;
  }
  try {
    const Options o = parse(argc, argv);
    at::set_num_interop_threads(1);  // before any parallel work, as cpu_peers.py
    torch::set_num_threads(o.threads);
    const double baseline_mb = rss_mb();  // the libraries alone, before the model
    PointNetCls model = load_model(o.model);
    if (o.command == "check") return check_model(o, model);
    return time_model(o, model, model->fc3->options.out_features(), baseline_mb);
  } catch (const std::exception& e) {  // pointnet::Error, c10::Error, nlohmann's, std::stoi's
    std::fprintf(stderr, "pointnet_libtorch: %s\n", e.what());
    return 1;
  }
}
