#include "engine/cpu_runner.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "core/env_choice.h"
#include "core/errors.h"
#include "core/parallel_for.h"
#include "cpu/f32_linear_max.h"
#include "cpu/int8_gemm.h"
#include "engine/cpu_layers.h"

namespace pointnet {

using namespace engine_cpu;

// int8 engines (plan.precision INT8): the layers int8_layers() lists run as
// u8 x s8 GEMMs (cpu/int8_gemm.h); each reads its input activation quantised
// with the calibrated scale and writes the next one already quantised, so
// between int8 layers activations stay u8 (4x less memory traffic than fp32).
struct CpuRunner::Impl {
  EnginePlan plan;
  const bool int8;
  FoldedLinear head1_global, head1_point;  // seg: the 1088 -> 512 layer split by input columns
  std::map<std::string, cpu::Int8Weights> qw;   // int8: the fixed layers' packed weights
  std::map<std::string, float> scale;           // int8: activation -> scale
  // fp32: the 128 -> 1024 layers as panels for the fused GEMM + max kernel
  // (cpu/f32_linear_max.h), where the CPU has AVX-512 and
  // POINTNET_CPU_FP32_MAX is not "blas" (OpenBLAS's GEMM, then the max).
  bool fused_max = false;
  cpu::F32PanelWeights stn_conv3, fstn_conv3, conv3;
  Observer observer;
  std::mutex observer_mutex;

  // Grow-only buffers (the arena).
  int B = 0, N = 0;
  std::vector<float> partial;               // (B, tiles, 1024) tiles' maxima
  std::vector<float> global, fc_a, fc_b, transforms;
  std::vector<float> h1;                    // fp32: (B, N, 64) conv1 output, kept when fstn or seg reads it again
  std::vector<uint8_t> h1_q;                // int8: the same, quantised
  std::vector<FoldedLinear> conv1_cloud, conv2_cloud, head1_point_cloud;  // per-cloud folded transforms
  std::vector<cpu::Int8Weights> conv2_cloud_q, head1_point_cloud_q;      // int8: the same, quantised
  std::vector<float> seg_bias;              // (B, 512) head1's global part + bias
  std::vector<std::vector<float>> thread_scratch;
  std::vector<std::vector<uint8_t>> thread_scratch_q;

  explicit Impl(const EnginePlan& p) : plan(p), int8(p.precision == EnginePrecision::INT8) {
    if (plan.model.config.task == ModelTask::Segmentation) {
      head1_global = columns(plan.model.head[0], 0, 1024);
      head1_point = columns(plan.model.head[0], 1024, 64);
    }
    if (!int8) {
      fused_max = std::string(cpu_fp32_max_kernel()) == "avx512-fused";
      if (!fused_max) return;
      const auto pack = [](const FoldedLinear& l) { return cpu::pack_f32_panels(l.weight.data(), l.out, l.in); };
      stn_conv3 = pack(plan.model.stn.conv3);
      if (plan.model.has_fstn) fstn_conv3 = pack(plan.model.fstn.conv3);
      conv3 = pack(plan.model.conv3);
      return;
    }
    for (const Int8Layer& il : int8_layers(plan.model)) {
      scale[il.input] = plan.activation_scales.at(il.input);
      if (il.per_cloud) continue;
      const Int8LayerWeights& w = plan.int8_weights.at(il.layer);
      qw.emplace(il.layer, cpu::Int8Weights::from_quantized(w.q, w.scale, w.out, w.in));
    }
    for (const std::string& name : int8_activation_names(plan.model)) scale.at(name);  // every one calibrated
  }

  void observe(const char* name, const float* x, size_t count) {
    if (!observer) return;
    std::lock_guard<std::mutex> lock(observer_mutex);
    observer(name, x, count);
  }

  void reserve(int b, int n) {
    // Per thread: four fp32 and three u8 tile-sized blocks of up to 1024
    // channels (the thread count may change between runs).
    const size_t threads = static_cast<size_t>(omp_get_max_threads());
    if (thread_scratch.size() < threads) {
      thread_scratch.resize(threads, std::vector<float>(4 * kTile * 1024));
      thread_scratch_q.resize(threads, std::vector<uint8_t>(int8 ? 3 * kTile * 1024 : 0));
    }
    if (b <= B && n <= N) return;
    B = std::max(B, b);
    N = std::max(N, n);
    const size_t tiles = static_cast<size_t>(tiles_of(N));
    partial.resize(static_cast<size_t>(B) * tiles * 1024);
    global.resize(static_cast<size_t>(B) * 1024);
    fc_a.resize(static_cast<size_t>(B) * 512);
    fc_b.resize(static_cast<size_t>(B) * 512);
    transforms.resize(static_cast<size_t>(B) * 64 * 64);
    (int8 ? h1_q.resize(static_cast<size_t>(B) * N * 64) : h1.resize(static_cast<size_t>(B) * N * 64));
    conv1_cloud.resize(B);
    conv2_cloud.resize(B);
    head1_point_cloud.resize(B);
    conv2_cloud_q.resize(B);
    head1_point_cloud_q.resize(B);
    seg_bias.resize(static_cast<size_t>(B) * 512);
  }

