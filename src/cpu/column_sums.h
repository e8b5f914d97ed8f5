// Deterministic column reductions over the rows of an (M, C) matrix.
// Rows are cut into fixed blocks (independent of the thread count), each block
// is summed in double, and the blocks are added in order: the result is the
// same bit for bit whatever the number of threads, which keeps training
// reproducible for a seed.
#pragma once
#include <algorithm>
#include <vector>

namespace pointnet::cpu {

constexpr int kReduceBlockRows = 256;

// out[c] = sum over m of term(m, c), computed in double.
template <typename Term>
void column_sums(double* out, int M, int C, Term term) {
  const int blocks = (M + kReduceBlockRows - 1) / kReduceBlockRows;
  std::vector<double> partial(static_cast<size_t>(blocks) * C, 0.0);
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < blocks; ++blk) {
    double* acc = partial.data() + static_cast<size_t>(blk) * C;
    const int end = std::min(M, (blk + 1) * kReduceBlockRows);
    for (int m = blk * kReduceBlockRows; m < end; ++m)
      for (int c = 0; c < C; ++c) acc[c] += term(m, c);
  }
  std::fill(out, out + C, 0.0);
  for (int blk = 0; blk < blocks; ++blk)
    for (int c = 0; c < C; ++c) out[c] += partial[static_cast<size_t>(blk) * C + c];
}

}  // namespace pointnet::cpu
