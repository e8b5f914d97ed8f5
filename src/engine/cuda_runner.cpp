#include "engine/cuda_runner.h"

#include "core/env_choice.h"
#include "core/errors.h"
#include "cuda/cuda_backend.h"  // cuda_device_available

#ifndef POINTNET_HAS_CUDA

namespace pointnet {

struct CudaRunner::Impl {};

CudaRunner::CudaRunner(const EnginePlan&) {
  std::string why;
  cuda_device_available(&why);
  fail("a CUDA engine needs a CUDA GPU: ", why);
}
CudaRunner::~CudaRunner() = default;
void CudaRunner::run(const float*, int, int, float*) { fail("CudaRunner: no CUDA"); }
float* CudaRunner::input_buffer(int, int) { fail("CudaRunner: no CUDA"); }
float* CudaRunner::output_buffer(int, int) { fail("CudaRunner: no CUDA"); }
void CudaRunner::run_device(const float*, int, int, float*) { fail("CudaRunner: no CUDA"); }
void CudaRunner::synchronize() {}
void CudaRunner::submit(int, int) { fail("CudaRunner: no CUDA"); }
CudaRunTiming CudaRunner::run_timed(int, int) { fail("CudaRunner: no CUDA"); }
std::string CudaRunner::device_name() const { return ""; }
std::string CudaRunner::trunk_kernels() const { return ""; }
int CudaRunner::slices(int) const { return 0; }
size_t CudaRunner::device_bytes() const { return 0; }

}  // namespace pointnet

#else

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>

#include "cuda/check.h"
#include "cuda/engine_gemm_lt.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_seg_head_lt.h"
#include "cuda/engine_wide_max.h"
#include "engine/cpu_layers.h"  // engine_cpu::columns
#include "engine/cuda_weights.h"

namespace pointnet {

using namespace cuda_engine;

namespace {

// fp32 engines run on the tensor cores by the 3xTF32 split (engine_mma.cuh,
// F32x3Op); POINTNET_ENGINE_FP32=ffma picks the plain FFMA kernels instead
// (to compare on a GPU).
bool fp32_uses_ffma() {
  static const bool ffma = env_choice("POINTNET_ENGINE_FP32", {"3xtf32", "ffma"}) == "ffma";
  return ffma;
}

Math math_of(EnginePrecision p) {
  switch (p) {
    case EnginePrecision::FP32: return fp32_uses_ffma() ? Math::F32 : Math::F32X3;
    case EnginePrecision::TF32: return Math::TF32;
    case EnginePrecision::FP16: return Math::F16;
    case EnginePrecision::BF16: return Math::BF16;
    case EnginePrecision::INT8: return Math::I8;
  }
  return Math::F32;
}

// A per-cloud fp32 layer on the device: w (out, in), bias (out).
struct Fc {
  const float* w = nullptr;
  const float* b = nullptr;
  int in = 0, out = 0;
};

// Host copies in and out of pinned staging, over the OpenMP threads when large
// (one core copies ~5-10 GB/s; a 1024 x 1024-point batch is 12 MiB).
void copy_floats(float* dst, const float* src, size_t count) {
  constexpr size_t kChunk = size_t(1) << 18;  // 1 MiB of floats
  const size_t chunks = (count + kChunk - 1) / kChunk;
  if (chunks <= 1) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
#pragma omp parallel for schedule(static)
  for (long long c = 0; c < static_cast<long long>(chunks); ++c) {
    const size_t first = static_cast<size_t>(c) * kChunk;
    std::memcpy(dst + first, src + first, std::min(kChunk, count - first) * sizeof(float));
  }
}

}  // namespace

struct CudaRunner::Impl {
  // What the plan fixes.
  const EnginePrecision precision;
  const Math math;
  const int C, K, max_batch, max_points;
  const bool seg, ft, int8;
  const std::map<std::string, float> act_scales;

  // The device, stream and libraries.
  int sms = 0;
  std::string name;
  // Streams for a batch's slices: up to max_slices used (POINTNET_ENGINE_SLICES).
  static constexpr int kMaxSlices = 16;
  int max_slices = 4;
  cudaStream_t stream = nullptr;             // the main stream (slice 0's)
  cudaStream_t streams[kMaxSlices] = {};     // slices 1.. (streams[0] unused)
  cudaEvent_t fork = nullptr, joins[kMaxSlices] = {};
  cudaEvent_t events[4] = {};
  std::unique_ptr<LtLinear> lts[kMaxSlices];
  std::vector<void*> weight_blocks;
  size_t weight_bytes = 0;
  bool use_graphs = true;
  // Tiny batches (POINTNET_ENGINE_SMALL=0 turns this off): the merge of the
  // tiles' maxima inside the first per-cloud layer, the logits layer and its
  // log-softmax in one launch, and the clouds and log-probs read and written
  // in mapped pinned memory by the kernels (no copy nodes).
  bool small_fusions = true;
  // The wide per-cloud layers (the T-Nets' and the classifier's fc1 and fc2,
  // the segmenter's head.0 global part) of tf32/fp16/bf16/int8 engines
  // multiply on the TF32 tensor cores above kSmallRows clouds: as fp32 SIMT
  // GEMMs they took a quarter of an fp16 engine's GPU time at B = 1024 (CUPTI,
  // 2026-12-06). The layers that make a transform or the logits stay fp32.
  // POINTNET_ENGINE_FC=fp32 keeps them all fp32 (to compare).
  bool tf32_wide_fc = false;
  // POINTNET_ENGINE_NARROW_FC=kernel: the per-cloud layers of few outputs (a
  // T-Net's last, the logits with their log-softmax) by the few-row kernels,
  // kSmallRows clouds a block, at any batch; cuBLAS's fp32 GEMMs of those
  // shapes took 17 and 9 us per 256-cloud slice (CUPTI, fp16, 2026-12-08).
  bool narrow_fc_kernel = false;
  // POINTNET_ENGINE_PROFILE=1: no graphs; events between the stages of each
  // run, printed to stderr (where the time goes, for tuning).
  bool profile = false;
  // A split trunk has run its streamed first kernel (POINTNET_ENGINE_SPLIT_FIRST=stream): trunk_kernels says so.
  bool streamed_first = false;
  std::vector<std::pair<const char*, cudaEvent_t>> marks;
  size_t mark_count = 0;

