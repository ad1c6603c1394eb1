#ifndef MIXCAL_WORKER_AGENT_H_
#define MIXCAL_WORKER_AGENT_H_

// The worker agent: registers with the coordinator, long-polls for jobs,
// trains each with the training core, reports every epoch and checkpoint,
// heartbeats from its own thread, and finishes the job.
//
// Reports go through an ordered queue drained by a sender thread: while the
// coordinator is unreachable training goes on and the queue waits; once it
// is back the reports are resent in order. The store keys epoch reports by
// (job, epoch, split), so a resend never duplicates a row. A refused (stale)
// lease stops the job at once.

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "worker/core/trainer.h"

namespace mixcal::worker {

struct AgentOptions {
  std::string address = "127.0.0.1:7707";
  std::string token;           // sent as "authorization: Bearer TOKEN"
  std::string tls_ca_file;     // PEM; turns TLS on
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int threads =
      0;  // intra-op threads when the job names none; 0 = core default
  std::string checkpoint_dir = "mixcal-checkpoints";
  std::string name;
  int max_jobs = 0;  // return after this many jobs; 0 = run until stopped
  // Return (0) after this long without a job, so that a batch allocation is
  // released; zero = never.
  absl::Duration exit_when_idle = absl::ZeroDuration();
  // Where the worker runs, shown by `mixcal workers` (e.g. "slurm job 41_3,
  // gpu 1"); empty = nothing to say.
  std::string placement;
  const std::atomic<bool>* stop =
      nullptr;  // set to leave (the job in hand is requeued)
  core::Trainer* trainer = nullptr;  // default: the LibTorch trainer
};

// Runs until `stop` is set or max_jobs jobs were done. Returns an error only
// for what retrying cannot mend (a bad TLS file, an unauthenticated token).
absl::Status RunAgent(const AgentOptions& options);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_AGENT_H_
