#include "calib/order.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mixcal::calib {
namespace {

// What StableOrder must give: std::stable_sort of the indices.
std::vector<uint32_t> Expected(const std::vector<float>& key, bool descending) {
  std::vector<uint32_t> order(key.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return descending ? key[a] > key[b] : key[a] < key[b];
  });
  return order;
}

TEST(StableOrderTest, SortsAsStableSortDoesWithTiesInInputOrder) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> unit(0, 1);
  for (size_t n : {0, 1, 2, 7, 1000, 6000}) {
    std::vector<float> key(n);
    for (size_t i = 0; i < n; ++i) {
      // Many ties (a few hundred distinct values), and spread values.
      key[i] = i % 2 == 0 ? std::round(unit(rng) * 300) / 300 : unit(rng);
    }
    for (bool descending : {false, true}) {
      EXPECT_EQ(StableOrder(key, descending), Expected(key, descending))
          << "n " << n << " descending " << descending;
    }
  }
}

TEST(StableOrderTest, OrdersNegativesZerosAndLargeValues) {
  const std::vector<float> key = {3.5f, -0.0f, 0.0f,  -2.0f, 1e-30f, -1e-30f,
                                  1e30f, -1e30f, 0.25f, 0.0f,  -2.0f, 1.0f};
  // -0 and +0 are equal: ties, in input order.
  EXPECT_EQ(StableOrder(key), Expected(key, false));
  EXPECT_EQ(StableOrder(key, true), Expected(key, true));
  EXPECT_EQ(StableOrder(key), (std::vector<uint32_t>{7, 3, 10, 5, 1, 2, 9, 4, 8,
                                                      11, 0, 6}));
}

TEST(StableOrderTest, EqualKeysKeepTheirOrder) {
  const std::vector<float> key(100, 0.5f);
  std::vector<uint32_t> identity(100);
  std::iota(identity.begin(), identity.end(), 0u);
  EXPECT_EQ(StableOrder(key), identity);
  EXPECT_EQ(StableOrder(key, true), identity);
}

}  // namespace
}  // namespace mixcal::calib
