#include "base/clock.h"

#include <chrono>

namespace mixcal {

Clock* SystemClock() {
  class System : public Clock {
   public:
    int64_t NowMicros() const override {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    }
  };
  static System* clock = new System;
  return clock;
}

}  // namespace mixcal
