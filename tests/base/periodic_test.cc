#include "base/periodic.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace mixcal {
namespace {

// PeriodicThread waits on the real clock, so these tests wait for events
// (ticks, Stop returning) rather than bound how long things take: a loaded
// machine only makes them slower. kPatience is how long an event may take
// before the test gives up; kLong, a period that a Stop which waited it out
// would visibly overrun.
constexpr absl::Duration kPatience = absl::Seconds(30);
constexpr absl::Duration kLong = absl::Seconds(60);

// Counts ticks and records when each came (monotonic).
class TickLog {
 public:
  void Tick() {
    absl::MutexLock lock(&mu_);
    times_.push_back(std::chrono::steady_clock::now());
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(times_.size());
  }
  // Whether `n` ticks came within kPatience.
  bool WaitFor(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(times_.size()) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kPatience);
  }
  std::vector<std::chrono::steady_clock::time_point> times() {
    absl::MutexLock lock(&mu_);
    return times_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::chrono::steady_clock::time_point> times_
      ABSL_GUARDED_BY(mu_);
};

// Whether `stop` returns within kPatience (run on a thread of its own).
bool ReturnsPromptly(PeriodicThread& t) {
  absl::Notification stopped;
  std::thread stopper([&] {
    t.Stop();
    stopped.Notify();
  });
  const bool prompt = stopped.WaitForNotificationWithTimeout(kPatience);
  stopper.join();  // waits the period out if Stop did not return
  return prompt;
}

TEST(PeriodicThreadTest, TicksRepeatedlyAtMostOncePerPeriod) {
  constexpr auto kPeriod = std::chrono::milliseconds(20);
  TickLog log;
  PeriodicThread t(absl::FromChrono(kPeriod), [&] { log.Tick(); });
  const auto start = std::chrono::steady_clock::now();
  t.Start();
  ASSERT_TRUE(log.WaitFor(3));
  t.Stop();
  // Lower bounds only: a wait is never shorter than the period (up to
  // clock granularity; half a period of slack), however loaded the machine.
  const auto times = log.times();
  auto shortest = times[0] - start;
  for (size_t i = 1; i < times.size(); ++i)
    shortest = std::min(shortest, times[i] - times[i - 1]);
  using Ms = std::chrono::duration<double, std::milli>;
  EXPECT_GE(Ms(shortest).count(), Ms(kPeriod).count() / 2)
      << "the shortest wait in ms, over " << times.size() << " ticks";
}

TEST(PeriodicThreadTest, NoTickAfterStopReturnsAndStopIsIdempotent) {
  TickLog log;
  PeriodicThread t(absl::Milliseconds(1), [&] { log.Tick(); });
  t.Start();
  ASSERT_TRUE(log.WaitFor(2));
  t.Stop();
  const int after = log.count();
  // Many periods: a thread still running would tick in them.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(log.count(), after);
  t.Stop();
  EXPECT_EQ(log.count(), after);
}

TEST(PeriodicThreadTest, StopDoesNotWaitOutThePeriod) {
  TickLog log;
  PeriodicThread t(kLong, [&] { log.Tick(); });
  t.Start();
  EXPECT_TRUE(ReturnsPromptly(t));
  EXPECT_EQ(log.count(), 0);
}

TEST(PeriodicThreadTest, TicksAtStartWhenAskedElseAfterAPeriod) {
  TickLog at_start, later;
  PeriodicThread b(kLong, [&] { later.Tick(); });
  PeriodicThread a(
      kLong, [&] { at_start.Tick(); },
      /*tick_at_start=*/true);
  b.Start();
  a.Start();
  ASSERT_TRUE(at_start.WaitFor(1));
  EXPECT_TRUE(ReturnsPromptly(a));  // ticked, now waiting a period
  EXPECT_TRUE(ReturnsPromptly(b));
  EXPECT_EQ(at_start.count(), 1);
  EXPECT_EQ(later.count(), 0);
}

}  // namespace
}  // namespace mixcal
