// A plain-loop emulation of the int8 engine, written from the contract in
// cpu/int8_gemm.h (not from the runner): which activation is quantised with
// which calibrated scale, integer accumulation, the fma epilogue,
// requantisation, max over points. The runner must match it up to the fp32
// layers' summation order (an occasional one-step flip of a quantised value);
// a layer fed the wrong scale or weights misses by far more.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/int8_gemm.h"
#include "engine/cpu_layers.h"
#include "engine/engine_plan.h"

namespace pointnet::testing {

class Int8Reference {
 public:
  explicit Int8Reference(const EnginePlan& plan) : plan_(plan) {}

  std::vector<float> run(const float* points, int B, int N) const {
    const FoldedModel& m = plan_.model;
    const int C = m.config.input_channels, K = m.config.num_classes;
    const bool seg = m.config.task == ModelTask::Segmentation;
    std::vector<float> out(static_cast<size_t>(B) * (seg ? N : 1) * K);
    for (int b = 0; b < B; ++b) {
      const std::vector<float> x(points + static_cast<size_t>(b) * N * C, points + (static_cast<size_t>(b) + 1) * N * C);
      const std::vector<float> t3 = transform(m.stn, quantize(dense(m.stn.conv1, x, N, true), "stn.h1"), "stn.h1",
                                              "stn.conv2", "stn.h2", "stn.conv3", N);
      FoldedLinear conv1;
      engine_cpu::fold_transform(conv1, m.conv1, t3.data(), 3);
      const std::vector<uint8_t> h1 = quantize(dense(conv1, x, N, true), "h1");
      cpu::Int8Weights w2 = weights("conv2"), wp = seg && !m.has_fstn ? weights("head.0.point") : cpu::Int8Weights{};
      if (m.has_fstn) {
        const std::vector<float> t64 = transform(m.fstn, h1, "h1", "fstn.conv1", "fstn.h1", "fstn.conv2", N, "fstn.h2", "fstn.conv3");
        FoldedLinear c2, hp;
        engine_cpu::fold_transform(c2, m.conv2, t64.data(), 64);
        w2 = cpu::Int8Weights::quantize(c2.weight.data(), 128, 64);
        if (seg) {
          engine_cpu::fold_transform(hp, engine_cpu::columns(m.head[0], 1024, 64), t64.data(), 64);
          wp = cpu::Int8Weights::quantize(hp.weight.data(), 512, 64);
        }
      }
      const std::vector<uint8_t> h2 = requantize(linear(h1, N, "h1", w2, m.conv2.bias, true), "h2");
      std::vector<float> global = max_rows(linear(h2, N, "h2", weights("conv3"), {}, false), N, 1024);
      for (int o = 0; o < 1024; ++o) global[o] += m.conv3.bias[o];
      if (!seg) {
        const std::vector<float> f = dense(m.head[2], dense(m.head[1], dense(m.head[0], global, 1, true), 1, true), 1, false);
        std::copy(f.begin(), f.end(), &out[static_cast<size_t>(b) * K]);
        engine_cpu::log_softmax_rows(&out[static_cast<size_t>(b) * K], 1, K);
        continue;
      }
      std::vector<float> gbias = dense(engine_cpu::columns(m.head[0], 0, 1024), global, 1, false);
      const std::vector<uint8_t> a = requantize(linear(h1, N, "h1", wp, gbias, true), "head.a");
      const std::vector<uint8_t> c = requantize(linear(a, N, "head.a", weights("head.1"), m.head[1].bias, true), "head.c");
      const std::vector<float> d = linear(c, N, "head.c", weights("head.2"), m.head[2].bias, true);
      const std::vector<float> y = dense(m.head[3], d, N, false);
      std::copy(y.begin(), y.end(), &out[static_cast<size_t>(b) * N * K]);
      engine_cpu::log_softmax_rows(&out[static_cast<size_t>(b) * N * K], N, K);
    }
    return out;
  }