  // Weights (uploaded once).
  struct TNet {
    const float *conv1_w = nullptr, *conv1_b = nullptr, *conv3_b = nullptr;
    DevLayer conv1, conv2, conv3;  // conv1: the feature T-Net's 64 -> 64 only
    Fc fc1, fc2, fc3;
  } stn, fstn;
  const float *conv1_w = nullptr, *conv1_b = nullptr, *conv3_b = nullptr;
  DevLayer conv2, conv3;
  const float *conv2_w32 = nullptr, *conv2_b = nullptr;  // feature transform: folded per cloud from these
  Fc cls[3];
  Fc head0_global;
  DevLayer head0_point, head1, head2;
  const float *head0_point_w32 = nullptr, *head3_w = nullptr, *head3_b = nullptr;
  // The segmenter's head as cuBLASLt GEMMs (engine_seg_head_lt.h) in fp16,
  // bf16 and tf32 without the feature transform: B = 32 x 2500 fp16 at 76k
  // GPU clouds/s against the one-kernel head's 12.4k (H100, 2026-12-06).
  // POINTNET_ENGINE_SEG_HEAD=fused: the one-kernel head (int8, fp32 and the
  // feature transform always take it). POINTNET_ENGINE_SEG_ROWS: points per
  // chunk of the GEMM head (tests use small ones).
  std::unique_ptr<SegHeadLt> seg_lt;
  bool seg_lt_fell_back = false;  // cuBLASLt had no algorithm for some shape: the one-kernel head ran

  // Activation buffers: grow-only, for capB clouds of up to capN points.
  int capB = 0, capN = 0;
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
  };
  std::map<std::string, Buffer> buffers;
  float* pin_in = nullptr;  // mapped pinned memory, and its device addresses
  float* pin_out = nullptr;
  float* dev_pin_in = nullptr;
  float* dev_pin_out = nullptr;

  // Captured graphs: (B, N) for run(); (B, N, points, log_probs) for run_device().
  std::map<std::pair<int, int>, cudaGraphExec_t> full_graphs;
  std::map<std::tuple<int, int, const float*, float*>, cudaGraphExec_t> compute_graphs;

  explicit Impl(const EnginePlan& plan)
      : precision(plan.precision), math(math_of(plan.precision)), C(plan.model.config.input_channels),
        K(plan.model.config.num_classes), max_batch(plan.max_batch), max_points(plan.max_points),
        seg(plan.model.config.task == ModelTask::Segmentation), ft(plan.model.has_fstn),
        int8(plan.precision == EnginePrecision::INT8), act_scales(plan.activation_scales) {
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    sms = prop.multiProcessorCount;
    name = std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ")";
    // The comparison switches, each refused with the accepted values when misspelt.
    use_graphs = env_choice("POINTNET_ENGINE_GRAPHS", {"1", "0"}) == "1";
    profile = env_choice("POINTNET_ENGINE_PROFILE", {"0", "1"}) == "1";
    if (profile) use_graphs = false;
    small_fusions = env_choice("POINTNET_ENGINE_SMALL", {"1", "0"}) == "1";
    max_slices = std::stoi(env_choice("POINTNET_ENGINE_SLICES", {"4", "2", "8", "16"}));
    PN_CHECK(max_slices <= kMaxSlices);
    tf32_wide_fc = math != Math::F32 && math != Math::F32X3 && env_choice("POINTNET_ENGINE_FC", {"tf32", "fp32"}) == "tf32";
    narrow_fc_kernel = env_choice("POINTNET_ENGINE_NARROW_FC", {"cublas", "kernel"}) == "kernel";
    prepare_engine_kernels();
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (int i = 1; i < max_slices; ++i) CUDA_CHECK(cudaStreamCreateWithFlags(&streams[i], cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    for (int i = 1; i < max_slices; ++i) CUDA_CHECK(cudaEventCreateWithFlags(&joins[i], cudaEventDisableTiming));
    for (cudaEvent_t& e : events) CUDA_CHECK(cudaEventCreate(&e));
    for (int i = 0; i < max_slices; ++i) lts[i] = std::make_unique<LtLinear>();
    if (seg && K > seg_max_parts(math))
      fail("the CUDA segmenter head holds at most ", seg_max_parts(math), " parts (", precision_name(precision),
           "); this engine has ", K);
    upload_weights(plan);
  }

  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    drop_graphs();
    for (auto& [n, b] : buffers) cudaFree(b.p);
    for (void* p : weight_blocks) cudaFree(p);
    if (pin_in) cudaFreeHost(pin_in);
    if (pin_out) cudaFreeHost(pin_out);
    for (auto& lt : lts) lt.reset();
    for (cudaEvent_t e : events)
      if (e) cudaEventDestroy(e);
    for (cudaEvent_t e : joins)
      if (e) cudaEventDestroy(e);
    if (fork) cudaEventDestroy(fork);
    for (cudaStream_t st : streams)
      if (st) cudaStreamDestroy(st);
    for (auto& [what, e] : marks) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }

  // ---- weights

  const void* upload(const void* data, size_t bytes) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
    weight_blocks.push_back(p);
    weight_bytes += bytes;
    CUDA_CHECK(cudaMemcpy(p, data, bytes, cudaMemcpyHostToDevice));
    return p;
  }
  template <typename T>
  const T* upload(const std::vector<T>& v) {
    return static_cast<const T*>(upload(v.data(), v.size() * sizeof(T)));
  }

