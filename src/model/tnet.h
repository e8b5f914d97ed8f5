// The T-Net (pointnet.pytorch's STN3d / STNkd): predicts a K x K transform per
// cloud from the cloud itself. conv K->64->128->1024 (BN, ReLU), max over
// points, fc 1024->512->256 (BN, ReLU), fc 256->K*K, plus identity.
#pragma once
#include <string>

#include "model/config.h"
#include "model/dense.h"
#include "model/wide_max.h"

namespace pointnet {

template <typename T>
struct TNet {
  int k = 3;
  int in_channels = 3;
  Dense<T> conv1, conv2, fc1, fc2, fc3;
  WideMax<T> conv3;        // conv3 + bn3 + ReLU + max over points -> (B, 1024)
  int batch = 0, points = 0;

  // (B, K*K) = fc3 output plus identity, i.e. the transform; row-major K x K.
  const T* transform() const { return fc3.z.data(); }
};

// prefix: "feat.stn" or "feat.fstn". in_channels: the width of its input (K,
// or 6 for the input T-Net over xyz + normals: it sees the normals too).
template <typename T>
void tnet_declare(TNet<T>& net, const std::string& prefix, int k, int in_channels, ParamStore<T>& store);

// x (B, N, in_channels) -> net.transform() (B, K*K). x_narrow: x's 2-byte
// copy (dense_forward), or null.
template <typename T>
void tnet_forward(TNet<T>& net, Backend<T>& be, const ParamStore<T>& store, const T* x, int B,
                  int N, bool training, const void* x_narrow = nullptr);

// dtransform (B, K*K): clobbered. dx (B, N, in_channels): gradient wrt the input, written
// (=) when not null, or added onto (+=) with accumulate_dx. scratch_a/scratch_b:
// each at least B * max(N * 128, 1024): conv3's per-point gradient is the
// widest it writes (half the per-point part where conv3 writes it in 2 bytes,
// wide_max_dx_narrow).
template <typename T>
void tnet_backward(TNet<T>& net, Backend<T>& be, const ParamStore<T>& store, T* dx, T* dtransform,
                   T* scratch_a, T* scratch_b, bool accumulate_dx = false);

}  // namespace pointnet