 private:
  float s(const std::string& name) const { return plan_.activation_scales.at(name); }
  cpu::Int8Weights weights(const std::string& layer) const {
    const auto it = plan_.int8_weights.find(layer);
    if (it == plan_.int8_weights.end()) return {};
    return cpu::Int8Weights::from_quantized(it->second.q, it->second.scale, it->second.out, it->second.in);
  }

  static std::vector<float> dense(const FoldedLinear& l, const std::vector<float>& x, int M, bool relu) {
    std::vector<float> y(static_cast<size_t>(M) * l.out);
    for (int m = 0; m < M; ++m)
      for (int o = 0; o < l.out; ++o) {
        double acc = l.bias[o];
        for (int i = 0; i < l.in; ++i) acc += static_cast<double>(x[static_cast<size_t>(m) * l.in + i]) * l.weight[static_cast<size_t>(o) * l.in + i];
        y[static_cast<size_t>(m) * l.out + o] = relu ? std::max(static_cast<float>(acc), 0.0f) : static_cast<float>(acc);
      }
    return y;
  }
  std::vector<uint8_t> quantize(const std::vector<float>& x, const std::string& name) const {
    std::vector<uint8_t> q(x.size());
    for (size_t i = 0; i < x.size(); ++i) q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] / s(name)), 0.0f, 255.0f));
    return q;
  }
  std::vector<uint8_t> requantize(const std::vector<float>& v, const std::string& name) const {
    std::vector<uint8_t> q(v.size());
    const float inv = 1.0f / s(name);
    for (size_t i = 0; i < v.size(); ++i) q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(v[i] * inv), 0.0f, 255.0f));
    return q;
  }
  // v = fma(acc, x_scale * w.scale, bias), optional ReLU.
  std::vector<float> linear(const std::vector<uint8_t>& x, int M, const std::string& input, const cpu::Int8Weights& w,
                            const std::vector<float>& bias, bool relu) const {
    std::vector<float> v(static_cast<size_t>(M) * w.out);
    for (int m = 0; m < M; ++m)
      for (int o = 0; o < w.out; ++o) {
        int32_t acc = 0;
        for (int i = 0; i < w.in; ++i) acc += x[static_cast<size_t>(m) * w.in + i] * w.q[static_cast<size_t>(o) * w.in + i];
        const float r = std::fma(static_cast<float>(acc), s(input) * w.scale[o], bias.empty() ? 0.0f : bias[o]);
        v[static_cast<size_t>(m) * w.out + o] = relu ? std::max(r, 0.0f) : r;
      }
    return v;
  }
  static std::vector<float> max_rows(const std::vector<float>& v, int M, int width) {
    std::vector<float> y(width, -INFINITY);
    for (int m = 0; m < M; ++m)
      for (int o = 0; o < width; ++o) y[o] = std::max(y[o], v[static_cast<size_t>(m) * width + o]);
    return y;
  }
  // A T-Net whose input is already quantised (stn: conv1 ran in fp32 before it).
  // Input T-Net: in -> conv2 (u8 mid) -> conv3 max. Feature T-Net: conv1 too.
  std::vector<float> transform(const FoldedTNet& t, const std::vector<uint8_t>& x, const std::string& in_name,
                               const std::string& l1, const std::string& mid, const std::string& l2, int N,
                               const std::string& mid2 = "", const std::string& l3 = "") const {
    const bool three = !l3.empty();  // fstn: conv1, conv2 int8 then conv3's max
    std::vector<uint8_t> a = requantize(linear(x, N, in_name, weights(l1), three ? t.conv1.bias : t.conv2.bias, true), mid);
    std::string last_in = mid, last_layer = l2;
    if (three) {
      a = requantize(linear(a, N, mid, weights(l2), t.conv2.bias, true), mid2);
      last_in = mid2;
      last_layer = l3;
    }
    std::vector<float> g = max_rows(linear(a, N, last_in, weights(last_layer), {}, false), N, 1024);
    for (int o = 0; o < 1024; ++o) g[o] = std::max(g[o] + t.conv3.bias[o], 0.0f);
    return dense(t.fc3, dense(t.fc2, dense(t.fc1, g, 1, true), 1, true), 1, false);
  }

  const EnginePlan& plan_;
};

}  // namespace pointnet::testing