  float act_scale(const std::string& name) const {
    const auto it = act_scales.find(name);
    if (it == act_scales.end()) fail("int8 engine: no calibrated scale for activation '", name, "'");
    return it->second;
  }

  Fc fc(const FoldedLinear& l) { return {upload(l.weight), upload(l.bias), l.in, l.out}; }

  // A per-point layer in the precision's layout. x_act / y_act: int8 only,
  // the activations it reads and writes (y_act empty: fp32 or max output).
  // A conv3 layer (y_act empty) also gets wgmma's layout (tensor-core precisions).
  DevLayer point_layer(const EnginePlan& plan, const std::string& name, const FoldedLinear& l,
                       const std::string& x_act, const std::string& y_act) {
    DevLayer d;
    d.bias = upload(l.bias);
    const bool conv3 = y_act.empty() && l.in == 128 && l.out == 1024;
    // conv2 (64 -> 128) too: the fused-wide trunk reads it from shared memory by wgmma.
    const bool core = conv3 || (l.in == 64 && l.out == 128);
    if (!int8) {
      d.w = upload(math == Math::F32X3 ? cuda_3xtf32_weights(l).bytes : cuda_layer_weights(l, precision).bytes);
      if (core && precision != EnginePrecision::FP32) d.w_core = upload(cuda_core_weights(l, precision).bytes);
      return d;
    }
    const auto it = plan.int8_weights.find(name);
    if (it == plan.int8_weights.end()) fail("int8 engine: no quantised weights for layer '", name, "'");
    const CudaLayerWeights w = cuda_layer_weights(it->second);
    d.w = upload(w.bytes);
    if (core) d.w_core = upload(cuda_core_weights(it->second).bytes);
    d.scale = upload(w.scale);
    d.x_scale = act_scale(x_act);
    if (!y_act.empty()) d.inv_y_scale = 1.f / act_scale(y_act);
    return d;
  }

  // A T-Net's layers after conv1 (whose input, the points or h1, the caller knows).
  void upload_tnet(const EnginePlan& plan, const std::string& name, const FoldedTNet& t, TNet& d) {
    d.conv2 = point_layer(plan, name + ".conv2", t.conv2, name + ".h1", name + ".h2");
    d.conv3 = point_layer(plan, name + ".conv3", t.conv3, name + ".h2", "");
    d.conv3_b = upload(t.conv3.bias);
    d.fc1 = fc(t.fc1);
    d.fc2 = fc(t.fc2);
    d.fc3 = fc(t.fc3);
  }

  void upload_weights(const EnginePlan& plan) {
    const FoldedModel& m = plan.model;
    stn.conv1_w = upload(m.stn.conv1.weight);
    stn.conv1_b = upload(m.stn.conv1.bias);
    upload_tnet(plan, "stn", m.stn, stn);
    conv1_w = upload(m.conv1.weight);
    conv1_b = upload(m.conv1.bias);
    conv3 = point_layer(plan, "conv3", m.conv3, "h2", "");
    conv3_b = upload(m.conv3.bias);
    conv2_b = upload(m.conv2.bias);
    if (!ft) {
      conv2 = point_layer(plan, "conv2", m.conv2, "h1", "h2");
    } else {
      conv2_w32 = upload(m.conv2.weight);
      fstn.conv1 = point_layer(plan, "fstn.conv1", m.fstn.conv1, "h1", "fstn.h1");
      upload_tnet(plan, "fstn", m.fstn, fstn);
    }
    if (!seg) {
      for (int i = 0; i < 3; ++i) cls[i] = fc(m.head.at(i));
      return;
    }
    head0_global = fc(engine_cpu::columns(m.head.at(0), 0, 1024));
    const FoldedLinear point = engine_cpu::columns(m.head[0], 1024, 64);
    if (ft) head0_point_w32 = upload(point.weight);
    else head0_point = point_layer(plan, "head.0.point", point, "h1", "head.a");
    head1 = point_layer(plan, "head.1", m.head.at(1), "head.a", "head.c");
    head2 = point_layer(plan, "head.2", m.head.at(2), "head.c", "");
    head3_w = upload(m.head.at(3).weight);
    head3_b = upload(m.head[3].bias);
    if (!ft && SegHeadLt::supports(math) &&
        env_choice("POINTNET_ENGINE_SEG_HEAD", {"gemm", "fused"}) == "gemm") {
      const auto host = [](const FoldedLinear& l) { return HostLinear{l.weight.data(), l.bias.data(), l.in, l.out}; };
      int rows = 32768;
      if (const char* r = std::getenv("POINTNET_ENGINE_SEG_ROWS")) {
        char* end = nullptr;
        const long v = std::strtol(r, &end, 10);
        if (end == r || *end || v < 1 || v > (1 << 24))
          fail("POINTNET_ENGINE_SEG_ROWS='", r, "': expected a number of points from 1 to 16777216");
        rows = static_cast<int>(v);
      }
      seg_lt = std::make_unique<SegHeadLt>(math, host(point), host(m.head.at(1)), host(m.head.at(2)),
                                           host(m.head.at(3)), rows);
    }
  }

