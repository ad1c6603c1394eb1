#include "base/periodic.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace mixcal {
namespace {

TEST(PeriodicThreadTest, TicksEachPeriodAndStopsPromptly) {
  std::atomic<int> ticks{0};
  PeriodicThread t(absl::Milliseconds(20), [&] { ++ticks; });
  t.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  t.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(200));
  EXPECT_GE(ticks.load(), 3);
  const int after = ticks.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(ticks.load(), after);  // none after Stop
  t.Stop();                        // idempotent
}

TEST(PeriodicThreadTest, TicksAtStartWhenAskedElseAfterAPeriod) {
  std::atomic<int> at_start{0}, later{0};
  PeriodicThread a(absl::Seconds(60), [&] { ++at_start; }, true);
  PeriodicThread b(absl::Seconds(60), [&] { ++later; });
  a.Start();
  b.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  a.Stop();  // a 60 s period does not hold Stop up
  b.Stop();
  EXPECT_EQ(at_start.load(), 1);
  EXPECT_EQ(later.load(), 0);
}

}  // namespace
}  // namespace mixcal