  float* scratch(int block) {
    return thread_scratch[static_cast<size_t>(omp_get_thread_num())].data() + static_cast<size_t>(block) * kTile * 1024;
  }
  uint8_t* scratch_q(int block) {
    return thread_scratch_q[static_cast<size_t>(omp_get_thread_num())].data() + static_cast<size_t>(block) * kTile * 1024;
  }

  // Runs fn(b, tile, first_row, rows) over every (cloud, tile) item.
  template <typename Fn>
  void for_tiles(int b_count, int n, Fn fn) {
    const int t = tiles_of(n);
    parallel_for(static_cast<size_t>(b_count) * t, [&](size_t item) {
      const int b = static_cast<int>(item / t), tile = static_cast<int>(item % t);
      const int first = tile * kTile;
      fn(b, tile, first, std::min(kTile, n - first));
    });
  }

  // ymax = max over the tile's rows of x l.weight^T (no bias), fused or not.
  void conv3_max(float* ymax, const float* x, int rows, const FoldedLinear& l, const cpu::F32PanelWeights& panels) {
    if (!fused_max) return dense_max(ymax, x, rows, l, scratch(2));
    std::fill(ymax, ymax + l.out, -INFINITY);
    cpu::f32_linear_max(ymax, x, rows, panels);
  }

  float* partial_of(int b, int tile, int n) { return &partial[(static_cast<size_t>(b) * tiles_of(n) + tile) * 1024]; }

  // The int8 max over a tile's rows, into a fresh partial (bias after the merge).
  void int8_max(float* ymax, const uint8_t* x, int rows, const char* input, const cpu::Int8Weights& w) {
    std::fill(ymax, ymax + w.out, -INFINITY);
    cpu::int8_linear_max(ymax, x, rows, scale.at(input), w, nullptr);
  }

  // global(B, 1024) = max over tiles of partial + bias, then optional ReLU.
  void merge_tiles(int b_count, int n, const FoldedLinear& l, bool relu) {
    const int t = tiles_of(n);
    for (int b = 0; b < b_count; ++b) {
      float* g = &global[static_cast<size_t>(b) * 1024];
      const float* p = &partial[static_cast<size_t>(b) * t * 1024];
      std::copy(p, p + 1024, g);
      for (int k = 1; k < t; ++k)
        for (int o = 0; o < 1024; ++o) g[o] = std::max(g[o], p[static_cast<size_t>(k) * 1024 + o]);
      for (int o = 0; o < 1024; ++o) g[o] = relu ? std::max(g[o] + l.bias[o], 0.0f) : g[o] + l.bias[o];
    }
  }

  // The T-Net's fc layers over global (B, 1024) -> transforms (B, K*K).
  void tnet_head(const FoldedTNet& t, int b_count) {
    dense_rows(fc_a.data(), global.data(), b_count, t.fc1, true);
    dense_rows(fc_b.data(), fc_a.data(), b_count, t.fc2, true);
    dense_rows(transforms.data(), fc_b.data(), b_count, t.fc3, false);
  }

