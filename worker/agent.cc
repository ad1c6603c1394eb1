#include "worker/agent.h"

#include "worker/report_proto.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "spec/spec.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

void Log(const std::string& s) {
  std::fprintf(stderr, "mixcal-worker: %s\n", s.c_str());
  std::fflush(stderr);
}

bool Retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         s.error_code() == grpc::StatusCode::ABORTED ||
         s.error_code() == grpc::StatusCode::INTERNAL ||
         s.error_code() == grpc::StatusCode::UNKNOWN;
}

class Backoff {
 public:
  absl::Duration Next() {
    absl::Duration d = delay_;
    delay_ = std::min(delay_ * 2, absl::Seconds(5));
    return d;
  }
  void Reset() { delay_ = absl::Milliseconds(100); }

 private:
  absl::Duration delay_ = absl::Milliseconds(100);
};

class Agent {
 public:
  explicit Agent(const AgentOptions& o) : o_(o) {}

  absl::Status Run() {
    // A worker that cannot write checkpoints would fail every job it takes:
    // find out before taking any.
    MIXCAL_RETURN_IF_ERROR(ProbeCheckpointDir());
    std::shared_ptr<grpc::ChannelCredentials> creds =
        grpc::InsecureChannelCredentials();
    if (!o_.tls_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(o_.tls_ca_file, "TLS CA file");
      if (!ca.ok()) return ca.status();
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = *std::move(ca);
      creds = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    // A report stream stays open for a whole job: pings find a coordinator
    // that went away without closing the connection.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    channel_ = grpc::CreateCustomChannel(o_.address, creds, args);
    stub_ = v1::WorkerService::NewStub(channel_);
    trainer_ = o_.trainer;
    if (trainer_ == nullptr) {
      owned_trainer_ = core::NewTorchTrainer();
      trainer_ = owned_trainer_.get();
    }
    int done = 0;
    Backoff backoff;
    absl::Time busy = absl::Now();  // the end of the last job (or the start)
    while (!Stopping()) {
      if (o_.exit_when_idle > absl::ZeroDuration() &&
          absl::Now() - busy >= o_.exit_when_idle) {
        Log(absl::StrCat("idle for ", absl::FormatDuration(o_.exit_when_idle),
                         "; leaving"));
        Leave(false, absl::StrCat("idle for ",
                                  absl::FormatDuration(o_.exit_when_idle)));
        return absl::OkStatus();
      }
      if (worker_id_ == 0) {
        absl::Status s = Register();
        if (absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s) ||
            absl::IsInvalidArgument(s))
          return s;
        if (!s.ok()) {
          Sleep(backoff.Next());
          continue;
        }
        backoff.Reset();
      }
      v1::AcquireJobRequest req;
      req.set_worker_id(worker_id_);
      absl::Duration wait = absl::Seconds(10);
      if (o_.exit_when_idle > absl::ZeroDuration()) {
        // Wake in time to leave when idle long enough.
        wait = std::clamp(o_.exit_when_idle - (absl::Now() - busy),
                          absl::Milliseconds(1), wait);
      }
      req.set_wait_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(wait)));
      v1::AcquireJobResponse resp;
      grpc::ClientContext ctx;
      Prepare(ctx, absl::Seconds(20));
      grpc::Status s = LongPoll(ctx, req, &resp);
      if (Stopping()) break;
      if (!s.ok()) {
        if (s.error_code() == grpc::StatusCode::NOT_FOUND)
          worker_id_ = 0;  // register again
        else if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                 s.error_code() == grpc::StatusCode::PERMISSION_DENIED)
          return absl::PermissionDeniedError(s.error_message());
        Sleep(backoff.Next());
        continue;
      }
      backoff.Reset();
      if (!resp.has_job()) continue;
      RunJob(resp.job(), resp.lease());
      busy = absl::Now();
      if (!out_of_rotation_.ok()) {
        Leave(true, std::string(out_of_rotation_.message()));
        return out_of_rotation_;
      }
      if (o_.max_jobs > 0 && ++done >= o_.max_jobs) {
        Leave(false, absl::StrCat("--max_jobs ", o_.max_jobs, " done"));
        return absl::OkStatus();
      }
    }
    if (Stopping()) Leave(false, "stopped by a signal");
    return absl::OkStatus();
  }

 private:
  bool Stopping() const { return o_.stop != nullptr && o_.stop->load(); }

  // After a stop the job in hand is handed back; its last reports and the
  // hand-back may take this long to reach the coordinator before the worker
  // gives up on them (a batch scheduler's KillWait is 30 s).
  static constexpr absl::Duration kStopDrain = absl::Seconds(10);
  bool GivingUp() {
    if (!Stopping()) return false;
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&stop_mu_);
    if (stop_seen_ == absl::InfinitePast()) stop_seen_ = now;
    return now - stop_seen_ > kStopDrain;
  }

  // Tells the coordinator that this worker leaves and why (best effort: a
  // coordinator that is away sees the worker go silent instead).
  void Leave(bool failing, const std::string& reason) {
    if (worker_id_ == 0 || stub_ == nullptr) return;
    v1::LeaveRotationRequest req;
    req.set_worker_id(worker_id_);
    req.set_failing(failing);
    req.set_reason(ToValidUtf8(reason, 4096));
    v1::LeaveRotationResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, absl::Seconds(2));
    grpc::Status s = stub_->LeaveRotation(&ctx, req, &resp);
    if (!s.ok()) {
      Log(absl::StrCat("could not tell the coordinator that this worker "
                       "leaves: ", s.error_message()));
    }
  }

  // The file to resume from: `checkpoint` relative to --checkpoint_dir (an
  // absolute one, as stored before, only when inside it), and a regular
  // file, not a device or a pipe.
  absl::StatusOr<std::string> ResolveCheckpoint(const std::string& checkpoint) {
    std::error_code ec;
    // Canonical, so that a symbolic link cannot lead outside either.
    const fs::path dir = fs::weakly_canonical(o_.checkpoint_dir, ec);
    const fs::path file = fs::weakly_canonical(
        fs::path(checkpoint).is_absolute() ? fs::path(checkpoint)
                                           : dir / checkpoint,
        ec);
    const fs::path inside = file.lexically_relative(dir);
    if (inside.empty() || *inside.begin() == "..") {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint ", checkpoint,
                       " is not inside --checkpoint_dir ", o_.checkpoint_dir));
    }
    if (!fs::is_regular_file(file, ec)) {
      return absl::NotFoundError(absl::StrCat(
          "checkpoint ", file.string(), " is not a readable file here"));
    }
    return file.string();
  }

  absl::Status ProbeCheckpointDir() {
    std::error_code ec;
    fs::create_directories(o_.checkpoint_dir, ec);
    const std::string probe =
        (fs::path(o_.checkpoint_dir) /
         absl::StrCat(".mixcal-probe-", ::getpid()))
            .string();
    absl::Status s = ec ? absl::FailedPreconditionError(ec.message())
                        : WriteFileAtomically(probe, "probe\n", "probe file");
    fs::remove(probe, ec);
    if (!s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--checkpoint_dir ", o_.checkpoint_dir,
          " is not writable, so this worker would fail every job: ",
          s.message()));
    }
    return absl::OkStatus();
  }

  // AcquireJob, cancelled as soon as `stop` is set: an idle worker leaves
  // within a fraction of a second of SIGTERM instead of waiting out its
  // long poll (up to 10 s).
  grpc::Status LongPoll(grpc::ClientContext& ctx,
                        const v1::AcquireJobRequest& req,
                        v1::AcquireJobResponse* resp) {
    absl::Mutex mu;
    bool done = false;
    std::thread watch([&] {
      absl::MutexLock lock(&mu);
      auto finished = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done; };
      while (!done) {
        mu.AwaitWithTimeout(absl::Condition(&finished),
                            absl::Milliseconds(50));
        if (!done && Stopping()) {
          ctx.TryCancel();
          return;
        }
      }
    });
    grpc::Status s = stub_->AcquireJob(&ctx, req, resp);
    {
      absl::MutexLock lock(&mu);
      done = true;
    }
    watch.join();
    return s;
  }

  void Sleep(absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (!Stopping() && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(20));
  }

  void Prepare(grpc::ClientContext& ctx, absl::Duration timeout) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
    if (!o_.token.empty())
      ctx.AddMetadata("authorization", "Bearer " + o_.token);
  }

  absl::Status Register() {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    v1::RegisterWorkerRequest req;
    req.set_host(host);
    req.set_device(o_.device);
    req.set_device_name(o_.device == "cpu" ? "cpu" : o_.device);
    req.set_name(o_.name);
    req.set_placement(o_.placement);
    req.add_capabilities(core::CudaAvailable() ? "cuda" : "cpu");
    v1::RegisterWorkerResponse resp;
    grpc::ClientContext ctx;
    Prepare(ctx, absl::Seconds(10));
    grpc::Status s = stub_->RegisterWorker(&ctx, req, &resp);
    if (!s.ok()) {
      Log(absl::StrCat("cannot register with ", o_.address, ": ",
                       s.error_message()));
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    worker_id_ = resp.worker_id();
    heartbeat_ = absl::Milliseconds(
        std::max<uint32_t>(10, resp.heartbeat_interval_ms()));
    Log(absl::StrCat("registered as worker ", worker_id_, " (", o_.device,
                     ") with ", o_.address));
    return absl::OkStatus();
  }

  struct JobState {
    v1::Lease lease;
    std::atomic<bool> cancel{false};     // stop training
    std::atomic<bool> cancelled{false};  // a person cancelled it
    std::atomic<bool> lost{false};       // the lease is no longer ours
    absl::Mutex mu;
    // Reports not yet acknowledged, in order; the first `sent` of them are
    // on the current stream.
    std::deque<v1::WorkerReport> queue ABSL_GUARDED_BY(mu);
    size_t sent ABSL_GUARDED_BY(mu) = 0;
    uint64_t next_sequence ABSL_GUARDED_BY(mu) = 1;
    bool training_done ABSL_GUARDED_BY(mu) = false;

    void Push(v1::WorkerReport&& r) {
      absl::MutexLock lock(&mu);
      r.set_sequence(next_sequence++);
      queue.push_back(std::move(r));
    }
  };

  void RunJob(const v1::Job& job, const v1::Lease& lease) {
    Log(absl::StrCat("job ", job.id(), " (", job.method(), " ", job.value(),
                     ", seed ", job.seed(), ") attempt ", lease.attempt(),
                     job.checkpoint().empty()
                         ? ""
                         : absl::StrCat(", resuming from ", job.checkpoint())));
    JobState state;
    state.lease = lease;
    absl::StatusOr<calib::TrainConfig> config =
        spec::ToTrainConfig(job.config());
    if (!config.ok()) {
      Finish(state, v1::FAILED,
             absl::StrCat("invalid job config: ", config.status().message()));
      return;
    }
    config->device = o_.device;
    if (config->threads == 0) config->threads = o_.threads;
    config->checkpoint_dir =
        (fs::path(o_.checkpoint_dir) / absl::StrCat("job-", job.id())).string();
    if (!job.checkpoint().empty()) {
      absl::StatusOr<std::string> from = ResolveCheckpoint(job.checkpoint());
      if (from.ok()) {
        config->resume_from = *from;
      } else {
        Log(absl::StrCat(from.status().message(), "; starting over"));
      }
    }

    std::thread sender([&] { SendLoop(state); });
    std::thread heart([&] { HeartbeatLoop(state); });

    core::TrainHooks hooks;
    hooks.cancel = &state.cancel;
    hooks.on_epoch = [&](const core::EpochReport& r) {
      v1::WorkerReport report;
      v1::ReportEpochRequest* req = report.mutable_epoch();
      *req->mutable_lease() = lease;
      for (auto& m : ToProto(r, job.id())) *req->add_metrics() = std::move(m);
      for (const core::KeptPredictions& k : r.predictions) {
        v1::Predictions* p = req->add_predictions();
        p->set_job_id(job.id());
        p->set_epoch(static_cast<uint32_t>(r.epoch));
        p->set_split(k.split);
        p->set_count(static_cast<uint32_t>(k.count));
        p->set_classes(static_cast<uint32_t>(k.classes));
        p->set_probabilities(k.probabilities);
        p->set_labels(k.labels);
      }
      state.Push(std::move(report));
      return absl::OkStatus();
    };
    hooks.on_checkpoint = [&](int epoch, const std::string& path) {
      v1::WorkerReport report;
      v1::ReportCheckpointRequest* req = report.mutable_checkpoint();
      *req->mutable_lease() = lease;
      req->set_epoch(static_cast<uint32_t>(epoch));
      // Named relative to --checkpoint_dir: the coordinator keeps
      // checkpoints inside it.
      const fs::path relative =
          fs::absolute(path).lexically_relative(fs::absolute(o_.checkpoint_dir));
      if (relative.empty() || *relative.begin() == "..") {
        Log(absl::StrCat("checkpoint ", path, " is outside --checkpoint_dir ",
                         o_.checkpoint_dir, "; not reported"));
        return;
      }
      req->set_path(relative.generic_string());
      state.Push(std::move(report));
    };
    // Leaving (stop) also stops training; the job is then requeued when its
    // lease expires and resumes from the last checkpoint.
    std::thread stop_watch([&] {
      while (!state.cancel.load() && !Stopping())
        absl::SleepFor(absl::Milliseconds(20));
      if (Stopping()) state.cancel.store(true);
    });
    absl::Status result = trainer_->Run(*config, hooks);
    state.cancel.store(true);  // ends stop_watch
    stop_watch.join();
    // The job's end goes on the stream after its last epoch.
    if (!state.lost.load()) {
      v1::WorkerReport end;
      v1::FinishJobRequest* f = end.mutable_finish();
      *f->mutable_lease() = lease;
      if (Stopping() && !state.cancelled.load() && !result.ok()) {
        // Stopped (SIGTERM, preemption): hand the job back at once, to
        // resume elsewhere from its checkpoint, not after a lease expiry.
        f->set_outcome(v1::QUEUED);
        f->set_error("handed back: the worker was stopped");
      } else if (absl::IsUnavailable(result)) {
        // This worker's own fault (its checkpoint directory): the job goes
        // to another worker and this one leaves instead of failing more.
        f->set_outcome(v1::QUEUED);
        f->set_error(ToValidUtf8(
            absl::StrCat("handed back: worker ", worker_id_,
                         " cannot run jobs: ", result.message()),
            4096));
        out_of_rotation_ = absl::FailedPreconditionError(absl::StrCat(
            "leaving: this worker cannot run jobs (", result.message(), ")"));
      } else if (result.ok()) {
        f->set_outcome(v1::SUCCEEDED);
      } else if (absl::IsCancelled(result)) {
        f->set_outcome(v1::CANCELLED);
        f->set_error(ToValidUtf8(result.message(), 4096));
      } else {
        f->set_outcome(v1::FAILED);
        f->set_error(ToValidUtf8(result.ToString(), 4096));
      }
      state.Push(std::move(end));
    }
    {
      absl::MutexLock lock(&state.mu);
      state.training_done = true;
    }
    sender.join();  // everything acknowledged, or the lease lost, or stopping
    if (state.lost.load()) {
      Log(absl::StrCat("job ", job.id(), ": lease lost; dropped"));
    } else if (Stopping() && !state.cancelled.load()) {
      Log(absl::StrCat("job ", job.id(), ": handed back; leaving"));
    }
    heart_stop_.store(true);
    heart.join();
    heart_stop_.store(false);
  }

  // Sends the job's reports in order on a StreamReports stream, reopening it
  // with backoff while the coordinator is away; returns when training is
  // done and everything (the finish last) is acknowledged, or the lease is
  // lost, or the agent is stopping.
  void SendLoop(JobState& st) {
    Backoff backoff;
    while (true) {
      {
        absl::MutexLock lock(&st.mu);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
          return !st.queue.empty() || st.training_done;
        };
        st.mu.AwaitWithTimeout(absl::Condition(&ready),
                               absl::Milliseconds(100));
        if (st.queue.empty() && st.training_done) return;
      }
      if (st.lost.load() || (GivingUp() && !st.cancelled.load())) return;
      if (StreamOnce(st)) {
        backoff.Reset();
      } else if (!st.lost.load()) {
        // Unreachable coordinator: keep the queue. (Sleep returns at once
        // when stopping; the drain still paces its retries.)
        if (Stopping()) {
          absl::SleepFor(absl::Milliseconds(200));
        } else {
          Sleep(backoff.Next());
        }
      }
    }
  }

  // One stream: writes what is queued as it comes and drops what is
  // acknowledged. True when it ended with everything acknowledged.
  bool StreamOnce(JobState& st) {
    grpc::ClientContext ctx;
    if (!o_.token.empty())
      ctx.AddMetadata("authorization", "Bearer " + o_.token);
    std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerReport, v1::ReportAcks>>
        stream = stub_->StreamReports(&ctx);
    {
      absl::MutexLock lock(&st.mu);
      st.sent = 0;
    }
    std::atomic<bool> broken{false};
    std::thread reader([&] {
      v1::ReportAcks acks;
      while (!broken.load() && stream->Read(&acks)) {
        for (const v1::ReportAck& a : acks.acks()) {
          if (!TakeAck(st, a)) {
            broken.store(true);
            break;
          }
        }
      }
      broken.store(true);
    });
    bool drained = false;
    while (!broken.load()) {
      std::vector<v1::WorkerReport> out;
      {
        absl::MutexLock lock(&st.mu);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
          return st.queue.size() > st.sent ||
                 (st.training_done && st.queue.empty());
        };
        st.mu.AwaitWithTimeout(absl::Condition(&ready),
                               absl::Milliseconds(100));
        if (st.training_done && st.queue.empty()) {
          drained = true;
          break;
        }
        for (size_t i = st.sent; i < st.queue.size(); ++i)
          out.push_back(st.queue[i]);
        st.sent = st.queue.size();
      }
      if (st.lost.load() || (GivingUp() && !st.cancelled.load())) break;
      for (const v1::WorkerReport& r : out) {
        if (!stream->Write(r)) {
          broken.store(true);
          break;
        }
      }
    }
    if (drained) {
      stream->WritesDone();
    } else {
      ctx.TryCancel();
    }
    reader.join();
    grpc::Status s = stream->Finish();
    if (!drained && !st.lost.load() && !s.ok() && !Stopping()) {
      Log(absl::StrCat("report stream to ", o_.address, " broke (",
                       s.error_message(), "); ", QueueSize(st),
                       " reports wait to be resent"));
    }
    return drained;
  }

  size_t QueueSize(JobState& st) {
    absl::MutexLock lock(&st.mu);
    return st.queue.size();
  }

  // The ack of the oldest report in flight. False when the stream should
  // stop: the lease is stale, or the coordinator could not store it now.
  bool TakeAck(JobState& st, const v1::ReportAck& a) {
    absl::MutexLock lock(&st.mu);
    if (st.queue.empty() || st.sent == 0 ||
        st.queue.front().sequence() != a.sequence()) {
      Log(absl::StrCat("ack for report ", a.sequence(), " out of order"));
      return false;
    }
    const auto code = static_cast<grpc::StatusCode>(a.code());
    const v1::WorkerReport& r = st.queue.front();
    if (code == grpc::StatusCode::FAILED_PRECONDITION ||
        code == grpc::StatusCode::NOT_FOUND) {
      // Stale: a person cancelled the job (drop the report, stop training;
      // the finish still goes), or another attempt owns it now.
      if (r.has_finish()) {
        Log(absl::StrCat("job ", st.lease.job_id(),
                         ": finish refused: ", a.message()));
      } else if (a.state() == v1::CANCELLED || st.cancelled.load()) {
        if (!st.cancelled.exchange(true))
          Log(absl::StrCat("job ", st.lease.job_id(), " cancelled; stopping"));
        st.cancel.store(true);
      } else {
        st.lost.store(true);
        st.cancel.store(true);
        return false;
      }
    } else if (code == grpc::StatusCode::INVALID_ARGUMENT) {
      Log(absl::StrCat("report refused as invalid (dropped): ", a.message()));
    } else if (code != grpc::StatusCode::OK) {
      return false;  // not stored now: resent on the next stream
    } else if (r.has_finish()) {
      Log(absl::StrCat(
          "job ", st.lease.job_id(), " ", v1::JobState_Name(a.state()),
          r.finish().error().empty() ? ""
                                     : absl::StrCat(": ", r.finish().error())));
    }
    st.queue.pop_front();
    --st.sent;
    return true;
  }

  void HeartbeatLoop(JobState& st) {
    while (!heart_stop_.load() && !Stopping()) {
      const absl::Time until = absl::Now() + heartbeat_;
      while (!heart_stop_.load() && !Stopping() && absl::Now() < until)
        absl::SleepFor(absl::Milliseconds(10));
      if (heart_stop_.load() || Stopping()) return;
      v1::HeartbeatRequest req;
      req.set_worker_id(worker_id_);
      *req.add_leases() = st.lease;
      v1::HeartbeatResponse resp;
      grpc::ClientContext ctx;
      Prepare(ctx, absl::Seconds(5));
      grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
      if (!s.ok()) {
        if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
          st.lost.store(true);
          st.cancel.store(true);
        }
        continue;  // unreachable: training goes on; the lease may still hold
      }
      if (resp.cancelled_size() > 0) {
        if (!st.cancelled.exchange(true))
          Log(absl::StrCat("job ", st.lease.job_id(), " cancelled; stopping"));
        st.cancel.store(true);
      } else if (resp.lost_size() > 0) {
        if (!st.lost.exchange(true))
          Log(absl::StrCat("job ", st.lease.job_id(),
                           ": lease lost; stopping"));
        st.cancel.store(true);
      }
    }
  }

  void Finish(JobState& st, v1::JobState outcome, const std::string& error) {
    Backoff backoff;
    while (!Stopping()) {
      v1::FinishJobRequest req;
      *req.mutable_lease() = st.lease;
      req.set_outcome(outcome);
      req.set_error(ToValidUtf8(error, 4096));
      v1::FinishJobResponse resp;
      grpc::ClientContext ctx;
      Prepare(ctx, absl::Seconds(10));
      grpc::Status s = stub_->FinishJob(&ctx, req, &resp);
      if (s.ok()) {
        Log(absl::StrCat("job ", st.lease.job_id(), " ",
                         v1::JobState_Name(resp.state()),
                         error.empty() ? "" : absl::StrCat(": ", error)));
        return;
      }
      if (!Retryable(s)) {
        Log(absl::StrCat("job ", st.lease.job_id(),
                         ": finish refused: ", s.error_message()));
        return;
      }
      Sleep(backoff.Next());
    }
  }

  AgentOptions o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  core::Trainer* trainer_ = nullptr;
  std::unique_ptr<core::Trainer> owned_trainer_;
  int64_t worker_id_ = 0;
  absl::Duration heartbeat_ = absl::Seconds(5);
  std::atomic<bool> heart_stop_{false};
  absl::Mutex stop_mu_;
  absl::Time stop_seen_ ABSL_GUARDED_BY(stop_mu_) = absl::InfinitePast();
  // Set when the worker's own environment failed a job: it leaves.
  absl::Status out_of_rotation_;
};

}  // namespace

absl::Status RunAgent(const AgentOptions& options) {
  return Agent(options).Run();
}

}  // namespace mixcal::worker
