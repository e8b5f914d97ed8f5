// 1x1 convolution / fully connected layer: one GEMM over all rows, the bias
// broadcast first and the GEMM accumulating onto it (beta = 1), as the CPU.
// Operands follow the precision mode (gemm_operand); outputs are fp32.
#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace cuda {
namespace {
// y(M, C) = row(C) on every row; four at a time where C % 4 == 0 and y is
// 16-byte aligned (one float per thread ran at ~2 TB/s).
__global__ void broadcast_rows_kernel(float* y, const float* row, size_t M, int C) {
  const size_t n = M * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = row[i % C];
}
__global__ void broadcast_rows4_kernel(float4* y, const float* row, size_t quads, int C) {
  for (size_t q = blockIdx.x * size_t(blockDim.x) + threadIdx.x; q < quads; q += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(q * 4 % C);
    y[q] = make_float4(row[c], row[c + 1], row[c + 2], row[c + 3]);
  }
}
}  // namespace

void broadcast_rows(State& s, float* y, const float* row, size_t M, int C) {
  if (by_four(C, y)) {
    const size_t quads = M * C / 4;
    broadcast_rows4_kernel<<<grid_for(quads), kBlock, 0, s.stream>>>(reinterpret_cast<float4*>(y), row, quads, C);
  } else {
    broadcast_rows_kernel<<<grid_for(M * C), kBlock, 0, s.stream>>>(y, row, M, C);
  }
  CUDA_CHECK_LAUNCH();
}
}  // namespace cuda

using cuda::grid_for;
using cuda::kBlock;
using State = CudaBackend::State;

void CudaBackend::linear_forward(float* y, const float* x, const float* w, const float* b, int M,
                                 int Cin, int Cout, const void* x_narrow, void* y_narrow) {
  PN_CHECK(M >= 0 && Cin >= 0 && Cout >= 0);
  PN_CHECK(!y_narrow || (narrow_linear_outputs() && s_->precision == s_->mode_precision));
  if (M == 0 || Cout == 0) return;
  const void* xo = cuda::gemm_operand(*s_, State::kGemmA, x, size_t(M) * Cin, x_narrow);
  const void* wo = cuda::gemm_operand(*s_, State::kGemmB, w, size_t(Cout) * Cin);
  // Cin <= 4 (the first conv) by thin_linear (unless POINTNET_THIN_GEMMS=off), the bias added in fp32.
  if (cuda::thin_linear(*s_, xo, wo, b, M, Cin, Cout, y, y_narrow)) return;
  if (y_narrow) {
    // y in the operands' 2-byte type, straight from the matmul's epilogue
    // (the bias rounded to that type first, as cuBLASLt takes it for such
    // outputs); else through fp32 scratch and one rounding of y (the bias
    // unrounded): the two may differ in y's last bit.
    cuda_engine::LtLinear::Math math = cuda::gemm_math(*s_);
    math.out = math.operands;
    if (b && Cin > 0 && s_->bias_epilogue) {
      const void* bo = cuda::gemm_operand(*s_, State::kCoeffs, b, size_t(Cout));
      if (s_->lt->try_run_batched(xo, 1, M, Cin, wo, bo, Cout, false, y_narrow, s_->stream, math)) return;
    }
    float* wide = static_cast<float*>(s_->scratch(State::kLinearOut, size_t(M) * Cout * sizeof(float)));
    if (b) {
      cuda::broadcast_rows(*s_, wide, b, size_t(M), Cout);
      ++s_->gemm_counts.bias_broadcasts;
    }
    cuda::gemm(*s_, false, true, M, Cout, Cin, xo, Cin, 0, wo, Cin, 0, b ? 1.0f : 0.0f, wide, Cout, 0);
    cuda::convert_to_mode(*s_, y_narrow, wide, size_t(M) * Cout);
    return;
  }
  // The bias in the matmul's epilogue: y is written once, never read.
  // Where cuBLASLt has no plan for it, the bias is broadcast into y first.
  if (b && Cin > 0 && s_->bias_epilogue &&
      s_->lt->try_run(xo, M, Cin, wo, b, Cout, false, y, s_->stream, cuda::gemm_math(*s_)))
    return;
  if (b) {
    cuda::broadcast_rows(*s_, y, b, size_t(M), Cout);
    ++s_->gemm_counts.bias_broadcasts;
  }
  // y(M, Cout) = x(M, Cin) w(Cout, Cin)^T (+ y)
  cuda::gemm(*s_, false, true, M, Cout, Cin, xo, Cin, 0, wo, Cin, 0, b ? 1.0f : 0.0f, y, Cout, 0);
}

void CudaBackend::linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                                  const float* w, int M, int Cin, int Cout, const void* dy_narrow,
                                  const void* x_narrow, void* dx_narrow, bool accumulate_dx) {
  PN_CHECK(M >= 0 && Cin >= 0 && Cout >= 0);
  PN_CHECK(!dx_narrow || (narrow_gradients() && s_->precision == s_->mode_precision));
  PN_CHECK(!(dx_narrow && accumulate_dx));
  if (dx_narrow) dx = nullptr;  // only the 2-byte form is written
  if (!dx && !dx_narrow && !dw && !db) return;
  if (dx || dx_narrow || dw) {
    // dy is an operand of both products: convert it once.
    const void* dyo = cuda::gemm_operand(*s_, State::kGemmA, dy, size_t(M) * Cout, dy_narrow);
    // dw first: dx_narrow may overwrite x's copy, which dw reads.
    if (dw) {
      // dw(Cout, Cin) = dy(M, Cout)^T x(M, Cin)
      const void* xo = cuda::gemm_operand(*s_, State::kGemmB, x, size_t(M) * Cin, x_narrow);
      cuda::gemm(*s_, true, false, Cout, Cin, M, dyo, Cout, 0, xo, Cin, 0, 0.0f, dw, Cin, 0);
    }
    if (dx || dx_narrow) {
      // dx(M, Cin) = dy(M, Cout) w(Cout, Cin); slot B is free again (stream order).
      const void* wo = cuda::gemm_operand(*s_, State::kGemmB, w, size_t(Cout) * Cin);
      if (dx_narrow)
        cuda::gemm_to_narrow(*s_, false, false, M, Cin, Cout, dyo, Cout, wo, Cin, dx_narrow, Cin);
      else
        cuda::gemm(*s_, false, false, M, Cin, Cout, dyo, Cout, 0, wo, Cin, 0, accumulate_dx ? 1.0f : 0.0f, dx, Cin, 0);
    }
  }
  if (db && Cout > 0) {
    // db = column sums of dy, in double and in a fixed order (deterministic).
    const double* sums = cuda::column_sums(*s_, cuda::ReduceTerm::kSum, dy, nullptr, nullptr,
                                           nullptr, M, Cout);
    cuda::sums_to_float(*s_, db, sums, Cout);
  }
}

}  // namespace pointnet
