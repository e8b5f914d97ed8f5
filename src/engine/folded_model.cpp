#include "engine/folded_model.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "model/fold_batchnorm.h"
#include "model/pointnet.h"
#include "train/checkpoint.h"

namespace pointnet {

namespace {

FoldedLinear read_linear(const ParameterReader& get, const std::string& name, int in, int out) {
  FoldedLinear l;
  l.in = in;
  l.out = out;
  l.weight = get(name + ".weight");
  l.bias = get(name + ".bias");
  if (l.weight.size() != static_cast<size_t>(in) * out || l.bias.size() != static_cast<size_t>(out))
    fail("tensor '", name, ".weight' has ", l.weight.size(), " values, expected ", out, " x ", in);
  return l;
}

FoldedLinear read_folded(const ParameterReader& get, const std::string& linear, const std::string& bn, int in, int out) {
  FoldedLinear l = read_linear(get, linear, in, out);
  fold_batchnorm(l.weight, l.bias, get(bn + ".weight"), get(bn + ".bias"), get(bn + ".running_mean"),
                 get(bn + ".running_var"));
  return l;
}

FoldedTNet read_tnet(const ParameterReader& get, const std::string& p, int k, int in_channels) {
  FoldedTNet t;
  t.k = k;
  t.conv1 = read_folded(get, p + ".conv1", p + ".bn1", in_channels, 64);
  t.conv2 = read_folded(get, p + ".conv2", p + ".bn2", 64, 128);
  t.conv3 = read_folded(get, p + ".conv3", p + ".bn3", 128, 1024);
  t.fc1 = read_folded(get, p + ".fc1", p + ".bn4", 1024, 512);
  t.fc2 = read_folded(get, p + ".fc2", p + ".bn5", 512, 256);
  t.fc3 = read_linear(get, p + ".fc3", 256, k * k);
  for (int i = 0; i < k; ++i) t.fc3.bias[static_cast<size_t>(i) * k + i] += 1.0f;  // "+ iden"
  return t;
}

// y(M, out) = x(M, in) W^T + b, optional ReLU.
void apply(const FoldedLinear& l, const float* x, int M, float* y, bool relu) {
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < l.out; ++o) {
      float s = l.bias[o];
      const float* w = &l.weight[static_cast<size_t>(o) * l.in];
      const float* xr = x + static_cast<size_t>(m) * l.in;
      for (int i = 0; i < l.in; ++i) s += xr[i] * w[i];
      y[static_cast<size_t>(m) * l.out + o] = relu ? std::max(s, 0.0f) : s;
    }
}

// Max over the M rows of x W^T + b.
std::vector<float> apply_max(const FoldedLinear& l, const float* x, int M) {
  std::vector<float> z(static_cast<size_t>(M) * l.out), y(l.out, -INFINITY);
  apply(l, x, M, z.data(), false);
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < l.out; ++o) y[o] = std::max(y[o], z[static_cast<size_t>(m) * l.out + o]);
  return y;
}

// One cloud's transform (K, K) from its (N, C) input.
std::vector<float> tnet_transform(const FoldedTNet& t, const float* x, int N) {
  std::vector<float> h1(static_cast<size_t>(N) * 64), h2(static_cast<size_t>(N) * 128);
  apply(t.conv1, x, N, h1.data(), true);
  apply(t.conv2, h1.data(), N, h2.data(), true);
  std::vector<float> g = apply_max(t.conv3, h2.data(), N);
  for (float& v : g) v = std::max(v, 0.0f);
  std::vector<float> f1(512), f2(256), out(static_cast<size_t>(t.k) * t.k);
  apply(t.fc1, g.data(), 1, f1.data(), true);
  apply(t.fc2, f1.data(), 1, f2.data(), true);
  apply(t.fc3, f2.data(), 1, out.data(), false);
  return out;
}

// y(N, K) = x(N, K) t(K, K) for each K-wide group of a row (xyz, then normals).
void transform_rows(float* y, const float* x, const float* t, int N, int K, int width) {
  for (int n = 0; n < N; ++n)
    for (int g = 0; g < width; g += K)
      for (int j = 0; j < K; ++j) {
        float s = 0.0f;
        for (int i = 0; i < K; ++i) s += x[static_cast<size_t>(n) * width + g + i] * t[static_cast<size_t>(i) * K + j];
        y[static_cast<size_t>(n) * width + g + j] = s;
      }
}

void log_softmax_rows(float* x, int M, int K) {
  for (int m = 0; m < M; ++m) {
    float* r = x + static_cast<size_t>(m) * K;
    const float top = *std::max_element(r, r + K);
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += std::exp(static_cast<double>(r[k] - top));
    const float lse = top + static_cast<float>(std::log(sum));
    for (int k = 0; k < K; ++k) r[k] -= lse;
  }
}

FoldedLinear zeros(int in, int out) {
  FoldedLinear l;
  l.in = in;
  l.out = out;
  l.weight.assign(static_cast<size_t>(in) * out, 0.0f);
  l.bias.assign(out, 0.0f);
  return l;
}

FoldedTNet tnet_zeros(int k, int in_channels) {
  FoldedTNet t;
  t.k = k;
  t.conv1 = zeros(in_channels, 64);
  t.conv2 = zeros(64, 128);
  t.conv3 = zeros(128, 1024);
  t.fc1 = zeros(1024, 512);
  t.fc2 = zeros(512, 256);
  t.fc3 = zeros(256, k * k);
  return t;
}

}  // namespace

