// The op contract's all_finite on the CPU backend, float and double: the loss
// scaler's overflow check must see one bad element anywhere, the first and
// last included, and only within `count`.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "core/rng.h"
#include "cpu/cpu_backend.h"

namespace pointnet {
namespace {

template <typename T>
class AllFinite : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AllFinite, Scalars);

TYPED_TEST(AllFinite, FindsEveryKindOfNonFiniteAtEveryPosition) {
  using T = TypeParam;
  using Limits = std::numeric_limits<T>;
  CpuBackend<T> be;
  Rng rng(5);
  // 100003: more than one OpenMP chunk on any thread count, odd length.
  for (size_t n : {size_t(1), size_t(2), size_t(1000), size_t(100003)}) {
    std::vector<T> x(n);
    for (T& v : x) v = static_cast<T>(1e3 * rng.normal());
    ASSERT_TRUE(be.all_finite(x.data(), n)) << "n=" << n;
    for (T bad : {Limits::infinity(), -Limits::infinity(), Limits::quiet_NaN(), -Limits::quiet_NaN()}) {
      for (size_t at : {size_t(0), n / 2, n - 1}) {
        std::vector<T> y = x;
        y[at] = bad;
        EXPECT_FALSE(be.all_finite(y.data(), n)) << "n=" << n << ", " << bad << " at " << at;
      }
    }
  }
}

TYPED_TEST(AllFinite, ExtremeFiniteValuesAreFinite) {
  using T = TypeParam;
  using Limits = std::numeric_limits<T>;
  CpuBackend<T> be;
  const std::vector<T> x = {Limits::max(), -Limits::max(), Limits::min(), Limits::denorm_min(), T(0), -T(0),
                            Limits::lowest()};
  EXPECT_TRUE(be.all_finite(x.data(), x.size()));
}

TYPED_TEST(AllFinite, LooksOnlyWithinCount) {
  using T = TypeParam;
  CpuBackend<T> be;
  const std::vector<T> x = {T(1), T(2), std::numeric_limits<T>::infinity()};
  EXPECT_TRUE(be.all_finite(x.data(), 2));
  EXPECT_FALSE(be.all_finite(x.data(), 3));
  EXPECT_TRUE(be.all_finite(x.data(), 0)) << "an empty array has nothing non-finite";
}

}  // namespace
}  // namespace pointnet
