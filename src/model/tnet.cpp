#include "model/tnet.h"

namespace pointnet {

template <typename T>
void tnet_declare(TNet<T>& net, const std::string& prefix, int k, int in_channels, ParamStore<T>& store) {
  net.k = k;
  net.in_channels = in_channels;
  const std::string p = prefix + ".";
  dense_declare(net.conv1, {p + "conv1", p + "bn1", in_channels, 64, true, true, false}, store);
  dense_declare(net.conv2, {p + "conv2", p + "bn2", 64, 128, true, true, false}, store);
  net.conv1.output_read_in_fp32 = false;  // by conv2 alone
  net.conv2.input_layer = &net.conv1;
  wide_max_declare(net.conv3, {p + "conv3", p + "bn3", 128, 1024, true, true, false}, store);
  net.conv3.input_layer = &net.conv2;  // conv2's one reader
  dense_declare(net.fc1, {p + "fc1", p + "bn4", 1024, 512, false, true, false}, store);
  dense_declare(net.fc2, {p + "fc2", p + "bn5", 512, 256, false, true, false}, store);
  dense_declare(net.fc3, {p + "fc3", "", 256, k * k, false, false, false}, store);
}

template <typename T>
void tnet_forward(TNet<T>& net, Backend<T>& be, const ParamStore<T>& store, const T* x, int B,
                  int N, bool training, const void* x_narrow) {
  net.batch = B;
  net.points = N;
  const int M = B * N;
  dense_forward(net.conv1, be, store, x, M, training, kBatchNormMomentum, x_narrow);
  net.conv2.output_read_in_fp32 = !be.wide_max_reads_narrow_input();  // by conv3 alone
  dense_forward(net.conv2, be, store, net.conv1.output(), M, training, kBatchNormMomentum,
                net.conv1.output_narrow());
  wide_max_forward(net.conv3, be, store, net.conv2.output(), B, N, training, kBatchNormMomentum,
                   net.conv2.output_narrow());
  dense_forward(net.fc1, be, store, net.conv3.output(), B, training, kBatchNormMomentum);
  dense_forward(net.fc2, be, store, net.fc1.output(), B, training, kBatchNormMomentum);
  dense_forward(net.fc3, be, store, net.fc2.output(), B, training, kBatchNormMomentum);
  be.add_identity(net.fc3.z.data(), B, net.k);
}

template <typename T>
void tnet_backward(TNet<T>& net, Backend<T>& be, const ParamStore<T>& store, T* dx, T* dtransform,
                   T* scratch_a, T* scratch_b, bool accumulate_dx) {
  // The identity is a constant: its gradient passes straight through.
  dense_backward(net.fc3, be, store, scratch_a, dtransform);        // -> (B, 256)
  dense_backward(net.fc2, be, store, scratch_b, scratch_a);         // -> (B, 512)
  dense_backward(net.fc1, be, store, scratch_a, scratch_b);         // -> (B, 1024)
  wide_max_backward(net.conv3, be, store, scratch_b, scratch_a);    // -> (B, N, 128)
  dense_backward(net.conv2, be, store, scratch_a, scratch_b);       // -> (B, N, 64)
  dense_backward(net.conv1, be, store, dx, scratch_a, accumulate_dx);  // -> (B, N, K) or skipped
}

#define PN_TNET(T)                                                                          \
  template void tnet_declare<T>(TNet<T>&, const std::string&, int, int, ParamStore<T>&);         \
  template void tnet_forward<T>(TNet<T>&, Backend<T>&, const ParamStore<T>&, const T*, int, \
                                int, bool, const void*);                                    \
  template void tnet_backward<T>(TNet<T>&, Backend<T>&, const ParamStore<T>&, T*, T*, T*, T*, bool);
PN_TNET(float)
PN_TNET(double)

}  // namespace pointnet
