#include "server/grpc_status.h"

#include <cstdio>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace mixcal::server {

void NoteServerError(const absl::Status& s) {
  if (!absl::IsDataLoss(s) && !absl::IsInternal(s) &&
      !storage::IsStorageFull(s)) {
    return;
  }
  static absl::Mutex mu;
  struct Seen {
    absl::Time last = absl::InfinitePast();
    int64_t left_out = 0;
  };
  static auto* seen ABSL_GUARDED_BY(mu) = new std::map<absl::StatusCode, Seen>;
  int64_t left_out = 0;
  {
    absl::MutexLock lock(&mu);
    Seen& e = (*seen)[s.code()];
    const absl::Time now = absl::Now();
    if (now - e.last < absl::Seconds(10)) {
      ++e.left_out;
      return;
    }
    e.last = now;
    left_out = e.left_out;
    e.left_out = 0;
  }
  std::string text(s.message().substr(0, 1024));
  if (left_out > 0) {
    std::fprintf(stderr, "mixcal-coordinator: %s (and %lld more like it)\n",
                 text.c_str(), static_cast<long long>(left_out));
  } else {
    std::fprintf(stderr, "mixcal-coordinator: %s\n", text.c_str());
  }
}

}  // namespace mixcal::server