  // ---- activation buffers

  template <typename T = float>
  T* buf(const std::string& name) {
    return static_cast<T*>(buffers.at(name).p);
  }

  size_t out_floats(int B, int N) const { return static_cast<size_t>(B) * (seg ? N : 1) * K; }

  void drop_graphs() {
    for (auto& [k, g] : full_graphs) cudaGraphExecDestroy(g);
    for (auto& [k, g] : compute_graphs) cudaGraphExecDestroy(g);
    full_graphs.clear();
    compute_graphs.clear();
  }

  // Grows every buffer to hold (B, N); waits for queued work first (it may use them).
  void reserve(int B, int N) {
    if (B < 1 || N < 1) fail("engine input needs at least 1 cloud of 1 point, got ", B, " x ", N);
    if (B > max_batch) fail("engine built for batches of at most ", max_batch, ", given ", B);
    if (N > max_points) fail("engine built for clouds of at most ", max_points, " points, given ", N);
    if (B <= capB && N <= capN) return;
    CUDA_CHECK(cudaStreamSynchronize(stream));
    drop_graphs();
    capB = std::max(capB, B);
    capN = std::max(capN, N);
    const size_t b = capB, n = capN, e = elem_bytes(math);
    const size_t max_tiles = (n + 63) / 64;  // the smallest tile any trunk uses
    std::map<std::string, size_t> want = {
        {"points", b * n * C * 4}, {"out", out_floats(capB, capN) * 4}, {"partial", b * max_tiles * 1024 * 4},
        {"global", b * 1024 * 4}, {"fc_a", b * 512 * 4}, {"fc_b", b * 256 * 4}, {"t3", b * 9 * 4}};
    if (ft || seg) want["h1"] = b * n * 64 * e;
    // conv2's stored output for the split trunk (tiles of <= 256 points); with
    // fused-wide only the feature transform's trunks still store it.
    if (trunk_is_split(math, capB) && (ft || !trunk_fuses_wide_at_all(math)))
      want["h2"] = b * ((n + 255) / 256 * 256) * 128 * e;
    if (ft) {
      want["t64"] = b * 64 * 64 * 4;
      want["conv2_cloud"] = b * 128 * 64 * e;
      want["conv2_cloud_scale"] = b * 128 * 4;
    }
    if (seg) want["seg_bias"] = b * 512 * 4;
    if (seg_lt) seg_lt->reserve(slices_for(capB), capB, capN);
    if (seg && ft) {
      want["head0_cloud"] = b * 512 * 64 * e;
      want["head0_cloud_scale"] = b * 512 * 4;
    }
    for (const auto& [key, bytes] : want) {
      Buffer& slot = buffers[key];
      if (slot.bytes >= bytes) continue;
      if (slot.p) CUDA_CHECK(cudaFree(slot.p));
      slot.p = nullptr;
      CUDA_CHECK(cudaMalloc(&slot.p, bytes));
      slot.bytes = bytes;
    }
    if (pin_in) CUDA_CHECK(cudaFreeHost(pin_in));
    if (pin_out) CUDA_CHECK(cudaFreeHost(pin_out));
    pin_in = pin_out = nullptr;
    CUDA_CHECK(cudaHostAlloc(&pin_in, b * n * C * 4, cudaHostAllocMapped));
    CUDA_CHECK(cudaHostAlloc(&pin_out, out_floats(capB, capN) * 4, cudaHostAllocMapped));
    CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dev_pin_in), pin_in, 0));
    CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dev_pin_out), pin_out, 0));
  }

  // ---- the network, queued on the stream

  // A slice of the batch, clouds [b0, b0 + B), queued on its own stream
  // with its own cuBLASLt workspace; its buffers are the runner's, offset to
  // cloud b0 (every buffer is laid out cloud by cloud).
  struct Slice {
    int b0 = 0, B = 0;
    cudaStream_t stream = nullptr;
    LtLinear* lt = nullptr;
    int index = 0;  // which of the slices: its scratch
  };

  void mark(const char* what, const Slice& sl) {
    if (!profile || sl.stream != stream) return;
    if (std::string(what) == "start") mark_count = 0;
    if (mark_count == marks.size()) {
      cudaEvent_t e;
      CUDA_CHECK(cudaEventCreate(&e));
      marks.emplace_back(what, e);
    }
    marks[mark_count].first = what;
    CUDA_CHECK(cudaEventRecord(marks[mark_count++].second, sl.stream));
  }

  void print_profile(int B, int N) {
    if (!profile || mark_count < 2) return;
    CUDA_CHECK(cudaEventSynchronize(marks[mark_count - 1].second));
    std::string line = "engine profile " + std::to_string(B) + " x " + std::to_string(N) + " (ms):";
    for (size_t i = 1; i < mark_count; ++i) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, marks[i - 1].second, marks[i].second));
      line += std::string(" ") + marks[i].first + " " + std::to_string(ms).substr(0, 6);
    }
    std::fprintf(stderr, "%s\n", line.c_str());
    mark_count = 0;
  }

  // Buffer `name` at cloud b0 (`per_cloud` elements of T per cloud).
  template <typename T = float>
  T* at(const std::string& name, const Slice& sl, size_t per_cloud) {
    return buf<T>(name) + static_cast<size_t>(sl.b0) * per_cloud;
  }

  // wide: one of the layers tf32_wide_fc moves to the TF32 tensor cores.
  void per_cloud(const Slice& sl, const float* x, const Fc& l, bool relu, float* y, bool wide = false) {
    if (sl.B <= kSmallRows || (narrow_fc_kernel && l.out <= kNarrowOutputs && sl.B <= kMaxRowsLinear)) {
      launch_small_linear(x, sl.B, l.in, l.w, l.b, l.out, relu, y, sl.stream);
    } else {
      LtLinear::Math tf32;
      tf32.compute = CUBLAS_COMPUTE_32F_FAST_TF32;
      // Where cuBLASLt has no TF32 algorithm for these pointers, fp32 products.
      if (!(wide && tf32_wide_fc && sl.lt->try_run(x, sl.B, l.in, l.w, l.b, l.out, relu, y, sl.stream, tf32)))
        sl.lt->run(x, sl.B, l.in, l.w, l.b, l.out, relu, y, sl.stream);
    }
  }

  // A trunk's global features: in "global", or still to be merged from the
  // tiles' maxima by their first consumer (tiny batches).
  struct Global {
    const float* x = nullptr;
    SmallMerge merge;
  };

  // A trunk over the slice, then the merge of its tiles' maxima (the split
  // trunk: none, its wide_max kernel adds conv3's bias and ReLU itself).
  Global trunk(const Slice& sl, TrunkArgs a, const float* conv3_bias, bool relu) {
    if (trunk_fuses_wide(a)) return fused_wide_trunk(sl, a, conv3_bias, relu);
    if (a.conv2.w && trunk_is_split(math, a.B)) return split_trunk(sl, a, conv3_bias, relu);
    const TrunkShape s = trunk_shape(math, a.points != nullptr, a.pre.w != nullptr, a.conv2.w == nullptr, a.B, a.N,
                                     C, sms);
    a.partial = at("partial", sl, static_cast<size_t>((a.N + 63) / 64) * 1024);
    launch_trunk(a, s, sl.stream);
    Global g;
    g.x = at("global", sl, 1024);
    if (!a.conv2.w) return g;
    if (small_fusions && sl.B <= kSmallRows && sl.B * s.tiles <= 32) {
      g.merge.partial = a.partial;
      g.merge.tiles = s.tiles;
      g.merge.bias = conv3_bias;
      g.merge.relu = relu;
    } else {
      launch_merge_max(a.partial, a.B, s.tiles, conv3_bias, relu, at("global", sl, 1024), sl.stream);
    }
    return g;
  }

  // The same, split: conv2's output to memory, then conv3 + max by the
  // weight-stationary wgmma kernel, one maximum per cloud and channel, with
  // conv3's bias and ReLU, straight into "global".
  Global split_trunk(const Slice& sl, TrunkArgs a, const float* conv3_bias, bool relu) {
    const TrunkShape s = trunk_shape_split(math, a.points != nullptr, a.pre.w != nullptr, a.B, a.N, C);
    a.h2_rows = s.tiles * s.tile_points;
    a.h2_out = at<char>("h2", sl, static_cast<size_t>(a.h2_rows) * 128 * elem_bytes(math));
    streamed_first = streamed_first || first_layers_stream(a);
    launch_trunk_split(a, s, sl.stream);
    WideMaxArgs w;
    w.math = math;
    w.B = a.B;
    w.tiles = a.h2_rows / 64;
    w.C = 1024;
    w.x = a.h2_out;
    w.w = a.conv3.w_core;
    w.scale = a.conv3.scale;
    w.x_scale = a.conv3.x_scale;
    // The bias and ReLU in wide_max's own epilogue: no merge launch.
    w.bias = conv3_bias;
    w.relu = relu;
    Global g;
    w.out = at("global", sl, 1024);
    g.x = w.out;
    launch_wide_max(w, wide_max_grid(math, a.B, 1024, sms), sl.stream);
    return g;
  }

  // The same in one kernel: conv1 and conv2 made inside wide_max's blocks.
  Global fused_wide_trunk(const Slice& sl, const TrunkArgs& a, const float* conv3_bias, bool relu) {
    float* maxima = at("partial", sl, 1024);
    launch_wide_max_fused(a, maxima, wide_max_grid(math, a.B, 1024, sms), sl.stream);
    return merged(sl, maxima, a.B, conv3_bias, relu);
  }

  // One maximum per cloud and channel, with conv3's bias (and ReLU), into "global".
  Global merged(const Slice& sl, const float* maxima, int B, const float* conv3_bias, bool relu) {
    Global g;
    g.x = at("global", sl, 1024);
    launch_merge_max(maxima, B, 1, conv3_bias, relu, at("global", sl, 1024), sl.stream);
    return g;
  }

  void per_cloud_global(const Slice& sl, const Global& g, const Fc& l, bool relu, float* y) {
    if (g.merge.partial) launch_small_linear(nullptr, sl.B, l.in, l.w, l.b, l.out, relu, y, sl.stream, g.merge);
    else per_cloud(sl, g.x, l, relu, y, true);  // every layer reading a trunk's maxima is a wide one
  }

  void tnet_head(const Slice& sl, const Global& g, const TNet& t, float* out) {
    per_cloud_global(sl, g, t.fc1, true, at("fc_a", sl, 512));
    per_cloud(sl, at("fc_a", sl, 512), t.fc2, true, at("fc_b", sl, 256), true);
    per_cloud(sl, at("fc_b", sl, 256), t.fc3, false, out);
  }

  float scale_or_one(const char* name) const { return int8 ? act_scale(name) : 1.f; }

  // The whole network for one slice: points (B, N, C) and out at the slice's first cloud.
  void enqueue(const Slice& sl, const float* points, int N, float* out) {
    const int B = sl.B;
    const size_t e = elem_bytes(math);
    void* h1 = ft || seg ? at<char>("h1", sl, static_cast<size_t>(N) * 64 * e) : nullptr;
    TrunkArgs base;
    base.math = math;
    base.B = B;
    base.N = N;
    base.C = C;
    // Input T-Net -> transforms (B, 3, 3).
    TrunkArgs a = base;
    a.points = points;
    a.conv1_w = stn.conv1_w;
    a.conv1_b = stn.conv1_b;
    a.h1_scale = scale_or_one("stn.h1");
    a.conv2 = stn.conv2;
    a.conv3 = stn.conv3;
    mark("start", sl);
    Global g = trunk(sl, a, stn.conv3_b, true);
    mark("stn-trunk", sl);
    float* t3 = at("t3", sl, 9);
    tnet_head(sl, g, stn, t3);
    mark("stn-fc", sl);
    // conv1 with each cloud's transform folded in; without a feature
    // transform, conv2, conv3 and the max in the same kernel.
    a = base;
    a.points = points;
    a.conv1_w = conv1_w;
    a.conv1_b = conv1_b;
    a.transform3 = t3;
    a.h1_scale = scale_or_one("h1");
    a.h1_out = h1;
    if (!ft) {
      a.conv2 = conv2;
      a.conv3 = conv3;
    }
    g = trunk(sl, a, conv3_b, false);
    mark("trunk", sl);
    if (ft) {
      // Feature T-Net over h1 -> (B, 64, 64), folded into conv2 (and head.0's point part) per cloud.
      a = base;
      a.h1_in = h1;
      a.pre = fstn.conv1;
      a.conv2 = fstn.conv2;
      a.conv3 = fstn.conv3;
      const Global gf = trunk(sl, a, fstn.conv3_b, true);
      mark("fstn-trunk", sl);
      float* t64 = at("t64", sl, 64 * 64);
      tnet_head(sl, gf, fstn, t64);
      mark("fstn-fc", sl);
      const DevLayer c2 = per_cloud_layer(sl, "conv2_cloud", 128, conv2_b, "h1", "h2");
      launch_fold_transform(math, conv2_w32, 128, t64, B, const_cast<void*>(c2.w), const_cast<float*>(c2.scale),
                            sl.stream);
      if (seg) {
        const DevLayer h0 = per_cloud_layer(sl, "head0_cloud", 512, nullptr, "h1", "head.a");
        launch_fold_transform(math, head0_point_w32, 512, t64, B, const_cast<void*>(h0.w),
                              const_cast<float*>(h0.scale), sl.stream);
      }
      a = base;
      a.h1_in = h1;
      a.conv2 = c2;
      a.conv3 = conv3;
      mark("fold", sl);
      g = trunk(sl, a, conv3_b, false);
      mark("trunk2", sl);
    }
    if (!seg) {
      per_cloud_global(sl, g, cls[0], true, at("fc_a", sl, 512));
      per_cloud(sl, at("fc_a", sl, 512), cls[1], true, at("fc_b", sl, 256), true);
      const bool by_rows = narrow_fc_kernel && B > kSmallRows && cls[2].out <= kNarrowOutputs &&
                           logits_by_rows_fit(cls[2].in, cls[2].out);
      if ((small_fusions && small_logits_fit(B, cls[2].in, cls[2].out)) || by_rows) {
        launch_small_logits(at("fc_b", sl, 256), B, cls[2].in, cls[2].w, cls[2].b, cls[2].out, out, sl.stream);
      } else {
        per_cloud(sl, at("fc_b", sl, 256), cls[2], false, out);
        launch_log_softmax(out, B, K, sl.stream);
      }
      mark("head", sl);
      return;
    }
    // Segmenter: head.0's global part once per cloud, as a per-cloud bias.
    float* seg_bias = at("seg_bias", sl, 512);
    per_cloud_global(sl, g, head0_global, false, seg_bias);
    SegArgs s;
    s.math = math;
    s.B = B;
    s.N = N;
    s.K = K;
    s.h1 = h1;
    s.head0 = ft ? per_cloud_layer(sl, "head0_cloud", 512, nullptr, "h1", "head.a") : head0_point;
    s.head0.bias = seg_bias;
    s.head0.bias_cloud_stride = 512;
    s.head1 = head1;
    s.head2 = head2;
    s.head3_w = head3_w;
    s.head3_b = head3_b;
    s.out = out;
    mark("seg-bias", sl);
    const bool gemms = seg_lt && seg_lt->enqueue(*sl.lt, sl.index, h1, seg_bias, B, N, out, sl.stream);
    seg_lt_fell_back = seg_lt_fell_back || (seg_lt && !gemms);
    if (!gemms) launch_seg_head(s, sl.stream);
    mark("seg-head", sl);
  }

  // Weights folded per cloud into buffer `name` (out x 64 per cloud), at the slice.
  DevLayer per_cloud_layer(const Slice& sl, const std::string& name, int out, const float* bias, const char* x_act,
                           const char* y_act) {
    DevLayer d;
    d.w_cloud_bytes = static_cast<size_t>(out) * 64 * elem_bytes(math);
    d.w = at<char>(name, sl, d.w_cloud_bytes);
    d.bias = bias;
    if (int8) {
      d.scale = at(name + "_scale", sl, out);
      d.scale_cloud_stride = out;
      d.x_scale = act_scale(x_act);
      d.inv_y_scale = 1.f / act_scale(y_act);
    }
    return d;
  }

  // ---- slices and graphs

  // How many slices a batch runs in: large batches overlap one slice's upload
  // with another's kernels, and the per-cloud layers' small launches with the
  // next slice's trunk. At least 64 clouds per slice; one under profiling.
  // POINTNET_ENGINE_SLICES (4 by default; 2, 8 or 16 to compare): more
  // slices leave less of the first slice's upload unhidden, and at 16 (64
  // clouds) a slice's conv2 output (16 MiB in fp16 at 1024 points) can stay
  // in L2 between the first kernel and wide_max; fewer fill each kernel better.
  int slices_for(int B) const { return profile ? 1 : std::max(1, std::min(max_slices, B / 64)); }

  // Queues work(slice) for every slice: each on its own stream, forked from
  // and joined back into the main stream (so a capture of the main stream
  // records all of them).
  void over_slices(int B, const std::function<void(const Slice&)>& work) {
    const int S = slices_for(B);
    if (S > 1) {
      CUDA_CHECK(cudaEventRecord(fork, stream));
      for (int i = 1; i < S; ++i) CUDA_CHECK(cudaStreamWaitEvent(streams[i], fork, 0));
    }
    // Slices start at multiples of 16 clouds: every per-cloud row (9 or K
    // floats too) then starts 16-byte aligned, as cuBLASLt's kernels expect.
    // (A first slice half the size of the others, whose upload no kernel
    // hides, was no faster: tf32 392k vs 391k, fp16 732k vs 722k clouds/s;
    // H100, 2026-12-07.)
    const auto first = [&](int i) {
      if (i == 0 || i == S) return i == 0 ? 0 : B;
      return static_cast<int>(static_cast<long long>(B) * i / S) & ~15;
    };
    for (int i = 0; i < S; ++i) {
      Slice sl;
      sl.b0 = first(i);
      sl.B = first(i + 1) - sl.b0;
      sl.stream = i == 0 ? stream : streams[i];
      sl.lt = lts[i].get();
      sl.index = i;
      work(sl);
    }
    for (int i = 1; i < S; ++i) {
      CUDA_CHECK(cudaEventRecord(joins[i], streams[i]));
      CUDA_CHECK(cudaStreamWaitEvent(stream, joins[i], 0));
    }
  }

  // Runs `body` once on the stream (the first run of a shape: it also loads
  // the kernels and cuBLASLt's plans), then captures it for the next runs.
  cudaGraphExec_t run_and_capture(const std::function<void()>& body) {
    body();
    if (!use_graphs) return nullptr;
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_CHECK(e);
    return exec;
  }

  // Upload, network and download of (B, N) from and to the pinned buffers.
  void full(int B, int N) {
    const size_t in_per_cloud = static_cast<size_t>(N) * C, out_per_cloud = out_floats(1, N);
    // Tiny batches: the kernels read and write the mapped pinned buffers.
    const bool direct = small_fusions && slices_for(B) == 1 && B * in_per_cloud * 4 <= 65536 &&
                        B * out_per_cloud * 4 <= 65536;
    const auto body = [&] {
      if (direct) {
        Slice sl;
        sl.B = B;
        sl.stream = stream;
        sl.lt = lts[0].get();
        enqueue(sl, dev_pin_in, N, dev_pin_out);
        return;
      }
      over_slices(B, [&](const Slice& sl) {
        float* points = at("points", sl, in_per_cloud);
        float* out = at("out", sl, out_per_cloud);
        CUDA_CHECK(cudaMemcpyAsync(points, pin_in + sl.b0 * in_per_cloud, sl.B * in_per_cloud * 4,
                                   cudaMemcpyHostToDevice, sl.stream));
        enqueue(sl, points, N, out);
        CUDA_CHECK(cudaMemcpyAsync(pin_out + sl.b0 * out_per_cloud, out, sl.B * out_per_cloud * 4,
                                   cudaMemcpyDeviceToHost, sl.stream));
      });
    };
    const auto it = full_graphs.find({B, N});
    if (it != full_graphs.end()) CUDA_CHECK(cudaGraphLaunch(it->second, stream));
    else if (cudaGraphExec_t g = run_and_capture(body)) full_graphs[{B, N}] = g;
  }

  // The network alone on device pointers.
  void compute(const float* points, int B, int N, float* out) {
    const size_t in_per_cloud = static_cast<size_t>(N) * C, out_per_cloud = out_floats(1, N);
    const auto body = [&] {
      over_slices(B, [&](const Slice& sl) {
        enqueue(sl, points + sl.b0 * in_per_cloud, N, out + sl.b0 * out_per_cloud);
      });
    };
    const auto key = std::make_tuple(B, N, points, out);
    const auto it = compute_graphs.find(key);
    if (it != compute_graphs.end()) CUDA_CHECK(cudaGraphLaunch(it->second, stream));
    else if (cudaGraphExec_t g = run_and_capture(body)) compute_graphs[key] = g;
  }
};

