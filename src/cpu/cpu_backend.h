// The CPU implementation of the op contract: host memory, kernels from
// cpu/kernels.h (OpenBLAS GEMMs, OpenMP loops). Instantiated for float and double.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>

#include "cpu/kernels.h"
#include "model/backend.h"

namespace pointnet {

// Not final: tests derive from it to play backends with other abilities
// (test_train_step.cpp: one that says it can record but cannot).
template <typename T>
class CpuBackend : public Backend<T> {
 public:
  const char* name() const override { return "cpu"; }
  void set_batchnorm_group(Communicator* group) override { group_ = group; }

  T* allocate(size_t count) override { return static_cast<T*>(aligned(count * sizeof(T))); }
  void release(T* pointer) override { std::free(pointer); }
  int32_t* allocate_index(size_t count) override { return static_cast<int32_t*>(aligned(count * sizeof(int32_t))); }
  void release_index(int32_t* pointer) override { std::free(pointer); }
  void upload(T* device, const T* host, size_t count) override { std::memcpy(device, host, count * sizeof(T)); }
  void download(T* host, const T* device, size_t count) override { std::memcpy(host, device, count * sizeof(T)); }
  void upload_index(int32_t* device, const int32_t* host, size_t count) override { std::memcpy(device, host, count * sizeof(int32_t)); }
  void download_index(int32_t* host, const int32_t* device, size_t count) override { std::memcpy(host, device, count * sizeof(int32_t)); }
  void fill(T* x, T value, size_t count) override { for (size_t i = 0; i < count; ++i) x[i] = value; }
  void copy(T* y, const T* x, size_t count) override { std::memcpy(y, x, count * sizeof(T)); }
  void multiply(T* y, const T* x, const T* mask, size_t count) override { cpu::multiply(y, x, mask, count); }

