#include "engine/cpu_runner.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/errors.h"
#include "core/parallel_for.h"

namespace pointnet {

namespace {

// Rows per work item. A 128 x 1024 fp32 block (512 KiB) stays in a core's L2
// between the GEMM that writes it and the max that reads it.
constexpr int kTile = 128;

// y(M, out) = x(M, in) W^T + bias, optional ReLU; single-threaded (we are
// inside an OpenMP region: OpenBLAS's OpenMP build then runs on one thread).
void dense(float* y, const float* x, int M, const FoldedLinear& l, const float* bias, bool relu) {
  if (l.in <= 8) {  // conv1 over xyz (+ normals): too thin for a GEMM
    for (int m = 0; m < M; ++m) {
      float* yr = y + static_cast<size_t>(m) * l.out;
      const float* xr = x + static_cast<size_t>(m) * l.in;
      for (int o = 0; o < l.out; ++o) {
        float s = bias[o];
        for (int i = 0; i < l.in; ++i) s += xr[i] * l.weight[static_cast<size_t>(o) * l.in + i];
        yr[o] = relu ? std::max(s, 0.0f) : s;
      }
    }
    return;
  }
  for (int m = 0; m < M; ++m) std::memcpy(y + static_cast<size_t>(m) * l.out, bias, sizeof(float) * l.out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 1.0f,
              y, l.out);
  if (relu)
    for (size_t i = 0, n = static_cast<size_t>(M) * l.out; i < n; ++i) y[i] = std::max(y[i], 0.0f);
}

// ymax(out) = max over the M rows of x W^T (no bias: it commutes with the
// max and is added once per cloud). scratch: M * out floats.
void dense_max(float* ymax, const float* x, int M, const FoldedLinear& l, float* scratch) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 0.0f,
              scratch, l.out);
  std::copy(scratch, scratch + l.out, ymax);
  for (int m = 1; m < M; ++m) {
    const float* r = scratch + static_cast<size_t>(m) * l.out;
    for (int o = 0; o < l.out; ++o) ymax[o] = std::max(ymax[o], r[o]);
  }
}

// Rows of a per-cloud layer, all clouds at once (multi-threaded OpenBLAS).
void dense_rows(float* y, const float* x, int rows, const FoldedLinear& l, bool relu) {
  for (int m = 0; m < rows; ++m) std::memcpy(y + static_cast<size_t>(m) * l.out, l.bias.data(), sizeof(float) * l.out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 1.0f,
              y, l.out);
  if (relu)
    for (size_t i = 0, n = static_cast<size_t>(rows) * l.out; i < n; ++i) y[i] = std::max(y[i], 0.0f);
}

void log_softmax_rows(float* x, int M, int K) {
  for (int m = 0; m < M; ++m) {
    float* r = x + static_cast<size_t>(m) * K;
    const float top = *std::max_element(r, r + K);
    float sum = 0.0f;
    for (int k = 0; k < K; ++k) sum += std::exp(r[k] - top);
    const float lse = top + std::log(sum);
    for (int k = 0; k < K; ++k) r[k] -= lse;
  }
}

// The per-cloud transform t (K, K) applied before a layer, folded into its
// weights: (x t) W^T = x (W t^T)^T, so W'[o][i] = sum_j W[o][j] t[i][j], for
// each K-wide group of the layer's inputs (xyz, then normals).
void fold_transform(FoldedLinear& dst, const FoldedLinear& src, const float* t, int K) {
  dst.in = src.in;
  dst.out = src.out;
  dst.weight.resize(src.weight.size());
  dst.bias = src.bias;
  for (int o = 0; o < src.out; ++o)
    for (int g = 0; g < src.in; g += K)
      for (int i = 0; i < K; ++i) {
        float s = 0.0f;
        for (int j = 0; j < K; ++j) s += src.weight[static_cast<size_t>(o) * src.in + g + j] * t[static_cast<size_t>(i) * K + j];
        dst.weight[static_cast<size_t>(o) * src.in + g + i] = s;
      }
}

