#ifndef MIXCAL_WORKER_AGENT_H_
#define MIXCAL_WORKER_AGENT_H_

// The worker agent: registers with the coordinator, long-polls for jobs,
// trains each with the training core, reports every epoch and checkpoint,
// heartbeats, and finishes the job.
//
// Reports go through an ordered queue (ReportSender, report_sender.h):
// while the coordinator is unreachable training goes on and the queue
// waits; once it is back the reports are resent in order. A refused
// (stale) lease stops the job at once. Each job gets its own JobControl,
// sender and Heartbeater; nothing is kept from one job to the next.
//
// Threads, and what each waits on:
//   - the caller's (RunAgent): between jobs it blocks in the AcquireJob long
//     poll (cancelled by the stop signal) or a backoff (StopSignal::WaitFor);
//     during a job it trains, then waits for the sender to finish.
//   - per job, the report sender's thread: a mutex condition (a report
//     pushed, the queue closed, the stream ended, the stop signal) or a
//     backoff; the stream's writes and acks run as gRPC callbacks.
//   - per job, the heartbeater's thread: the interval on a mutex, woken at
//     once by the job's end or the stop signal.
// The stop signal reaches training through a StopSignal callback that sets
// the trainer's cancel flag; no thread polls.
//
// Stopping (options.stop): an idle worker leaves at once; a job in hand is
// stopped and handed back (FinishJob QUEUED) to resume elsewhere from its
// checkpoint; its last reports and the hand-back get stop_drain (10 s), as
// the clock reads it, to reach the coordinator; the worker then says it leaves
// (LeaveRotation). A job failing for the worker's own environment (the
// trainer's Unavailable) is handed back and the worker leaves out of
// rotation.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "worker/core/trainer.h"
#include "worker/stop_signal.h"

namespace mixcal::worker {

struct AgentOptions {
  std::string address = "127.0.0.1:7707";
  std::string token;           // sent as "authorization: Bearer TOKEN"
  std::string tls_ca_file;     // PEM; turns TLS on
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int threads = 0;  // intra-op threads when the job names none; 0 = default
  std::string checkpoint_dir = "mixcal-checkpoints";
  // Checkpoint retention: false (default) deletes a job's older checkpoints
  // once the coordinator has recorded a newer one (no attempt resumes from
  // them), and the job's folder once it SUCCEEDED; true keeps them all.
  bool keep_checkpoints = false;
  // With keep_checkpoints false: also keep every N-th epoch's checkpoint
  // (epochs N, 2N, ...), while the job runs and after it succeeded (then
  // also the last epoch's); 0 = none.
  int keep_checkpoints_every = 0;
  // The directories whose files a job may name (data.data_path, data_dir,
  // ood_data_dir), symbolic links resolved: a submitter cannot make the
  // worker read anything else. Empty: no path is allowed.
  std::vector<std::string> data_roots = {"/usr/share/datasets"};
  // Uploaded models and datasets fetched from the coordinator by SHA-256
  // and kept here, at most cache_bytes (least recently used go first;
  // docs/files.md).
  std::string cache_dir = "mixcal-cache";
  uint64_t cache_bytes = uint64_t{8} << 30;
  // The program that checks a model file in a child process before this
  // one loads it (`PROGRAM --check_model=FILE --check_shape=...`, see
  // model_check.h); empty: checked in this process.
  std::string model_checker;
  absl::Duration model_check_timeout = absl::Seconds(120);
  std::string name;
  int max_jobs = 0;  // return after this many jobs; 0 = run until stopped
  // Return (0) after this long without a job, as `clock` reads it, so that a
  // batch allocation is released; zero = never.
  absl::Duration exit_when_idle = absl::ZeroDuration();
  // Where the worker runs, shown by `mixcal workers` (e.g. "slurm job 41_3,
  // gpu 1"); empty = nothing to say.
  std::string placement;
  // Stop() it to leave (the job in hand is handed back); not owned; null =
  // never stopped.
  StopSignal* stop = nullptr;
  // After a stop, how long the job's last reports and its hand-back may
  // take to reach the coordinator before the worker gives up on them (a
  // batch scheduler's KillWait is 30 s).
  absl::Duration stop_drain = absl::Seconds(10);
  // What idle time and the stop's drain time are read from; not owned.
  Clock* clock = SystemClock();
  core::Trainer* trainer = nullptr;  // default: the LibTorch trainer
};

// Runs until `stop` is set or max_jobs jobs were done, on the calling
// thread. Returns an error only for what retrying cannot mend (a bad TLS
// file, an unauthenticated token, an unwritable checkpoint directory) or
// when the worker's own environment failed a job (FailedPrecondition).
absl::Status RunAgent(const AgentOptions& options);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_AGENT_H_