CudaRunner::CudaRunner(const EnginePlan& plan) {
  std::string why;
  if (!cuda_device_available(&why)) fail("a CUDA engine needs a CUDA GPU: ", why);
  impl_ = std::make_unique<Impl>(plan);
}

CudaRunner::~CudaRunner() = default;

void CudaRunner::run(const float* points, int B, int N, float* log_probs) {
  Impl& m = *impl_;
  m.reserve(B, N);
  if (points != m.pin_in) copy_floats(m.pin_in, points, static_cast<size_t>(B) * N * m.C);
  m.full(B, N);
  CUDA_CHECK(cudaStreamSynchronize(m.stream));
  m.print_profile(B, N);
  if (log_probs != m.pin_out) copy_floats(log_probs, m.pin_out, m.out_floats(B, N));
}

float* CudaRunner::input_buffer(int B, int N) {
  impl_->reserve(B, N);
  return impl_->pin_in;
}

float* CudaRunner::output_buffer(int B, int N) {
  impl_->reserve(B, N);
  return impl_->pin_out;
}

void CudaRunner::run_device(const float* device_points, int B, int N, float* device_log_probs) {
  impl_->reserve(B, N);
  impl_->compute(device_points, B, N, device_log_probs);
}

void CudaRunner::synchronize() { CUDA_CHECK(cudaStreamSynchronize(impl_->stream)); }

