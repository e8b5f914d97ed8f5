#include "model/fold_batchnorm.h"

#include <cmath>

#include "core/errors.h"
#include "model/dense.h"

namespace pointnet {

void fold_batchnorm(std::vector<float>& weight, std::vector<float>& bias, const std::vector<float>& gamma,
                    const std::vector<float>& beta, const std::vector<float>& mean, const std::vector<float>& var) {
  const size_t out = bias.size();
  PN_CHECK(out > 0 && weight.size() % out == 0 && gamma.size() == out && beta.size() == out && mean.size() == out &&
           var.size() == out);
  const size_t in = weight.size() / out;
  for (size_t o = 0; o < out; ++o) {
    const double s = static_cast<double>(gamma[o]) / std::sqrt(static_cast<double>(var[o]) + kBatchNormEps);
    for (size_t i = 0; i < in; ++i) weight[o * in + i] = static_cast<float>(weight[o * in + i] * s);
    bias[o] = static_cast<float>((static_cast<double>(bias[o]) - mean[o]) * s + beta[o]);
  }
}

}  // namespace pointnet
