#ifndef MIXCAL_BASE_CLOCK_H_
#define MIXCAL_BASE_CLOCK_H_

// The time the store and the coordinator read, injectable so that tests move
// it by hand instead of sleeping.

#include <atomic>
#include <cstdint>

namespace mixcal {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch. Thread-safe.
  virtual int64_t NowMicros() const = 0;
};

// The system's wall clock; never destroyed.
Clock* SystemClock();

// A clock that moves only when told. Thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_us = 1'700'000'000'000'000)
      : now_(start_us) {}
  int64_t NowMicros() const override { return now_.load(); }
  void AdvanceMicros(int64_t us) { now_.fetch_add(us); }
  void AdvanceSeconds(double s) {
    AdvanceMicros(static_cast<int64_t>(s * 1e6));
  }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace mixcal

#endif  // MIXCAL_BASE_CLOCK_H_
