#ifndef MIXCAL_SERVER_BACKENDS_H_
#define MIXCAL_SERVER_BACKENDS_H_

// What the two services share, owned by the Coordinator that assembles them
// (server/coordinator.cc). Every pointer outlives the services.

#include <cstdint>

#include "server/auth.h"
#include "server/dispatcher.h"
#include "server/report_writer.h"
#include "server/watch_hub.h"
#include "storage/store.h"

namespace mixcal::server {

class Backups;  // server/backups.h

struct Backends {
  storage::Store* store;
  const Authenticator* auth;
  Dispatcher* dispatcher;
  ReportWriter* writer;
  WatchHub* hub;
  int64_t lease_ms;
  int64_t heartbeat_ms;
  int64_t max_unfinished_jobs_per_submitter;  // 0 = no limit
  int64_t max_active_sweeps_per_submitter;    // 0 = no limit
  uint64_t max_upload_bytes;
  Backups* backups;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_BACKENDS_H_
