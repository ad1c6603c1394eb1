#ifndef MIXCAL_WORKER_CORE_PROGRAM_H_
#define MIXCAL_WORKER_CORE_PROGRAM_H_

// What the programs built on Abseil flags (mixcal-coordinator, mixcal-worker)
// do first in main(). Header only; needs nothing beyond Abseil.

#include <algorithm>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace mixcal {

// The other mixcal tools spell flags with dashes (--tls-ca); Abseil's use
// underscores. Returns argv with --a-b turned into --a_b (values untouched);
// `keep` owns the strings.
inline std::vector<char*> UnderscoreFlags(int argc, char** argv,
                                          std::vector<std::string>* keep) {
  keep->assign(argv, argv + argc);
  std::vector<char*> out;
  for (std::string& a : *keep) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + end, '-', '_');
    }
    out.push_back(a.data());
  }
  return out;
}

// Debian's Abseil is built with its mutex deadlock detector on, which
// records every lock order (a few percent of the coordinator's time under
// load). The programs turn it off; the tests keep it.
inline void TurnOffMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace mixcal

#endif  // MIXCAL_WORKER_CORE_PROGRAM_H_
