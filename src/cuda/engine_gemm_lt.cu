#include "cuda/engine_gemm_lt.h"

#include <cublasLt.h>

#include <cstdint>
#include <utility>

#include "cuda/check.h"

#define LT_CHECK(call)                                                                               \
  do {                                                                                               \
    const cublasStatus_t pn_lt_status_ = (call);                                                     \
    if (pn_lt_status_ != CUBLAS_STATUS_SUCCESS)                                                      \
      ::pointnet::cuda::throw_cublas(pn_lt_status_, #call, __FILE__, __LINE__);                      \
  } while (0)

namespace pointnet::cuda_engine {

namespace {
constexpr size_t kWorkspaceBytes = size_t(4) << 20;
}

// Column-major view: D(out, rows) = W^T(out, in) X(in, rows) + bias (per row of D).
struct LtLinear::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool found = false;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {
// The largest power of two (at most 256, cuBLASLt's default assumption) that
// divides the address: what the plan may assume of a pointer.
uint32_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}
}  // namespace

struct LtLinear::State {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = kWorkspaceBytes;
  bool owns_workspace = true;
  // (batch, rows, in, out, relu, operand, compute and output types, alignments of w, x, y, w's row stride)
  using Key = std::tuple<int, int, int, int, bool, int, int, int, uint32_t, uint32_t, uint32_t, int>;
  std::map<Key, std::unique_ptr<Plan>> plans;

  Plan& plan(int batch, int rows, int in, int out, bool relu, Math math, uint32_t align_w, uint32_t align_x,
             uint32_t align_y, int ldw) {
    auto& slot = plans[{batch, rows, in, out, relu, static_cast<int>(math.operands), static_cast<int>(math.compute),
                        static_cast<int>(math.out), align_w, align_x, align_y, ldw}];
    if (slot) return *slot;
    auto p = std::make_unique<Plan>();
    LT_CHECK(cublasLtMatmulDescCreate(&p->desc, math.compute, CUDA_R_32F));
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
    const cublasLtEpilogue_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    const cudaDataType_t bias_type = math.out;  // as y, whatever the operands
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                            sizeof bias_type));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, math.operands, in, out, ldw));  // w stored (in, out) column-major
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, math.operands, in, rows, in)); // x stored (in, rows)
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->d, math.out, out, rows, out));    // y stored (out, rows)
    if (batch > 1) {  // consecutive blocks of x and y, one w, a bias per block
      const int64_t bias_stride = out, w_stride = 0;
      const int64_t x_stride = static_cast<int64_t>(rows) * in, y_stride = static_cast<int64_t>(rows) * out;
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                              sizeof bias_stride));
      for (auto [layout, stride] : {std::pair{p->a, w_stride}, std::pair{p->b, x_stride}, std::pair{p->d, y_stride}}) {
        LT_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
        LT_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                  sizeof stride));
      }
    }
    cublasLtMatmulPreference_t pref = nullptr;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                                  sizeof workspace_bytes));
    // The algorithm may assume no more alignment than these pointers have.
    for (auto [attribute, bytes] : {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_w},
                                    std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_x},
                                    std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_y},
                                    std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_y}})
      LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attribute, &bytes, sizeof bytes));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_NOT_SUPPORTED) LT_CHECK(st);
    p->found = st == CUBLAS_STATUS_SUCCESS && found >= 1;
    if (p->found) p->algo = result.algo;
    slot = std::move(p);
    return *slot;
  }
};

LtLinear::LtLinear() : state_(std::make_unique<State>()) {
  LT_CHECK(cublasLtCreate(&state_->handle));
  CUDA_CHECK(cudaMalloc(&state_->workspace, kWorkspaceBytes));
}

LtLinear::LtLinear(void* workspace, size_t bytes) : state_(std::make_unique<State>()) {
  LT_CHECK(cublasLtCreate(&state_->handle));
  state_->workspace = workspace;
  state_->workspace_bytes = bytes;
  state_->owns_workspace = false;
}

LtLinear::~LtLinear() {
  state_->plans.clear();
  if (state_->workspace && state_->owns_workspace) cudaFree(state_->workspace);
  if (state_->handle) cublasLtDestroy(state_->handle);
}

void LtLinear::run(const void* x, int rows, int in, const void* w, const float* bias, int out, bool relu, float* y,
                   cudaStream_t stream, Math math) {
  if (!try_run(x, rows, in, w, bias, out, relu, y, stream, math))
    fail("cuBLASLt found no algorithm for a ", rows, " x ", in, " -> ", out, " layer");
}

bool LtLinear::has_algorithm(const void* x, int batch, int rows, int in, const void* w, int out, bool relu,
                             const void* y, Math math) {
  return state_->plan(batch, rows, in, out, relu, math, alignment_of(w), alignment_of(x), alignment_of(y), in).found;
}

bool LtLinear::try_run_batched(const void* x, int batch, int rows, int in, const void* w, const void* bias, int out,
                               bool relu, void* y, cudaStream_t stream, Math math, int ldw) {
  Plan& p = state_->plan(batch, rows, in, out, relu, math, alignment_of(w), alignment_of(x), alignment_of(y),
                         ldw > 0 ? ldw : in);
  if (!p.found) return false;
  LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  const float one = 1.f, zero = 0.f;
  const cublasStatus_t st = cublasLtMatmul(state_->handle, p.desc, &one, w, p.a, x, p.b, &zero, y, p.d, y, p.d,
                                           &p.algo, state_->workspace, state_->workspace_bytes, stream);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) return false;  // nothing queued
  LT_CHECK(st);
  return true;
}

}  // namespace pointnet::cuda_engine
