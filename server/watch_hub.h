#ifndef MIXCAL_SERVER_WATCH_HUB_H_
#define MIXCAL_SERVER_WATCH_HUB_H_

// WatchSweep: who watches which sweep, their streams, and the updates
// published to them (DESIGN.md section 2).
//
//   WatchHub hub(store);
//   return hub.Watch(sweep_id, auth_status);     // from the RPC handler
//   hub.PublishJob(job);                          // after a state change
//
// A stream opens with a snapshot (the sweep's jobs, then the sweep), read
// from the store on the hub's own thread, never on a gRPC callback thread;
// then every job change and stored epoch of the sweep; it ends when the
// sweep ends. A watcher whose unread updates pass max_queued_bytes (their
// memory, not their encoded size) is ended with RESOURCE_EXHAUSTED (it
// reconnects and gets a fresh snapshot), so a client that does not read
// cannot grow the coordinator's memory. An update is held once, shared by
// every watcher that has not sent it yet. One caller (auth's Who: a token's
// name, or "local") may hold max_per_caller open watchers; more are refused
// with RESOURCE_EXHAUSTED naming the limit. Memory the watchers held goes
// back to the system when the last of a burst closes (malloc_trim).
//
// Thread-safe. Stop() before the gRPC server shuts down.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"
#include "mixcal/v1/experiment.pb.h"
#include "mixcal/v1/worker.pb.h"
#include "storage/store.h"

namespace mixcal::server {

class WatchReactor;

class WatchHub {
 public:
  // Unread updates one watcher may hold, by default, before it is cut off.
  static constexpr size_t kDefaultMaxQueuedBytes = 16 << 20;
  // Jobs in a snapshot (the API's limit on a sweep's size).
  static constexpr int kMaxSnapshotJobs = 10000;

  // Open watchers one caller may hold, by default.
  static constexpr int kDefaultMaxPerCaller = 32;

  explicit WatchHub(storage::Store* store,
                    size_t max_queued_bytes = kDefaultMaxQueuedBytes,
                    int max_per_caller = kDefaultMaxPerCaller);
  ~WatchHub();

  // The reactor for one WatchSweep call. `auth` is the call's
  // authentication result: when not OK the stream ends with it at once.
  // `caller` is who makes the call (Authenticator::Who).
  grpc::ServerWriteReactor<v1::SweepUpdate>* Watch(int64_t sweep_id,
                                                   const absl::Status& auth,
                                                   const std::string& caller);

  // Open watchers (streams not yet done), in all.
  int Open();

  // Whether anyone watches anything (publishers skip their store reads
  // when not).
  bool Any();

  // Stored epoch metrics of `job`.
  void PublishMetrics(const v1::ReportEpochRequest& report,
                      const v1::Job& job);
  // A job changed; its sweep's watchers also get the sweep when it ended.
  void PublishJob(const v1::Job& job);
  void PublishJobId(int64_t job_id);
  // Many jobs of one sweep changed at once (CancelSweep): one update each,
  // then the sweep once; O(jobs) store reads, not O(jobs^2).
  void PublishSweepJobs(int64_t sweep_id);

  // Ends pending snapshots with UNAVAILABLE and stops the thread.
  void Stop();

 private:
  friend class WatchReactor;
  struct Pending {
    int64_t sweep_id;
    WatchReactor* reactor;
  };
  void Subscribe(int64_t sweep_id, WatchReactor* w);
  void Unsubscribe(int64_t sweep_id, WatchReactor* w);
  // A stream of `caller`'s is done: its count drops, and the memory goes
  // back when none is open.
  void Closed(const std::string& caller);
  void Publish(int64_t sweep_id, const v1::SweepUpdate& u);
  void PublishSweepIfEnded(int64_t sweep_id);
  void SnapshotLoop();
  void Snapshot(const Pending& p);

  storage::Store* const store_;
  const size_t max_queued_bytes_;
  const int max_per_caller_;
  absl::Mutex open_mu_;
  std::map<std::string, int> open_ ABSL_GUARDED_BY(open_mu_);  // per caller
  int open_total_ ABSL_GUARDED_BY(open_mu_) = 0;
  absl::Mutex mu_;
  std::multimap<int64_t, WatchReactor*> watchers_ ABSL_GUARDED_BY(mu_);
  absl::Mutex snap_mu_;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(snap_mu_);
  bool stop_ ABSL_GUARDED_BY(snap_mu_) = false;
  std::thread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_WATCH_HUB_H_