  // No 2-byte copies here (narrow_activations() is false): the *_narrow arguments are ignored.
  void linear_forward(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout,
                      const void* /*x_narrow*/ = nullptr, void* y_narrow = nullptr) override {
    PN_CHECK(!y_narrow);  // narrow_linear_outputs() is false here
    cpu::linear_forward(y, x, w, b, M, Cin, Cout);
  }
  void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int M, int Cin, int Cout,
                       const void* /*dy_narrow*/ = nullptr, const void* /*x_narrow*/ = nullptr,
                       void* dx_narrow = nullptr, bool accumulate_dx = false) override {
    PN_CHECK(!dx_narrow);  // narrow_gradients() is false here
    cpu::linear_backward(dx, dw, db, dy, x, w, M, Cin, Cout, accumulate_dx);
  }
  void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x, const T* gamma,
                               const T* beta, int M, int C, double eps, double momentum) override {
    cpu::batchnorm_forward_train(y, mean, invstd, running_mean, running_var, x, gamma, beta, M, C, eps, momentum,
                                 group_);
  }
  void batchnorm_forward_eval(T* y, const T* x, const T* gamma, const T* beta, const T* running_mean,
                              const T* running_var, int M, int C, double eps) override {
    cpu::batchnorm_forward_eval(y, x, gamma, beta, running_mean, running_var, M, C, eps);
  }
  void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma, const T* mean,
                          const T* invstd, int M, int C) override {
    cpu::batchnorm_backward(dx, dgamma, dbeta, dy, x, gamma, mean, invstd, M, C, group_);
  }
  void relu_forward(T* y, const T* x, size_t count) override { cpu::relu_forward(y, x, count); }
  void relu_backward(T* dx, const T* dy, const T* y, size_t count) override { cpu::relu_backward(dx, dy, y, count); }
  void max_over_points_forward(T* y, int32_t* argmax, const T* x, int B, int N, int C) override {
    cpu::max_over_points_forward(y, argmax, x, B, N, C);
  }
  void max_over_points_backward(T* dx, const T* dy, const int32_t* argmax, int B, int N, int C) override {
    cpu::max_over_points_backward(dx, dy, argmax, B, N, C);
  }
  void transform_forward(T* y, const T* x, const T* t, int B, int N, int K, const void* = nullptr,
                         void* = nullptr) override {
    cpu::transform_forward(y, x, t, B, N, K);
  }
  void transform_backward(T* dx, T* dt, const T* dy, const T* x, const T* t, int B, int N, int K,
                          const void* = nullptr) override {
    cpu::transform_backward(dx, dt, dy, x, t, B, N, K);
  }
  void add_identity(T* t, int B, int K) override { cpu::add_identity(t, B, K); }
  void concat_global_forward(T* y, const T* global, const T* pointfeat, int B, int N, int G, int P) override {
    cpu::concat_global_forward(y, global, pointfeat, B, N, G, P);
  }
  void concat_global_backward(T* dglobal, T* dpointfeat, const T* dy, int B, int N, int G, int P) override {
    cpu::concat_global_backward(dglobal, dpointfeat, dy, B, N, G, P);
  }
  void log_softmax_forward(T* y, const T* x, int M, int K) override { cpu::log_softmax_forward(y, x, M, K); }
  double nll_loss(int64_t* correct, const T* logp, const int32_t* target, int M, int K) override {
    return cpu::nll_loss(correct, logp, target, M, K);
  }
  void log_softmax_nll_backward(T* dx, const T* logp, const int32_t* target, int M, int K, T scale) override {
    cpu::log_softmax_nll_backward(dx, logp, target, M, K, scale);
  }
  void argmax_rows(int32_t* argmax, const T* x, int M, int K) override { cpu::argmax_rows(argmax, x, M, K); }
  double transform_regularizer(const T* t, int B, int K) override { return cpu::transform_regularizer(t, B, K); }
  void transform_regularizer_backward_accumulate(T* dt, const T* t, int B, int K, T weight) override {
    cpu::transform_regularizer_backward_accumulate(dt, t, B, K, weight);
  }
  void concat_linear_forward(T* y, const T* global, const T* pointfeat, const T* w, const T* bias, int B, int N,
                             int G, int P, int Cout, const void* /*pointfeat_narrow*/ = nullptr,
                             void* /*y_narrow*/ = nullptr) override {
    cpu::concat_linear_forward(y, global, pointfeat, w, bias, B, N, G, P, Cout);
  }
  void concat_linear_backward(T* dglobal, T* dpointfeat, T* dw, T* dbias, const T* dy, const T* global,
                              const T* pointfeat, const T* w, int B, int N, int G, int P, int Cout,
                              const void* /*pointfeat_narrow*/ = nullptr, const void* dy_narrow = nullptr) override {
    PN_CHECK(!dy_narrow);  // no 2-byte copies here
    cpu::concat_linear_backward(dglobal, dpointfeat, dw, dbias, dy, global, pointfeat, w, B, N, G, P, Cout);
  }
  void wide_max_forward_train(T* y, const WideMaxSaved<T>& s, T* running_mean, T* running_var, const T* x,
                              const T* w, const T* bias, const T* gamma, const T* beta, int B, int N, int K, int C,
                              bool relu, double eps, double momentum,
                              const void* /*x_narrow*/ = nullptr) override {
    cpu::wide_max_forward_train(y, s.input_mean, s.input_cov, s.mean, s.invstd, s.selected, s.selected_row,
                                running_mean, running_var, x, w, bias, gamma, beta, B, N, K, C, relu, eps, momentum,
                                group_);
  }
  void wide_max_forward_eval(T* y, const T* x, const T* w, const T* bias, const T* gamma, const T* beta,
                             const T* running_mean, const T* running_var, int B, int N, int K, int C, bool relu,
                             double eps) override {
    cpu::wide_max_forward_eval(y, x, w, bias, gamma, beta, running_mean, running_var, B, N, K, C, relu, eps);
  }
  void wide_max_backward(T* dx, T* dw, T* dbias, T* dgamma, T* dbeta, const T* dy, const T* y,
                         const WideMaxSaved<T>& s, const T* x, const T* w, const T* gamma, int B, int N, int K,
                         int C, bool relu, const void* /*x_narrow*/ = nullptr, void* dx_narrow = nullptr) override {
    PN_CHECK(!dx_narrow);  // wide_max_writes_narrow_dx() is false here
    cpu::wide_max_backward(dx, dw, dbias, dgamma, dbeta, dy, y, s.input_mean, s.input_cov, s.mean, s.invstd,
                           s.selected, s.selected_row, x, w, gamma, B, N, K, C, relu, group_);
  }
  bool all_finite(const T* x, size_t count) override { return cpu::all_finite(x, count); }
  void adam_step(T* param, const T* grad, T* m, T* v, size_t count, double lr, double beta1, double beta2,
                 double eps, int64_t step, double grad_scale, double weight_decay) override {
    cpu::adam_step(param, grad, m, v, count, lr, beta1, beta2, eps, step, grad_scale, weight_decay);
  }

 private:
  // 64-byte alignment: whole cache lines and AVX-512 vectors.
  static void* aligned(size_t bytes) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!p) throw std::bad_alloc();
    return p;
  }

  Communicator* group_ = nullptr;  // SyncBN's ranks (set_batchnorm_group), or none
};

}  // namespace pointnet
