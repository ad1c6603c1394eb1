#include "worker/stop_signal.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace mixcal::worker {
namespace {

TEST(StopSignalTest, StopWakesAWaiterAtOnce) {
  StopSignal stop;
  absl::Notification woke;
  bool stopped = false;
  std::thread waiter([&] {
    stopped = stop.WaitFor(absl::Hours(1));
    woke.Notify();
  });
  EXPECT_FALSE(stop.stopped());
  stop.Stop();
  // An hour's wait that ends at once: woken by the stop, not by time.
  EXPECT_TRUE(woke.WaitForNotificationWithTimeout(absl::Seconds(60)));
  waiter.join();
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(stop.stopped());
}

TEST(StopSignalTest, WaitForReturnsFalseWhenTimeRunsOut) {
  StopSignal stop;
  EXPECT_FALSE(stop.WaitFor(absl::Milliseconds(1)));
}

TEST(StopSignalTest, CallbacksRunOnceInOrder) {
  StopSignal stop;
  std::string calls;
  StopSignal::Subscription a = stop.OnStop([&] { calls += "a"; });
  StopSignal::Subscription b = stop.OnStop([&] { calls += "b"; });
  EXPECT_EQ(calls, "");
  stop.Stop();
  stop.Stop();
  EXPECT_EQ(calls, "ab");
}

TEST(StopSignalTest, ACallbackRegisteredAfterTheStopRunsAtOnce) {
  StopSignal stop;
  stop.Stop();
  int calls = 0;
  StopSignal::Subscription s = stop.OnStop([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(StopSignalTest, ADestroyedSubscriptionIsNotCalled) {
  StopSignal stop;
  int calls = 0;
  {
    StopSignal::Subscription s = stop.OnStop([&] { ++calls; });
  }
  StopSignal::Subscription moved;
  {
    StopSignal::Subscription s = stop.OnStop([&] { calls += 10; });
    moved = std::move(s);  // the moved-from one unregisters nothing
  }
  stop.Stop();
  EXPECT_EQ(calls, 10);
}

TEST(StopSignalTest, DestroyingASubscriptionWaitsForItsRunningCallback) {
  // A callback may use what it captured until its Subscription is gone.
  StopSignal stop;
  absl::Notification entered, release, destroyed;
  auto sub = std::make_unique<StopSignal::Subscription>(stop.OnStop([&] {
    entered.Notify();
    release.WaitForNotification();
  }));
  std::thread stopper([&] { stop.Stop(); });
  entered.WaitForNotification();
  std::thread destroyer([&] {
    sub.reset();
    destroyed.Notify();
  });
  EXPECT_FALSE(
      destroyed.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
  release.Notify();
  destroyed.WaitForNotification();
  stopper.join();
  destroyer.join();
}

}  // namespace
}  // namespace mixcal::worker
