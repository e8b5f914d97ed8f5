// The op contract: every kernel the model needs, as one abstract interface.
// The CPU backend (src/cpu) implements it today; a CUDA backend implements the
// same interface later, so the model definition (src/model) is written once.
//
// Conventions (DESIGN.md house rules):
// - Pointers live in the backend's memory. Shapes are given beside each one.
// - Forward: outputs first, then inputs, then sizes. Backward: gradients of the
//   inputs first (d<x>), then the output gradient, then saved tensors, then sizes.
// - Every kernel OVERWRITES its outputs and gradients (=), except the ones
//   whose name ends in _accumulate (+=). A null gradient pointer means "not needed".
// - Rows are points (or clouds): activations are (M, C) row-major, M = B*N.
// - The optional 2-byte copies (`*_narrow`, narrow_activations()) and the
//   sums that come with them trail the sizes, defaulted to null, so that the
//   calls without them read as before.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/errors.h"

namespace pointnet {

class Communicator;  // dist/communicator.h

// What the fused wide layer (wide_max_* below) saves for its backward, all in
// backend memory. K = input channels, C = output channels.
template <typename T>
struct WideMaxSaved {
  T* input_mean = nullptr;        // (K) mean over the B*N rows of x
  T* input_cov = nullptr;         // (K, K) biased covariance of x's rows
  T* mean = nullptr;              // (C) batch mean of z = x w^T + bias
  T* invstd = nullptr;            // (C) 1 / sqrt(biased var(z) + eps)
  T* selected = nullptr;          // (B, C) z at the point the max picked
  int32_t* selected_row = nullptr;  // (B, C) that point's index n within its cloud
};

template <typename T>
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Waits until every op queued so far has finished (benchmarks read the clock
  // after it). The CPU backend runs each op to completion before returning, so
  // it has nothing to wait for; the CUDA backend waits for its stream.
  virtual void synchronize() {}

  // Marks the GEMMs queued until the next call as per-cloud (true: the fully
  // connected layers over B rows, a sliver of the FLOPs) or per-point (false,
  // the default). A mixed-precision backend may keep per-cloud GEMMs in fp32
  // (CudaBackend::set_fp32_per_cloud); the others ignore it.
  virtual void per_cloud_gemms(bool /*per_cloud*/) {}

  // SyncBN (data-parallel training): BatchNorm in training, plain and in the
  // fused wide layer, normalises with the statistics of the rows of every rank
  // of `group` (null, the default: this rank's rows alone). The sums that feed
  // dx are all-reduced inside the backward; the parameter gradients stay this
  // rank's contribution, for the gradient all-reduce to add up. Every rank
  // runs the same layers in the same order. A backend without it refuses.
  virtual void set_batchnorm_group(Communicator* group) {
    if (group) fail("synchronised BatchNorm (--sync-bn) is not supported on the ", name(), " backend yet");
  }

  // Memory.
  virtual T* allocate(size_t count) = 0;
  virtual void release(T* pointer) = 0;
  virtual int32_t* allocate_index(size_t count) = 0;
  virtual void release_index(int32_t* pointer) = 0;
  virtual void upload(T* device, const T* host, size_t count) = 0;
  virtual void download(T* host, const T* device, size_t count) = 0;
  virtual void upload_index(int32_t* device, const int32_t* host, size_t count) = 0;
  virtual void download_index(int32_t* host, const int32_t* device, size_t count) = 0;
  virtual void fill(T* x, T value, size_t count) = 0;
  virtual void copy(T* y, const T* x, size_t count) = 0;
  // y = x * mask (dropout forward and backward; mask holds 0 or 1/(1-p))
  virtual void multiply(T* y, const T* x, const T* mask, size_t count) = 0;

  // 2-byte copies of activations. A backend whose GEMMs read fp16 or bf16
  // operands (CUDA in those modes) converts each fp32 operand first, a pass
  // over it per GEMM. Where narrow_activations() is true, the ops that take a
  // `*_narrow` pointer below also write (or read) that tensor's copy in the
  // mode's 2-byte type, rounded as the conversion rounds, so a GEMM given the
  // copy reads the same values without the pass. The caller owns the copies
  // (narrow_count(n) T's hold n values), keeps each unchanged while it is
  // read, and runs a forward and its backward in one precision mode.
  // Elsewhere it is false and the `*_narrow` arguments are ignored.
  virtual bool narrow_activations() const { return false; }
  static size_t narrow_count(size_t values) { return (values * 2 + sizeof(T) - 1) / sizeof(T); }
  // The same for the trainable values (weights): a backend whose GEMMs read
  // fp16 / bf16 operands converts values(count) here in one pass, and every
  // GEMM operand inside that range then reads the copy instead of converting
  // the weight again per GEMM (two small launches per layer and direction).
  // The copy holds until the next call (narrow_weights(nullptr, 0) drops it)
  // or set_precision, or until adam_step, upload, copy, fill or release touch
  // those values; the caller changes them no other way in between (the model
  // calls it at the start of each forward and drops it at the end of its
  // backward). Elsewhere it does nothing.
  virtual void narrow_weights(const T* /*values*/, size_t /*count*/) {}
  // Where true (only with narrow_activations()), a training conv layer with
  // BatchNorm and ReLU may keep its linear output z in the mode's 2-byte type
  // only, as PyTorch's autocast does: linear_forward writes it (y_narrow), and
  // the BatchNorm+ReLU forward and backward read it (x_narrow). z is then
  // rounded once more than in fp32, and every pass over it moves half the bytes.
  virtual bool narrow_linear_outputs() const { return false; }
  // Where true (only with narrow_activations()), a conv layer's input
  // gradient may be handed on in the mode's 2-byte type only, as autocast's
  // gradients of half tensors are: linear_backward writes it (dx_narrow) and
  // the producer's BatchNorm+ReLU backward reads it (dy_narrow). The gradient
  // is then rounded once, and its three passes move half the bytes.
  virtual bool narrow_gradients() const { return false; }
  // Where true, batchnorm_relu_backward honours dx_sum with an fp32 dx too
  // (dx's column sums, the preceding linear layer's bias gradient, taken in
  // the same pass: linear_backward's own column sums of dy are skipped).
  virtual bool batchnorm_sums_dx() const { return false; }

  // 1x1 convolution / fully connected layer: y(M, Cout) = x(M, Cin) w(Cout, Cin)^T + b(Cout).
  // x_narrow: x's 2-byte copy, or null. y_narrow (narrow_linear_outputs()
  // only): y is written there in the mode's 2-byte type instead, and y is
  // ignored (may be null).
  virtual void linear_forward(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout,
                              const void* x_narrow = nullptr, void* y_narrow = nullptr) = 0;
  // dx(M, Cin) = dy w; dw(Cout, Cin) = dy^T x; db(Cout) = sum over rows of dy.
  // dy_narrow, x_narrow: the 2-byte copies of dy and x, or null. dx_narrow
  // (narrow_gradients() only): dx is written there in the mode's 2-byte type
  // instead, and dx is ignored (may be null); it may be x_narrow itself (dw
  // reads x before dx is written). accumulate_dx: dx += dy w (not with
  // dx_narrow).
  virtual void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int M,
                               int Cin, int Cout, const void* dy_narrow = nullptr,
                               const void* x_narrow = nullptr, void* dx_narrow = nullptr,
                               bool accumulate_dx = false) = 0;

