// The segmenter's first head layer without the (B*N, G+P) concatenation (see
// model/backend.h and src/cpu/concat_linear.cpp): the global part of the
// product is one GEMM row per cloud, added to every point's row. The GEMMs
// take w's two column blocks in place (leading dimension G+P); operands follow
// the precision mode (gemm_operand), outputs and sums are fp32/double.
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::kBlock;
using State = CudaBackend::State;

// y(r, c) += per_cloud(r / N, c) + bias(c): a block per row at a time,
// threads over the channels (four at a time when `by_four`: C % 4 == 0 and y
// 16-byte aligned), so the row's cloud is found once per row (a 64-bit
// division per element made this pass compute-bound: 165 us at 80k x 512).
__global__ void add_cloud_rows_kernel(float* y, const float* per_cloud, const float* bias, size_t M, int N, int C,
                                      bool by_four) {
  for (size_t r = blockIdx.x; r < M; r += gridDim.x) {
    const float* cloud = per_cloud + (r / N) * C;
    float* row = y + r * C;
    if (by_four) {
      float4* row4 = reinterpret_cast<float4*>(row);
      for (int q = threadIdx.x; q < C / 4; q += blockDim.x) {
        float4 v = row4[q];
        const int c = 4 * q;
        v.x += cloud[c] + bias[c];
        v.y += cloud[c + 1] + bias[c + 1];
        v.z += cloud[c + 2] + bias[c + 2];
        v.w += cloud[c + 3] + bias[c + 3];
        row4[q] = v;
      }
    } else {
      for (int c = threadIdx.x; c < C; c += blockDim.x) row[c] += cloud[c] + bias[c];
    }
  }
}

// sums(b, c) = sum over the cloud's points of dy, in double; also as float.
// Deterministic: a block per (cloud, 32 channels), kSumLanes lanes each adding
// the points n = lane, lane + kSumLanes, ... in order, then a fixed tree over
// the lanes (one thread per (b, c) walking all N points was latency-bound).
// In: dy's type (float, or its 2-byte copy).
constexpr int kSumTile = 32, kSumLanes = 8;
template <typename In>
__global__ void cloud_sums_kernel(double* sums, float* sums_f, const In* dy, int B, int N, int C) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kSumTile + tx;
  const int b = blockIdx.y;
  __shared__ double partial[kSumLanes][kSumTile];
  double total = 0.0;
  if (c < C) {
    const In* p = dy + static_cast<size_t>(b) * N * C + c;
    for (int n = ty; n < N; n += kSumLanes) total += cuda::widen(p[static_cast<size_t>(n) * C]);
  }
  partial[ty][tx] = total;
  __syncthreads();
  for (int half = kSumLanes / 2; half > 0; half /= 2) {
    if (ty < half) partial[ty][tx] += partial[ty + half][tx];
    __syncthreads();
  }
  if (ty == 0 && c < C) {
    sums[static_cast<size_t>(b) * C + c] = partial[0][tx];
    sums_f[static_cast<size_t>(b) * C + c] = static_cast<float>(partial[0][tx]);
  }
}

// dbias(c) = sum over clouds of sums(b, c), b ascending.
__global__ void bias_grad_kernel(float* dbias, const double* sums, int B, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double total = 0.0;
  for (int b = 0; b < B; ++b) total += sums[static_cast<size_t>(b) * C + c];
  dbias[c] = static_cast<float>(total);
}

// out(B, C) = per_cloud(B, C) + bias(C), rounded to the 2-byte type: the
// per-cloud bias of the 2-byte output's epilogue.
template <typename Half>
__global__ void cloud_bias_kernel(Half* out, const float* per_cloud, const float* bias, int B, int C) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < B * C) out[i] = cuda::to_narrow<Half>(per_cloud[i] + bias[i % C]);
}

// An operand `elements` in: its element size follows the precision (gemm_operand).
const void* advance(const State& s, const void* operand, size_t elements) {
  const size_t size = (s.precision == Precision::FP16 || s.precision == Precision::BF16) ? 2 : sizeof(float);
  return static_cast<const char*>(operand) + elements * size;
}

size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }
}  // namespace

