// CPU kernels, one family per file (linear.cpp, batchnorm.cpp, ...). Each is a
// template instantiated for float (training, inference) and double (gradient
// checks). Semantics, shapes and = / += conventions are those of the op
// contract in model/backend.h; this header only lists them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pointnet {
class Communicator;  // dist/communicator.h
}

namespace pointnet::cpu {

// `group` (batchnorm_*_train/backward, wide_max_*_train/backward): SyncBN,
// statistics over every rank's rows (Backend::set_batchnorm_group); null or
// one rank: this rank's rows alone.

// linear.cpp (OpenBLAS GEMM)
template <typename T> void linear_forward(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout);
// accumulate_dx: dx += dy w instead of dx = dy w.
template <typename T> void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int M, int Cin, int Cout, bool accumulate_dx = false);
// plain loops (in linear.cpp): the ground truth the BLAS path is tested against
template <typename T> void linear_forward_reference(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout);

// batchnorm.cpp
template <typename T> void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x, const T* gamma, const T* beta, int M, int C, double eps, double momentum, Communicator* group = nullptr);
template <typename T> void batchnorm_forward_eval(T* y, const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var, int M, int C, double eps);
template <typename T> void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int M, int C, Communicator* group = nullptr);

// pointwise.cpp
template <typename T> void relu_forward(T* y, const T* x, size_t count);
template <typename T> void relu_backward(T* dx, const T* dy, const T* y, size_t count);
template <typename T> void multiply(T* y, const T* x, const T* mask, size_t count);
template <typename T> bool all_finite(const T* x, size_t count);

// pooling.cpp
template <typename T> void max_over_points_forward(T* y, int32_t* argmax, const T* x, int B, int N, int C);
template <typename T> void max_over_points_backward(T* dx, const T* dy, const int32_t* argmax, int B, int N, int C);
template <typename T> void concat_global_forward(T* y, const T* global, const T* pointfeat, int B, int N, int G, int P);
template <typename T> void concat_linear_forward(T* y, const T* global, const T* pointfeat, const T* w, const T* bias, int B, int N, int G, int P, int Cout);
template <typename T> void concat_linear_backward(T* dglobal, T* dpointfeat, T* dw, T* dbias, const T* dy, const T* global, const T* pointfeat, const T* w, int B, int N, int G, int P, int Cout);
template <typename T> void concat_global_backward(T* dglobal, T* dpointfeat, const T* dy, int B, int N, int G, int P);

// transform.cpp
template <typename T> void transform_forward(T* y, const T* x, const T* t, int B, int N, int K);
template <typename T> void transform_backward(T* dx, T* dt, const T* dy, const T* x, const T* t, int B, int N, int K);
template <typename T> void add_identity(T* t, int B, int K);
template <typename T> double transform_regularizer(const T* t, int B, int K);
template <typename T> void transform_regularizer_backward_accumulate(T* dt, const T* t, int B, int K, T weight);

// loss.cpp
template <typename T> void log_softmax_forward(T* y, const T* x, int M, int K);
template <typename T> double nll_loss(int64_t* correct, const T* logp, const int32_t* target, int M, int K);
template <typename T> void log_softmax_nll_backward(T* dx, const T* logp, const int32_t* target, int M, int K, T scale);
template <typename T> void argmax_rows(int32_t* argmax, const T* x, int M, int K);

// wide_max.cpp (the fused conv + BatchNorm + ReLU + max over points)
template <typename T> void wide_max_forward_train(T* y, T* input_mean, T* input_cov, T* mean, T* invstd, T* selected, int32_t* selected_row, T* running_mean, T* running_var, const T* x, const T* w, const T* bias, const T* gamma, const T* beta, int B, int N, int K, int C, bool relu, double eps, double momentum, Communicator* group = nullptr);
template <typename T> void wide_max_forward_eval(T* y, const T* x, const T* w, const T* bias, const T* gamma, const T* beta, const T* running_mean, const T* running_var, int B, int N, int K, int C, bool relu, double eps);
template <typename T> void wide_max_backward(T* dx, T* dw, T* dbias, T* dgamma, T* dbeta, const T* dy, const T* y, const T* input_mean, const T* input_cov, const T* mean, const T* invstd, const T* selected, const int32_t* selected_row, const T* x, const T* w, const T* gamma, int B, int N, int K, int C, bool relu, Communicator* group = nullptr);

// adam.cpp
template <typename T> void adam_step(T* param, const T* grad, T* m, T* v, size_t count, double lr, double beta1, double beta2, double eps, int64_t step, double grad_scale, double weight_decay);

// gemm.cpp: row-major C(M, N) = alpha * op(A) op(B) + beta * C through OpenBLAS.
template <typename T> void gemm(bool transpose_a, bool transpose_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B, int ldb, T beta, T* C, int ldc);

}  // namespace pointnet::cpu