  // Batch normalisation over the M rows of x(M, C), training mode: normalises
  // with the batch mean and biased variance, saves mean(C) and invstd(C) for
  // the backward, and updates running stats with momentum and UNBIASED variance.
  virtual void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var,
                                       const T* x, const T* gamma, const T* beta, int M, int C,
                                       double eps, double momentum) = 0;
  // Eval mode: normalises with the running statistics; y == x allowed.
  virtual void batchnorm_forward_eval(T* y, const T* x, const T* gamma, const T* beta,
                                      const T* running_mean, const T* running_var, int M, int C,
                                      double eps) = 0;
  virtual void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                                  const T* gamma, const T* mean, const T* invstd, int M, int C) = 0;
  // The batch normalisations above followed by relu_forward(y, y): the same
  // values, in one pass over the activations where a backend fuses them.
  // y_narrow (this ReLU'd variant only): y's 2-byte copy is written there
  // too; with it, y may be null: only the copy. x_narrow (where
  // narrow_linear_outputs()): x is read from there, in the mode's 2-byte
  // type, and x is ignored (may be null).
  virtual void batchnorm_relu_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var,
                                            const T* x, const T* gamma, const T* beta, int M, int C, double eps,
                                            double momentum, void* /*y_narrow*/ = nullptr,
                                            const void* x_narrow = nullptr) {
    if (x_narrow) fail("the ", name(), " backend keeps no 2-byte linear outputs");
    batchnorm_forward_train(y, mean, invstd, running_mean, running_var, x, gamma, beta, M, C, eps, momentum);
    relu_forward(y, y, static_cast<size_t>(M) * C);
  }
  // Eval, ReLU'd: y == x allowed, as batchnorm_forward_eval.
  virtual void batchnorm_relu_forward_eval(T* y, const T* x, const T* gamma, const T* beta, const T* running_mean,
                                           const T* running_var, int M, int C, double eps) {
    batchnorm_forward_eval(y, x, gamma, beta, running_mean, running_var, M, C, eps);
    relu_forward(y, y, static_cast<size_t>(M) * C);
  }

  // The backward of batchnorm_relu_forward_train: relu_backward(dx, dy, y)
  // then batchnorm_backward(dx, ..., dx, x, ...); dx == dy allowed; dgamma and
  // dbeta overwritten (=). y, mean and invstd must come from this backend's
  // training forward of the same x, gamma and beta: a backend may recompute
  // the ReLU's mask from them (its forward's exact bits) and never read y,
  // one pass over the activations fewer. dx_narrow: dx's 2-byte copy is
  // written there too; with it, dx_sum (C) is overwritten with dx's column
  // sums (the same bits as linear_backward's db from dx) and dx may be null:
  // only the copy. x_narrow: x read from its 2-byte form, as in the forward.
  // dy_narrow (narrow_gradients() only, with dx_narrow and dx_sum): dy read
  // from its 2-byte form, dy ignored; it may be dx_narrow itself (in place).
  virtual void batchnorm_relu_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* y,
                                       const T* gamma, const T* beta, const T* mean, const T* invstd, int M,
                                       int C, void* /*dx_narrow*/ = nullptr, T* /*dx_sum*/ = nullptr,
                                       const void* x_narrow = nullptr, const void* dy_narrow = nullptr) {
    if (x_narrow) fail("the ", name(), " backend keeps no 2-byte linear outputs");
    if (dy_narrow) fail("the ", name(), " backend keeps no 2-byte gradients");
    static_cast<void>(beta);
    relu_backward(dx, dy, y, static_cast<size_t>(M) * C);
    batchnorm_backward(dx, dgamma, dbeta, dx, x, gamma, mean, invstd, M, C);
  }

  // y = max(x, 0); in place allowed. dx = dy where y > 0 else 0; in place allowed.
  virtual void relu_forward(T* y, const T* x, size_t count) = 0;
  virtual void relu_backward(T* dx, const T* dy, const T* y, size_t count) = 0;

  // y(B, C) = max over n of x(B, N, C); argmax(B, C) remembers the winning n.
  virtual void max_over_points_forward(T* y, int32_t* argmax, const T* x, int B, int N, int C) = 0;
  // dx(B, N, C) = dy(B, C) scattered to the argmax rows, zero elsewhere.
  virtual void max_over_points_backward(T* dx, const T* dy, const int32_t* argmax, int B, int N,
                                        int C) = 0;

  // Per-cloud transform: y[b](N, K) = x[b](N, K) t[b](K, K) (pointnet.pytorch's bmm).
  // x_narrow: x's 2-byte copy (narrow_activations), or null: GEMMs that take
  // 2-byte operands read it instead of converting x (the same values).
  // y_narrow (narrow_activations only): y's 2-byte copy is written there too.
  virtual void transform_forward(T* y, const T* x, const T* t, int B, int N, int K,
                                 const void* x_narrow = nullptr, void* y_narrow = nullptr) = 0;
  virtual void transform_backward(T* dx, T* dt, const T* dy, const T* x, const T* t, int B, int N, int K,
                                  const void* x_narrow = nullptr) = 0;
  // t(B, K*K) += identity (the T-Net's "+ iden").
  virtual void add_identity(T* t, int B, int K) = 0;

  // Segmentation head input: y(B, N, G+P) = [global(B, G) repeated over N, pointfeat(B, N, P)].
  virtual void concat_global_forward(T* y, const T* global, const T* pointfeat, int B, int N, int G,
                                     int P) = 0;
  virtual void concat_global_backward(T* dglobal, T* dpointfeat, const T* dy, int B, int N, int G,
                                      int P) = 0;

  // The segmenter's first head layer without materialising its input: row
  // (b, n) of that input is [global(b), pointfeat(b, n)] (concat_global_forward),
  // so with w = [wg | wp] (Cout, G+P):
  //   y(B*N, Cout) = global(b) wg^T + pointfeat(b, n) wp^T + bias.
  // The global part is computed once per cloud, not once per point.
  // pointfeat_narrow: pointfeat's 2-byte copy, or null. y_narrow (where
  // narrow_linear_outputs()): y written there in the mode's 2-byte type
  // instead, as linear_forward's.
  virtual void concat_linear_forward(T* y, const T* global, const T* pointfeat, const T* w, const T* bias, int B,
                                     int N, int G, int P, int Cout, const void* pointfeat_narrow = nullptr,
                                     void* y_narrow = nullptr) = 0;
  // Gradients (=) of global (B, G), pointfeat (B*N, P), w (Cout, G+P) and bias
  // (Cout; skipped when null) from dy (B*N, Cout). dy_narrow: dy's 2-byte
  // copy, read instead of dy (then null).
  virtual void concat_linear_backward(T* dglobal, T* dpointfeat, T* dw, T* dbias, const T* dy, const T* global,
                                      const T* pointfeat, const T* w, int B, int N, int G, int P, int Cout,
                                      const void* pointfeat_narrow = nullptr, const void* dy_narrow = nullptr) = 0;

  // y(M, K) = log_softmax over each row of x; y may be x (in place).
  virtual void log_softmax_forward(T* y, const T* x, int M, int K) = 0;
  // Returns mean over rows of -logp[row, target[row]] and the count of rows
  // whose argmax equals the target (for accuracy).
  virtual double nll_loss(int64_t* correct, const T* logp, const int32_t* target, int M, int K) = 0;
  // Gradient of scale * sum_rows nll(log_softmax(x)): dx = scale * (exp(logp) - onehot(target)).
  virtual void log_softmax_nll_backward(T* dx, const T* logp, const int32_t* target, int M, int K,
                                        T scale) = 0;
  // argmax(M) of each row of x(M, K).
  virtual void argmax_rows(int32_t* argmax, const T* x, int M, int K) = 0;

  // Feature-transform regulariser: mean over b of ||t[b] t[b]^T - I||_F (not squared).
  virtual double transform_regularizer(const T* t, int B, int K) = 0;
  // dt(B, K, K) += weight * d(regulariser)/dt.
  virtual void transform_regularizer_backward_accumulate(T* dt, const T* t, int B, int K,
                                                         T weight) = 0;

  // The fused wide layer: PointNet's 1x1 conv to 1024 channels, BatchNorm,
  // optional ReLU, and the max over each cloud's points, in one op:
  //   y(B, C) = max over n of act(BN(z[b, n, :])),  z = x w^T + bias,  x (B*N, K).
  // The (B*N, C) activation is never kept. BatchNorm's statistics follow from
  // x's mean and covariance (var_c = w_c^T cov(x) w_c); BN is affine per
  // channel, so the max over points is z's max where gamma >= 0 and its min
  // where gamma < 0; and the backward needs only those picked points plus
  // x's statistics (see DESIGN notes in src/cpu/wide_max.cpp). The results
  // equal linear_forward + batchnorm_forward_train + relu + max_over_points up
  // to rounding (and to which point wins an exact tie; gamma == 0 exactly
  // picks z's max). Training mode: batch statistics, running stats updated
  // as batchnorm_forward_train does. x_narrow: x's 2-byte copy, or null.
  virtual void wide_max_forward_train(T* y, const WideMaxSaved<T>& saved, T* running_mean, T* running_var,
                                      const T* x, const T* w, const T* bias, const T* gamma, const T* beta,
                                      int B, int N, int K, int C, bool relu, double eps, double momentum,
                                      const void* x_narrow = nullptr) = 0;
  // Eval mode: BatchNorm with the running statistics.
  virtual void wide_max_forward_eval(T* y, const T* x, const T* w, const T* bias, const T* gamma,
                                     const T* beta, const T* running_mean, const T* running_var, int B,
                                     int N, int K, int C, bool relu, double eps) = 0;
  // Gradients (=) of w (C, K), bias (C) (exactly zero: BatchNorm removes it),
  // gamma, beta (C), and of x (B*N, K) unless dx is null, given dy (B, C) and
  // the forward's y and saved tensors.
  // x_narrow: x's 2-byte copy, as given to the forward, or null.
  // dx_narrow (only where wide_max_writes_narrow_dx(), with dx null): dx is
  // written there in the mode's 2-byte type instead; it must not overlap
  // x_narrow.
  virtual void wide_max_backward(T* dx, T* dw, T* dbias, T* dgamma, T* dbeta, const T* dy, const T* y,
                                 const WideMaxSaved<T>& saved, const T* x, const T* w, const T* gamma,
                                 int B, int N, int K, int C, bool relu, const void* x_narrow = nullptr,
                                 void* dx_narrow = nullptr) = 0;
  // Whether wide_max_backward takes dx_narrow now (a narrow_gradients() mode).
  virtual bool wide_max_writes_narrow_dx() const { return false; }
  // Where true (only with narrow_activations()), the training wide layer
  // given x_narrow reads x through it alone, forward and backward: x may be
  // null, so the layer feeding it need not write its fp32 output.
  virtual bool wide_max_reads_narrow_input() const { return false; }

  // True when every element of x(count) is finite (no inf, no NaN): the loss
  // scaler's overflow check over the gradients. Hands a host value back, so an
  // asynchronous backend waits for the work queued before it (as nll_loss does).
  virtual bool all_finite(const T* x, size_t count) = 0;

  // Adam (PyTorch's formula) over one flat parameter array, stepping on
  // g = grad * grad_scale + weight_decay * param: 1/S unscales a loss-scaled
  // gradient in the same pass; grad_scale 1 and weight_decay 0 leave every bit
  // as it would be without them (torch.optim.Adam's L2 weight_decay).
  virtual void adam_step(T* param, const T* grad, T* m, T* v, size_t count, double lr, double beta1,
                         double beta2, double eps, int64_t step, double grad_scale, double weight_decay) = 0;

  // nll_loss, transform_regularizer and all_finite in two halves, for a step
  // queued whole before anything is read back (a recorded step, below):
  // queue_* leaves the value in the backend's result slot (one slot each; a
  // later queue_* overwrites it), *_result() waits for the queue and reads it.
  // The defaults compute at once, as the synchronous ops do (CPU).
  virtual void queue_nll_loss(const T* logp, const int32_t* target, int M, int K) {
    queued_nll_ = nll_loss(&queued_correct_, logp, target, M, K);
  }
  virtual double nll_loss_result(int64_t* correct) {
    if (correct) *correct = queued_correct_;
    return queued_nll_;
  }
  virtual void queue_transform_regularizer(const T* t, int B, int K) { queued_regularizer_ = transform_regularizer(t, B, K); }
  virtual double transform_regularizer_result() { return queued_regularizer_; }
  virtual void queue_all_finite(const T* x, size_t count) { queued_finite_ = all_finite(x, count); }
  virtual bool all_finite_result() { return queued_finite_; }

  // Recorded steps (CUDA graphs). The ops queued between begin_recording()
  // and end_recording() are captured, not run; replay(id) runs them again
  // with the same pointers, sizes and scalar arguments, on whatever the memory
  // holds then. Nothing that waits for the queue or allocates may be called
  // while recording (the queue_* halves above are fine); if something does,
  // end_recording() throws and the caller runs the ops eagerly instead.
  // Backends that cannot record say so here and need none of the rest.
  virtual bool can_record() const { return false; }
  virtual void begin_recording() {}
  // Throws pointnet::Error when the recording failed (and leaves the backend
  // usable, not recording); else an id for replay().
  virtual int end_recording() { return -1; }
  virtual void replay(int /*id*/) {}
  virtual void forget_recording(int /*id*/) {}
  // Allocations made so far (recordings hold raw pointers: a recording is
  // stale once a buffer it uses may have moved).
  virtual size_t allocation_count() const { return 0; }

 private:
  double queued_nll_ = 0.0, queued_regularizer_ = 0.0;
  int64_t queued_correct_ = 0;
  bool queued_finite_ = true;
};

}  // namespace pointnet