void CudaBackend::concat_linear_forward(float* y, const float* global, const float* pointfeat, const float* w,
                                        const float* bias, int B, int N, int G, int P, int Cout,
                                        const void* pointfeat_narrow, void* y_narrow) {
  PN_CHECK(B >= 0 && N >= 0 && G > 0 && P > 0 && Cout >= 0);
  const size_t M = size_t(B) * N;
  if (M == 0 || Cout == 0) return;
  State& s = *s_;
  const int ld = G + P;
  PN_CHECK(!y_narrow || (narrow_linear_outputs() && s.precision == s.mode_precision));
  const size_t per_cloud_bytes = align256(size_t(B) * Cout * sizeof(float));
  const bool epilogue = y_narrow && s.bias_epilogue;  // the per-cloud bias in 2 bytes after the fp32 rows
  char* block = static_cast<char*>(
      s.scratch(State::kConcat, per_cloud_bytes + (epilogue ? size_t(B) * Cout * 2 : size_t(0))));
  float* per_cloud = reinterpret_cast<float*>(block);
  // per_cloud(B, Cout) = global wg^T; then y = pointfeat wp^T; then y += per_cloud + bias.
  const void* wo = cuda::gemm_operand(s, State::kGemmB, w, size_t(Cout) * ld);
  const void* go = cuda::gemm_operand(s, State::kGemmA, global, size_t(B) * G);
  cuda::gemm(s, false, true, B, Cout, G, go, G, 0, wo, ld, 0, 0.0f, per_cloud, Cout, 0);
  const void* po = cuda::gemm_operand(s, State::kGemmA, pointfeat, M * P, pointfeat_narrow);
  if (epilogue) {
    // y in 2 bytes from the matmul's epilogue, the global part and the bias
    // as a bias per cloud (in y's type, as cuBLASLt takes it); else (or
    // without a plan) through fp32 scratch and one conversion.
    void* cloud_bias = block + per_cloud_bytes;
    cuda::with_narrow_type(s, cloud_bias, [&](auto* narrow) {
      if constexpr (!std::is_same_v<decltype(narrow), cuda::NoNarrow*>)
        cloud_bias_kernel<<<(B * Cout + kBlock - 1) / kBlock, kBlock, 0, s.stream>>>(narrow, per_cloud, bias, B,
                                                                                     Cout);
    });
    CUDA_CHECK_LAUNCH();
    cuda_engine::LtLinear::Math math = cuda::gemm_math(s);
    math.out = math.operands;
    if (s.lt->try_run_batched(po, B, N, P, advance(s, wo, G), cloud_bias, Cout, false, y_narrow, s.stream, math, ld))
      return;
  }
  if (y_narrow) {
    y = static_cast<float*>(s.scratch(State::kLinearOut, M * Cout * sizeof(float)));
    ++s.gemm_counts.bias_broadcasts;  // the per-cloud part added over the rows, as the fp32 path
  }
  cuda::gemm(s, false, true, static_cast<int>(M), Cout, P, po, P, 0, advance(s, wo, G), ld, 0, 0.0f, y, Cout, 0);
  const unsigned rows_grid = static_cast<unsigned>(M < 65536 ? M : 65536);
  const bool four = cuda::by_four(Cout, y);
  add_cloud_rows_kernel<<<rows_grid, four ? 128 : kBlock, 0, s.stream>>>(y, per_cloud, bias, M, N, Cout, four);
  CUDA_CHECK_LAUNCH();
  if (y_narrow) cuda::convert_to_mode(s, y_narrow, y, M * Cout);
}

void CudaBackend::concat_linear_backward(float* dglobal, float* dpointfeat, float* dw, float* dbias,
                                         const float* dy, const float* global, const float* pointfeat,
                                         const float* w, int B, int N, int G, int P, int Cout,
                                         const void* pointfeat_narrow, const void* dy_narrow) {
  PN_CHECK(B >= 0 && N >= 0 && G > 0 && P > 0 && Cout >= 0);
  const size_t M = size_t(B) * N;
  if (M == 0 || Cout == 0) return;
  State& s = *s_;
  const int ld = G + P;
  const size_t bc = size_t(B) * Cout;
  char* block = static_cast<char*>(s.scratch(State::kConcat, align256(bc * sizeof(double)) + bc * sizeof(float)));
  double* sums = reinterpret_cast<double*>(block);
  float* sums_f = reinterpret_cast<float*>(block + align256(bc * sizeof(double)));
  if (B > 65535) fail("the segmenter's head trains on the GPU with at most 65535 clouds per batch, got ", B);
  PN_CHECK(dy || dy_narrow);
  cuda::with_input_type(s, dy, dy_narrow, [&](const auto* in) {
    cloud_sums_kernel<<<dim3((Cout + kSumTile - 1) / kSumTile, B), dim3(kSumTile, kSumLanes), 0, s.stream>>>(
        sums, sums_f, in, B, N, Cout);
  });
  CUDA_CHECK_LAUNCH();
  if (dbias) {
    bias_grad_kernel<<<(Cout + kBlock - 1) / kBlock, kBlock, 0, s.stream>>>(dbias, sums, B, Cout);
    CUDA_CHECK_LAUNCH();
  }
  // Two operand slots, reused in stream order: (s, global), (s, w), (dy, w), (dy, pointfeat).
  const void* so = cuda::gemm_operand(s, State::kGemmA, sums_f, bc);
  const void* go = cuda::gemm_operand(s, State::kGemmB, global, size_t(B) * G);
  cuda::gemm(s, true, false, Cout, G, B, so, Cout, 0, go, G, 0, 0.0f, dw, ld, 0);              // dwg = s^T global
  const void* wo = cuda::gemm_operand(s, State::kGemmB, w, size_t(Cout) * ld);
  cuda::gemm(s, false, false, B, G, Cout, so, Cout, 0, wo, ld, 0, 0.0f, dglobal, G, 0);        // dglobal = s wg
  const void* dyo = cuda::gemm_operand(s, State::kGemmA, dy, M * Cout, dy_narrow);
  cuda::gemm(s, false, false, static_cast<int>(M), P, Cout, dyo, Cout, 0, advance(s, wo, G), ld, 0, 0.0f,
             dpointfeat, P, 0);                                                                 // dpointfeat = dy wp
  const void* po = cuda::gemm_operand(s, State::kGemmB, pointfeat, M * P, pointfeat_narrow);
  cuda::gemm(s, true, false, Cout, P, static_cast<int>(M), dyo, Cout, 0, po, P, 0, 0.0f, dw + G, ld, 0);  // dwp
}

}  // namespace pointnet