void CudaRunner::submit(int B, int N) {
  impl_->reserve(B, N);
  impl_->full(B, N);
}

CudaRunTiming CudaRunner::run_timed(int B, int N) {
  Impl& m = *impl_;
  m.reserve(B, N);
  cudaEvent_t* e = m.events;
  CUDA_CHECK(cudaEventRecord(e[0], m.stream));
  CUDA_CHECK(cudaMemcpyAsync(m.buf("points"), m.pin_in, static_cast<size_t>(B) * N * m.C * 4, cudaMemcpyHostToDevice,
                             m.stream));
  CUDA_CHECK(cudaEventRecord(e[1], m.stream));
  m.compute(m.buf("points"), B, N, m.buf("out"));
  CUDA_CHECK(cudaEventRecord(e[2], m.stream));
  CUDA_CHECK(cudaMemcpyAsync(m.pin_out, m.buf("out"), m.out_floats(B, N) * 4, cudaMemcpyDeviceToHost, m.stream));
  CUDA_CHECK(cudaEventRecord(e[3], m.stream));
  CUDA_CHECK(cudaEventSynchronize(e[3]));
  float ms[3];
  for (int i = 0; i < 3; ++i) CUDA_CHECK(cudaEventElapsedTime(&ms[i], e[i], e[i + 1]));
  return {ms[0], ms[1], ms[2]};
}

