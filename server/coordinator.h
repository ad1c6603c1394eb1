#ifndef MIXCAL_SERVER_COORDINATOR_H_
#define MIXCAL_SERVER_COORDINATOR_H_

// mixcal's coordinator: ExperimentService and WorkerService on one port,
// with the standard health service and server reflection (DESIGN.md 2-3).
//
//   CoordinatorOptions o;
//   o.db_path = "mixcal.db";
//   auto c = Coordinator::Start(o);      // listening when it returns
//   (*c)->port();  (*c)->Wait();  or  (*c)->Shutdown();
//
// Threads, all started by Start and joined by Shutdown:
//   gRPC's         the calls (at most max_threads); handlers check, then
//                  call the store or hand over to a thread below
//   dispatcher     long-polling AcquireJob: deadlines and waking waiters
//   report writer  four: one stores every report (one transaction a
//                  batch) and publishes it, one acks the streams, two
//                  write kept predictions' bytes (server/report_writer.h)
//   watch hub      snapshots for new WatchSweep calls
//   lease reaper   expires silent workers' leases, every lease / 10
//   listener watch serves anew when gRPC stops accepting
//   checkpointer   copies SQLite's log into the database (storage)
//   autoscaler     only after StartLauncher: starts and cancels worker
//                  tasks
// Nine besides gRPC's; ten with a launcher.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"

#include "absl/status/statusor.h"
#include "base/clock.h"

namespace mixcal::server {

class Launcher;             // server/launcher.h
struct AutoscalerOptions;   // server/autoscaler.h

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:7707";  // port 0 picks a free port
  std::string db_path = "mixcal.db";
  int64_t lease_ms = 30000;     // a lease lasts this long without a heartbeat
  int64_t heartbeat_ms = 5000;  // told to workers; a few fit in a lease
  std::string tokens_file;      // empty: everything open (loopback only)
  std::string tls_cert_file;    // PEM; with tls_key_file turns TLS on
  std::string tls_key_file;
  bool insecure = false;  // allow a non-loopback address without TLS and tokens
  int max_message_bytes = 8 << 20;
  // Unread WatchSweep updates one watcher may hold before it is ended with
  // RESOURCE_EXHAUSTED.
  size_t watch_buffer_bytes = 16 << 20;
  // Open WatchSweep streams one caller (a token's name, or "local") may
  // hold; more are refused with RESOURCE_EXHAUSTED.
  int max_watchers_per_caller = 32;
  // A connection must finish its TLS and HTTP/2 handshake within this, or
  // it is closed (a client that opens sockets and sends nothing cannot
  // hold them).
  int handshake_timeout_ms = 10000;
  // Threads gRPC may use for calls: a burst of requests queues instead of
  // starting hundreds of threads.
  int max_threads = 128;
  Clock* clock = nullptr;  // default the system clock
  // SQLite's quick_check of the store file at start-up.
  bool check_integrity = true;
  // Per submitter (a token's name): how many jobs may be queued or running,
  // and how many sweeps active, before SubmitSweep is RESOURCE_EXHAUSTED.
  // 0 = no limit.
  int64_t max_unfinished_jobs_per_submitter = 100000;
  int64_t max_active_sweeps_per_submitter = 1000;
  // The largest file UploadFile accepts (a model, a dataset).
  uint64_t max_upload_bytes = uint64_t{512} << 20;
  // Online backups of the store (server/backups.h) into backup_dir, every
  // backup_every (zero: on demand only), the newest backup_keep kept.
  // Empty backup_dir: none.
  std::string backup_dir;
  absl::Duration backup_every = absl::Hours(24);
  int backup_keep = 7;
};

class CoordinatorImpl;

class Coordinator {
 public:
  // InvalidArgument for bad options (e.g. a non-loopback address without TLS
  // and tokens and without insecure); errors opening the store or binding.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Start(
      const CoordinatorOptions& options);
  ~Coordinator();

  int port() const;
  // Starts workers on demand through `launcher` (server/autoscaler.h) until
  // Shutdown; at most once.
  void StartLauncher(std::unique_ptr<Launcher> launcher,
                     const AutoscalerOptions& options);
  // Blocks until Shutdown (from another thread or a signal handler's helper).
  void Wait();
  void Shutdown();

 private:
  explicit Coordinator(std::unique_ptr<CoordinatorImpl> impl);
  std::unique_ptr<CoordinatorImpl> impl_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_COORDINATOR_H_