FoldedLinear columns(const FoldedLinear& l, int first, int count) {
  FoldedLinear c;
  c.in = count;
  c.out = l.out;
  c.bias = l.bias;
  c.weight.resize(static_cast<size_t>(count) * l.out);
  for (int o = 0; o < l.out; ++o)
    std::copy_n(&l.weight[static_cast<size_t>(o) * l.in + first], count, &c.weight[static_cast<size_t>(o) * count]);
  return c;
}

int tiles_of(int N) { return (N + kTile - 1) / kTile; }

}  // namespace

struct CpuRunner::Impl {
  EnginePlan plan;
  FoldedLinear head1_global, head1_point;  // seg: the 1088 -> 512 layer split by input columns
  Observer observer;
  std::mutex observer_mutex;

  // Grow-only buffers (the arena).
  int B = 0, N = 0;
  std::vector<float> partial;               // (B, tiles, 1024) tiles' maxima
  std::vector<float> global, fc_a, fc_b, transforms;
  std::vector<float> h1;                    // (B, N, 64) conv1 output, kept when fstn or seg needs it again
  std::vector<FoldedLinear> conv1_cloud, conv2_cloud, head1_point_cloud;  // per-cloud folded transforms
  std::vector<float> seg_bias;              // (B, 512) head1's global part + bias
  std::vector<std::vector<float>> thread_scratch;

  explicit Impl(const EnginePlan& p) : plan(p) {
    if (plan.model.config.task == ModelTask::Segmentation) {
      head1_global = columns(plan.model.head[0], 0, 1024);
      head1_point = columns(plan.model.head[0], 1024, 64);
    }
  }

  void observe(const char* name, const float* x, size_t count) {
    if (!observer) return;
    std::lock_guard<std::mutex> lock(observer_mutex);
    observer(name, x, count);
  }

  void reserve(int b, int n) {
    // Per thread: four tile-sized blocks of up to 1024 channels (the thread count may change between runs).
    const size_t threads = static_cast<size_t>(omp_get_max_threads());
    if (thread_scratch.size() < threads) thread_scratch.resize(threads, std::vector<float>(4 * kTile * 1024));
    if (b <= B && n <= N) return;
    B = std::max(B, b);
    N = std::max(N, n);
    const size_t tiles = static_cast<size_t>(tiles_of(N));
    partial.resize(static_cast<size_t>(B) * tiles * 1024);
    global.resize(static_cast<size_t>(B) * 1024);
    fc_a.resize(static_cast<size_t>(B) * 512);
    fc_b.resize(static_cast<size_t>(B) * 512);
    transforms.resize(static_cast<size_t>(B) * 64 * 64);
    h1.resize(static_cast<size_t>(B) * N * 64);
    conv1_cloud.resize(B);
    conv2_cloud.resize(B);
    head1_point_cloud.resize(B);
    seg_bias.resize(static_cast<size_t>(B) * 512);
  }

  float* scratch(int block) { return thread_scratch[static_cast<size_t>(omp_get_thread_num())].data() + static_cast<size_t>(block) * kTile * 1024; }