std::string CudaRunner::device_name() const { return impl_->name; }

int CudaRunner::slices(int B) const { return impl_->slices_for(B); }
std::string CudaRunner::trunk_kernels() const {
  if (!impl_->seg) return trunk_kernel_names();
  if (!impl_->seg_lt) return trunk_kernel_names() + "; seg head: one kernel";
  return trunk_kernel_names() + "; seg head: cuBLASLt GEMMs" +
         (impl_->seg_lt_fell_back ? " (one kernel for shapes cuBLASLt had no algorithm for)" : "");
}

std::string CudaRunner::trunk_kernel_names() const {
  if (impl_->math == Math::F32) return "ffma";
  if (impl_->math == Math::F32X3) return "3xtf32 (mma.sync)";
  // The split trunk runs for batches of kSplitMinClouds and more only.
  if (trunk_is_split(impl_->math, kSplitMinClouds))
    return trunk_fuses_wide_at_all(impl_->math)
               ? "fused-wide (feature transform: split) from 64 clouds, mma.sync below"
               : impl_->streamed_first ? "split (streamed first kernel, wide_max) from 64 clouds, mma.sync below"
                                       : "split (wide_max) from 64 clouds, mma.sync below";
  const std::string v = trunk_variant_name();
  return v == "split" ? "mma.sync" : v;
}

size_t CudaRunner::device_bytes() const {
  size_t bytes = impl_->weight_bytes + (impl_->seg_lt ? impl_->seg_lt->device_bytes() : 0);
  for (const auto& [n, b] : impl_->buffers) bytes += b.bytes;
  return bytes;
}

}  // namespace pointnet

#endif