  // The input T-Net over the points (fp32 conv1, then int8 in an int8 engine).
  void stn(const float* points, int C, int b_count, int n) {
    const FoldedTNet& t = plan.model.stn;
    for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
      const float* xt = points + (static_cast<size_t>(b) * n + first) * C;
      float* a = scratch(0);
      dense(a, xt, rows, t.conv1, t.conv1.bias.data(), true);
      if (int8) {
        uint8_t *aq = scratch_q(0), *cq = scratch_q(1);
        cpu::quantize_u8(aq, a, static_cast<size_t>(rows) * 64, scale.at("stn.h1"));
        cpu::int8_linear_u8(cq, aq, rows, scale.at("stn.h1"), qw.at("stn.conv2"), t.conv2.bias.data(), true,
                            scale.at("stn.h2"));
        int8_max(partial_of(b, tile, n), cq, rows, "stn.h2", qw.at("stn.conv3"));
        return;
      }
      observe("stn.h1", a, static_cast<size_t>(rows) * 64);
      float* c = scratch(1);
      dense(c, a, rows, t.conv2, t.conv2.bias.data(), true);
      observe("stn.h2", c, static_cast<size_t>(rows) * 128);
      conv3_max(partial_of(b, tile, n), c, rows, t.conv3, stn_conv3);
    });
    merge_tiles(b_count, n, t.conv3, true);
    tnet_head(t, b_count);
  }

  // The feature T-Net over the kept conv1 output h1 (or h1_q).
  void fstn(int b_count, int n) {
    const FoldedTNet& t = plan.model.fstn;
    for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
      const size_t row0 = static_cast<size_t>(b) * n + first;
      if (int8) {
        uint8_t *aq = scratch_q(0), *cq = scratch_q(1);
        cpu::int8_linear_u8(aq, &h1_q[row0 * 64], rows, scale.at("h1"), qw.at("fstn.conv1"), t.conv1.bias.data(),
                            true, scale.at("fstn.h1"));
        cpu::int8_linear_u8(cq, aq, rows, scale.at("fstn.h1"), qw.at("fstn.conv2"), t.conv2.bias.data(), true,
                            scale.at("fstn.h2"));
        int8_max(partial_of(b, tile, n), cq, rows, "fstn.h2", qw.at("fstn.conv3"));
        return;
      }
      float *a = scratch(0), *c = scratch(1);
      dense(a, &h1[row0 * 64], rows, t.conv1, t.conv1.bias.data(), true);
      observe("fstn.h1", a, static_cast<size_t>(rows) * 64);
      dense(c, a, rows, t.conv2, t.conv2.bias.data(), true);
      observe("fstn.h2", c, static_cast<size_t>(rows) * 128);
      conv3_max(partial_of(b, tile, n), c, rows, t.conv3, fstn_conv3);
    });
    merge_tiles(b_count, n, t.conv3, true);
    tnet_head(t, b_count);
  }

  // conv2 then conv3's max over a tile whose conv1 output is a (fp32) or aq (u8).
  void conv2_conv3(int b, int tile, int n, const float* a, const uint8_t* aq, int rows) {
    const FoldedModel& m = plan.model;
    if (int8) {
      const cpu::Int8Weights& w2 = m.has_fstn ? conv2_cloud_q[b] : qw.at("conv2");
      uint8_t* cq = scratch_q(1);
      cpu::int8_linear_u8(cq, aq, rows, scale.at("h1"), w2, m.conv2.bias.data(), true, scale.at("h2"));
      int8_max(partial_of(b, tile, n), cq, rows, "h2", qw.at("conv3"));
      return;
    }
    float* c = scratch(1);
    dense(c, a, rows, m.has_fstn ? conv2_cloud[b] : m.conv2, m.conv2.bias.data(), true);
    observe("h2", c, static_cast<size_t>(rows) * 128);
    conv3_max(partial_of(b, tile, n), c, rows, m.conv3, conv3);
  }

  // The segmenter's per-point head over one tile, log-probs into y.
  void seg_head(int b, const float* a, const uint8_t* aq, int rows, float* y) {
    const FoldedModel& m = plan.model;
    const float* bias = &seg_bias[static_cast<size_t>(b) * 512];
    float *s0 = scratch(0), *s1 = scratch(1), *s2 = scratch(2);
    if (int8) {
      const cpu::Int8Weights& wp = m.has_fstn ? head1_point_cloud_q[b] : qw.at("head.0.point");
      uint8_t *q0 = scratch_q(1), *q1 = scratch_q(2);
      cpu::int8_linear_u8(q0, aq, rows, scale.at("h1"), wp, bias, true, scale.at("head.a"));
      cpu::int8_linear_u8(q1, q0, rows, scale.at("head.a"), qw.at("head.1"), m.head[1].bias.data(), true,
                          scale.at("head.c"));
      cpu::int8_linear_f32(s2, q1, rows, scale.at("head.c"), qw.at("head.2"), m.head[2].bias.data(), true);
    } else {
      dense(s0, a, rows, m.has_fstn ? head1_point_cloud[b] : head1_point, bias, true);
      observe("head.a", s0, static_cast<size_t>(rows) * 512);
      dense(s1, s0, rows, m.head[1], m.head[1].bias.data(), true);
      observe("head.c", s1, static_cast<size_t>(rows) * 256);
      dense(s2, s1, rows, m.head[2], m.head[2].bias.data(), true);
    }
    const int K = m.config.num_classes;
    dense(y, s2, rows, m.head[3], m.head[3].bias.data(), false);
    log_softmax_rows(y, rows, K);
  }

  void run(const float* points, int b_count, int n, float* out) {
    const FoldedModel& m = plan.model;
    const int C = m.config.input_channels, K = m.config.num_classes;
    const bool seg = m.config.task == ModelTask::Segmentation;
    const bool keep_h1 = seg || m.has_fstn;
    reserve(b_count, n);

    stn(points, C, b_count, n);
    for (int b = 0; b < b_count; ++b) fold_transform(conv1_cloud[b], m.conv1, &transforms[static_cast<size_t>(b) * 9], 3);

    // conv1 (+ conv2, conv3 and the max when nothing needs h1 again).
    for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
      const size_t row0 = static_cast<size_t>(b) * n + first;
      float* a = keep_h1 && !int8 ? &h1[row0 * 64] : scratch(0);
      uint8_t* aq = !int8 ? nullptr : keep_h1 ? &h1_q[row0 * 64] : scratch_q(0);
      dense(a, points + row0 * C, rows, conv1_cloud[b], m.conv1.bias.data(), true);
      if (int8) cpu::quantize_u8(aq, a, static_cast<size_t>(rows) * 64, scale.at("h1"));
      else observe("h1", a, static_cast<size_t>(rows) * 64);
      if (!m.has_fstn) conv2_conv3(b, tile, n, a, aq, rows);
    });
    if (m.has_fstn) {
      fstn(b_count, n);
      for (int b = 0; b < b_count; ++b) {
        const float* t = &transforms[static_cast<size_t>(b) * 64 * 64];
        fold_transform(conv2_cloud[b], m.conv2, t, 64);
        if (seg) fold_transform(head1_point_cloud[b], head1_point, t, 64);
        if (!int8) continue;
        // The transform changes every cloud's weights: quantise them per cloud.
        conv2_cloud_q[b] = cpu::Int8Weights::quantize(conv2_cloud[b].weight.data(), 128, 64);
        if (seg) head1_point_cloud_q[b] = cpu::Int8Weights::quantize(head1_point_cloud[b].weight.data(), 512, 64);
      }
      for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
        const size_t row0 = static_cast<size_t>(b) * n + first;
        conv2_conv3(b, tile, n, int8 ? nullptr : &h1[row0 * 64], int8 ? &h1_q[row0 * 64] : nullptr, rows);
      });
    }
    merge_tiles(b_count, n, m.conv3, false);

    if (!seg) {
      dense_rows(fc_a.data(), global.data(), b_count, m.head[0], true);
      dense_rows(fc_b.data(), fc_a.data(), b_count, m.head[1], true);
      dense_rows(out, fc_b.data(), b_count, m.head[2], false);
      log_softmax_rows(out, b_count, K);
      return;
    }
    // Segmenter: head1's global part once per cloud, as a per-cloud bias.
    dense_rows(seg_bias.data(), global.data(), b_count, head1_global, false);
    for_tiles(b_count, n, [&](int b, int, int first, int rows) {
      const size_t row0 = static_cast<size_t>(b) * n + first;
      seg_head(b, int8 ? nullptr : &h1[row0 * 64], int8 ? &h1_q[row0 * 64] : nullptr, rows, out + row0 * K);
    });
  }
};

CpuRunner::CpuRunner(const EnginePlan& plan) {
  if (plan.precision != EnginePrecision::FP32 && plan.precision != EnginePrecision::INT8)
    fail("the CPU runs fp32 and int8 engines; this one is ", precision_name(plan.precision));
  impl_ = std::make_unique<Impl>(plan);
}

CpuRunner::~CpuRunner() = default;

void CpuRunner::run(const float* points, int B, int N, float* log_probs) {
  if (B < 1 || N < 1) fail("engine input needs at least 1 cloud of 1 point, got ", B, " x ", N);
  impl_->run(points, B, N, log_probs);
}

void CpuRunner::set_observer(Observer observer) {
  if (impl_->int8) fail("calibration observes an fp32 engine, not an int8 one");
  impl_->observer = std::move(observer);
}

const char* cpu_fp32_max_kernel() {
  const bool blas = env_choice("POINTNET_CPU_FP32_MAX", {"fused", "blas"}) == "blas";
  return cpu::f32_linear_max_available() && !blas ? "avx512-fused" : "openblas";
}

const char* CpuRunner::int8_kernel() const { return impl_->int8 ? cpu::int8_kernel_name() : "-"; }

}  // namespace pointnet