  // Runs fn(b, first_row, rows) over every (cloud, tile) item.
  template <typename Fn>
  void for_tiles(int b_count, int n, Fn fn) {
    const int t = tiles_of(n);
    parallel_for(static_cast<size_t>(b_count) * t, [&](size_t item) {
      const int b = static_cast<int>(item / t), tile = static_cast<int>(item % t);
      const int first = tile * kTile;
      fn(b, tile, first, std::min(kTile, n - first));
    });
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

  // A T-Net's per-point part over input rows x (n per cloud, width wide), up to transforms.
  void tnet(const FoldedTNet& t, const char* prefix, const float* x, int width, int b_count, int n) {
    const std::string h1_name = std::string(prefix) + ".h1", h2_name = std::string(prefix) + ".h2";
    for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
      const float* xt = x + (static_cast<size_t>(b) * n + first) * width;
      float* a = scratch(0);
      float* c = scratch(1);
      dense(a, xt, rows, t.conv1, t.conv1.bias.data(), true);
      observe(h1_name.c_str(), a, static_cast<size_t>(rows) * 64);
      dense(c, a, rows, t.conv2, t.conv2.bias.data(), true);
      observe(h2_name.c_str(), c, static_cast<size_t>(rows) * 128);
      dense_max(&partial[(static_cast<size_t>(b) * tiles_of(n) + tile) * 1024], c, rows, t.conv3, scratch(2));
    });
    merge_tiles(b_count, n, t.conv3, true);
    tnet_head(t, b_count);
  }

  void run(const float* points, int b_count, int n, float* out) {
    const FoldedModel& m = plan.model;
    const int C = m.config.input_channels, K = m.config.num_classes;
    const bool seg = m.config.task == ModelTask::Segmentation;
    const bool keep_h1 = seg || m.has_fstn;
    reserve(b_count, n);

    tnet(m.stn, "stn", points, C, b_count, n);
    for (int b = 0; b < b_count; ++b) fold_transform(conv1_cloud[b], m.conv1, &transforms[static_cast<size_t>(b) * 9], 3);

    // conv1 (+ conv2, conv3 and the max when nothing needs h1 again).
    for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
      const float* xt = points + (static_cast<size_t>(b) * n + first) * C;
      float* a = keep_h1 ? &h1[(static_cast<size_t>(b) * n + first) * 64] : scratch(0);
      dense(a, xt, rows, conv1_cloud[b], m.conv1.bias.data(), true);
      observe("h1", a, static_cast<size_t>(rows) * 64);
      if (m.has_fstn) return;
      float* c = scratch(1);
      dense(c, a, rows, m.conv2, m.conv2.bias.data(), true);
      observe("h2", c, static_cast<size_t>(rows) * 128);
      dense_max(&partial[(static_cast<size_t>(b) * tiles_of(n) + tile) * 1024], c, rows, m.conv3, scratch(2));
    });
    if (m.has_fstn) {
      tnet(m.fstn, "fstn", h1.data(), 64, b_count, n);
      for (int b = 0; b < b_count; ++b) {
        const float* t = &transforms[static_cast<size_t>(b) * 64 * 64];
        fold_transform(conv2_cloud[b], m.conv2, t, 64);
        if (seg) fold_transform(head1_point_cloud[b], head1_point, t, 64);
      }
      for_tiles(b_count, n, [&](int b, int tile, int first, int rows) {
        const float* a = &h1[(static_cast<size_t>(b) * n + first) * 64];
        float* c = scratch(1);
        dense(c, a, rows, conv2_cloud[b], m.conv2.bias.data(), true);
        observe("h2", c, static_cast<size_t>(rows) * 128);
        dense_max(&partial[(static_cast<size_t>(b) * tiles_of(n) + tile) * 1024], c, rows, m.conv3, scratch(2));
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
      const float* a = &h1[(static_cast<size_t>(b) * n + first) * 64];
      const FoldedLinear& point_part = m.has_fstn ? head1_point_cloud[b] : head1_point;
      float *s0 = scratch(0), *s1 = scratch(1), *s2 = scratch(2);
      dense(s0, a, rows, point_part, &seg_bias[static_cast<size_t>(b) * 512], true);
      observe("head.a", s0, static_cast<size_t>(rows) * 512);
      dense(s1, s0, rows, m.head[1], m.head[1].bias.data(), true);
      observe("head.c", s1, static_cast<size_t>(rows) * 256);
      dense(s2, s1, rows, m.head[2], m.head[2].bias.data(), true);
      float* y = out + (static_cast<size_t>(b) * n + first) * K;
      dense(y, s2, rows, m.head[3], m.head[3].bias.data(), false);
      log_softmax_rows(y, rows, K);
    });
  }
};

CpuRunner::CpuRunner(const EnginePlan& plan) : impl_(std::make_unique<Impl>(plan)) {
  if (plan.precision != EnginePrecision::FP32)
    fail("the CPU runs fp32 engines (and int8 with calibration); this one is ", precision_name(plan.precision));
}

CpuRunner::~CpuRunner() = default;

void CpuRunner::run(const float* points, int B, int N, float* log_probs) {
  if (B < 1 || N < 1) fail("engine input needs at least 1 cloud of 1 point, got ", B, " x ", N);
  impl_->run(points, B, N, log_probs);
}

void CpuRunner::set_observer(Observer observer) { impl_->observer = std::move(observer); }

const char* CpuRunner::int8_kernel() const { return "-"; }

}  // namespace pointnet