FoldedModel folded_skeleton(const ModelConfig& config) {
  FoldedModel m;
  m.config = config;
  const int C = config.input_channels, k = config.num_classes;
  m.stn = tnet_zeros(3, C);
  m.conv1 = zeros(C, 64);
  m.conv2 = zeros(64, 128);
  m.conv3 = zeros(128, 1024);
  m.has_fstn = config.feature_transform;
  if (m.has_fstn) m.fstn = tnet_zeros(64, 64);
  if (config.task == ModelTask::Classification) m.head = {zeros(1024, 512), zeros(512, 256), zeros(256, k)};
  else m.head = {zeros(1088, 512), zeros(512, 256), zeros(256, 128), zeros(128, k)};
  return m;
}

FoldedModel fold_model(const Checkpoint& checkpoint) {
  try {
    return fold_model(checkpoint.info.config,
                      [&](const std::string& name) { return checkpoint.file.get(name).as_f32(); });
  } catch (const Error& e) {
    fail(checkpoint.file.source, ": ", e.what());
  }
}

FoldedModel fold_model(const PointNet<float>& model) {
  const ParamStore<float>& store = model.params();
  return fold_model(model.config(), [&](const std::string& name) {
    const int i = store.find(name);
    PN_CHECK(i >= 0);
    std::vector<float> host(store.infos()[i].count);
    model.backend().download(host.data(), store.value(i), host.size());
    return host;
  });
}

FoldedModel fold_model(const ModelConfig& config, const ParameterReader& get) {
  FoldedModel m;
  m.config = config;
  const int C = m.config.input_channels;
  m.stn = read_tnet(get, "feat.stn", 3, C);
  m.conv1 = read_folded(get, "feat.conv1", "feat.bn1", C, 64);
  m.conv2 = read_folded(get, "feat.conv2", "feat.bn2", 64, 128);
  m.conv3 = read_folded(get, "feat.conv3", "feat.bn3", 128, 1024);
  m.has_fstn = m.config.feature_transform;
  if (m.has_fstn) m.fstn = read_tnet(get, "feat.fstn", 64, 64);
  const int k = m.config.num_classes;
  if (m.config.task == ModelTask::Classification) {
    m.head = {read_folded(get, "fc1", "bn1", 1024, 512), read_folded(get, "fc2", "bn2", 512, 256),
              read_linear(get, "fc3", 256, k)};
  } else {
    m.head = {read_folded(get, "conv1", "bn1", 1088, 512), read_folded(get, "conv2", "bn2", 512, 256),
              read_folded(get, "conv3", "bn3", 256, 128), read_linear(get, "conv4", 128, k)};
  }
  return m;
}

std::vector<float> folded_forward_reference(const FoldedModel& model, const float* points, int B, int N) {
  const int C = model.config.input_channels;
  const int k = model.config.num_classes;
  const bool seg = model.config.task == ModelTask::Segmentation;
  std::vector<float> out(static_cast<size_t>(B) * (seg ? N : 1) * k);
  for (int b = 0; b < B; ++b) {
    const float* x = points + static_cast<size_t>(b) * N * C;
    const std::vector<float> t3 = tnet_transform(model.stn, x, N);
    std::vector<float> xt(static_cast<size_t>(N) * C), h1(static_cast<size_t>(N) * 64);
    transform_rows(xt.data(), x, t3.data(), N, 3, C);
    apply(model.conv1, xt.data(), N, h1.data(), true);
    if (model.has_fstn) {
      const std::vector<float> t64 = tnet_transform(model.fstn, h1.data(), N);
      std::vector<float> moved(h1.size());
      transform_rows(moved.data(), h1.data(), t64.data(), N, 64, 64);
      h1 = moved;
    }
    std::vector<float> h2(static_cast<size_t>(N) * 128);
    apply(model.conv2, h1.data(), N, h2.data(), true);
    const std::vector<float> global = apply_max(model.conv3, h2.data(), N);
    if (!seg) {
      std::vector<float> f1(512), f2(256);
      apply(model.head[0], global.data(), 1, f1.data(), true);
      apply(model.head[1], f1.data(), 1, f2.data(), true);
      float* y = &out[static_cast<size_t>(b) * k];
      apply(model.head[2], f2.data(), 1, y, false);
      log_softmax_rows(y, 1, k);
    } else {
      std::vector<float> cat(static_cast<size_t>(N) * 1088), a(static_cast<size_t>(N) * 512),
          c(static_cast<size_t>(N) * 256), d(static_cast<size_t>(N) * 128);
      for (int n = 0; n < N; ++n) {
        std::copy(global.begin(), global.end(), &cat[static_cast<size_t>(n) * 1088]);
        std::copy(&h1[static_cast<size_t>(n) * 64], &h1[static_cast<size_t>(n) * 64] + 64, &cat[static_cast<size_t>(n) * 1088 + 1024]);
      }
      apply(model.head[0], cat.data(), N, a.data(), true);
      apply(model.head[1], a.data(), N, c.data(), true);
      apply(model.head[2], c.data(), N, d.data(), true);
      float* y = &out[static_cast<size_t>(b) * N * k];
      apply(model.head[3], d.data(), N, y, false);
      log_softmax_rows(y, N, k);
    }
  }
  return out;
}

}  // namespace pointnet
