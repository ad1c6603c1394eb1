#include "worker/agent.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "spec/spec.h"
#include "worker/calls.h"
#include "worker/core/device_name.h"
#include "worker/file_cache.h"
#include "worker/model_check.h"
#include "worker/heartbeater.h"
#include "worker/job_control.h"
#include "worker/report_sender.h"
#include "worker/reports.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

// Deletes a job's checkpoints that no attempt will read: those of epochs
// before `newest` (0: the job has succeeded), except, when `every` > 0, every
// `every`-th epoch's and, after success, the last one (the trained model).
// Only names the worker writes (checkpoint-epoch-NNNNN.pt) are touched; a
// job folder left empty is removed.
void PruneCheckpoints(const fs::path& job_dir, uint32_t newest, int every) {
  std::error_code ec;
  std::vector<std::pair<int, fs::path>> found;
  for (const auto& e : fs::directory_iterator(job_dir, ec)) {
    int epoch = 0;
    char exact[64];
    const std::string name = e.path().filename().string();
    if (std::sscanf(name.c_str(), "checkpoint-epoch-%d.pt", &epoch) != 1 ||
        epoch <= 0) {
      continue;
    }
    std::snprintf(exact, sizeof exact, "checkpoint-epoch-%05d.pt", epoch);
    if (name != exact) continue;  // e.g. a .tmp being written
    found.emplace_back(epoch, e.path());
  }
  int last = 0;
  for (const auto& [epoch, path] : found) last = std::max(last, epoch);
  for (const auto& [epoch, path] : found) {
    if (newest != 0 && static_cast<uint32_t>(epoch) >= newest) continue;
    if (every > 0 && (epoch % every == 0 || (newest == 0 && epoch == last)))
      continue;
    fs::remove(path, ec);
  }
  if (newest == 0) fs::remove(job_dir, ec);  // only if empty
}

AgentOptions WithClock(AgentOptions o) {
  if (o.clock == nullptr) o.clock = SystemClock();
  return o;
}

// The job loop: registration, the long poll, one job at a time, leaving.
class Agent {
 public:
  explicit Agent(const AgentOptions& o)
      : o_(WithClock(o)), stop_(o.stop != nullptr ? o.stop : &never_stopped_) {}

  absl::Status Run();

 private:
  bool Stopping() const { return stop_->stopped(); }
  int64_t NowMicros() const { return o_.clock->NowMicros(); }

  absl::Status Connect();
  absl::Status Register();
  // AcquireJob, cancelled as soon as the stop signal comes: an idle worker
  // leaves at once on SIGTERM instead of waiting out its long poll (up to
  // 10 s).
  grpc::Status LongPoll(absl::Duration wait, v1::AcquireJobResponse* resp);
  void RunJob(const v1::Job& job, const v1::Lease& lease);
  // What the job's end says, from how training ended.
  v1::WorkerReport FinishReport(const JobControl& control,
                                const absl::Status& result);
  // FinishJob outside a stream, for a job that never started training.
  void Finish(const v1::Lease& lease, v1::JobState outcome,
              const std::string& error);
  // Tells the coordinator that this worker leaves and why (best effort: a
  // coordinator that is away sees the worker go silent instead).
  void Leave(bool failing, const std::string& reason);
  absl::StatusOr<std::string> ResolveCheckpoint(const std::string& checkpoint);
  // Puts local paths in the config's place of uploaded files (fetched into
  // the cache) and checks the paths a job names against --data_root.
  absl::Status ResolveFiles(calib::TrainConfig* config);
  absl::StatusOr<std::string> InsideDataRoot(const std::string& field,
                                             const std::string& path) const;
  absl::Status ProbeCheckpointDir();

  const AgentOptions o_;
  StopSignal never_stopped_;
  StopSignal* const stop_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  core::Trainer* trainer_ = nullptr;
  std::unique_ptr<core::Trainer> owned_trainer_;
  std::unique_ptr<FileCache> cache_;
  int64_t worker_id_ = 0;
  std::string worker_key_;  // what LeaveRotation proves this worker with
  absl::Duration heartbeat_ = absl::Seconds(5);
  // Set when the worker's own environment failed a job: it leaves.
  absl::Status out_of_rotation_;
};

absl::Status Agent::Run() {
  // A worker that cannot write checkpoints would fail every job it takes:
  // find out before taking any.
  MIXCAL_RETURN_IF_ERROR(ProbeCheckpointDir());
  MIXCAL_RETURN_IF_ERROR(Connect());
  trainer_ = o_.trainer;
  if (trainer_ == nullptr) {
    owned_trainer_ = core::NewTorchTrainer();
    trainer_ = owned_trainer_.get();
  }
  const bool leaves_when_idle = o_.exit_when_idle > absl::ZeroDuration();
  int done = 0;
  // At most 2 s between tries: a coordinator that comes back is found at
  // once (its clients' channels retry within half a second).
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(2));
  bool registered_once = false;
  int64_t busy_us = NowMicros();  // the end of the last job (or the start)
  while (!Stopping()) {
    const absl::Duration idle = absl::Microseconds(NowMicros() - busy_us);
    if (leaves_when_idle && idle >= o_.exit_when_idle) {
      if (!registered_once) {
        // Not idle: it never got to work. A batch scheduler must not record
        // this as a task that completed.
        return absl::UnavailableError(absl::StrCat(
            "never reached the coordinator at ", o_.address, " in ",
            absl::FormatDuration(o_.exit_when_idle),
            " (--exit_when_idle); leaving",
            o_.tls_ca_file.empty()
                ? " (without TLS: if the coordinator serves TLS, give "
                  "--tls_ca or MIXCAL_TLS_CA)"
                : ""));
      }
      const std::string why =
          absl::StrCat("idle for ", absl::FormatDuration(o_.exit_when_idle));
      Log(absl::StrCat(why, "; leaving"));
      Leave(false, why);
      return absl::OkStatus();
    }
    if (worker_id_ == 0) {
      absl::Status s = Register();
      if (absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s) ||
          absl::IsInvalidArgument(s))
        return s;
      if (!s.ok()) {
        stop_->WaitFor(backoff.Next());
        continue;
      }
      backoff.Reset();
      registered_once = true;
    }
    absl::Duration wait = absl::Seconds(10);
    if (leaves_when_idle) {
      // Wake in time to leave when idle long enough.
      wait = std::clamp(o_.exit_when_idle - idle, absl::Milliseconds(1), wait);
    }
    v1::AcquireJobResponse resp;
    grpc::Status s = LongPoll(wait, &resp);
    if (Stopping()) break;
    if (!s.ok()) {
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        worker_id_ = 0;  // register again
      } else if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                 s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
        return absl::PermissionDeniedError(s.error_message());
      }
      stop_->WaitFor(backoff.Next());
      continue;
    }
    backoff.Reset();
    if (!resp.has_job()) continue;
    RunJob(resp.job(), resp.lease());
    busy_us = NowMicros();
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

absl::Status Agent::Connect() {
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
  // Back within a second of a coordinator's return: a restarted
  // coordinator gives running leases one lease length (2 s in the tests, 30
  // s by default) before it judges them, and gRPC's default back-off (1 s
  // growing to 120 s; 2 s capped) left the channel idle for seconds while
  // the coordinator was up again. Tries at most every 500 ms, and each
  // heartbeat waits for the connection (wait_for_ready) instead of failing
  // at once while it is down.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // Despite its name gRPC takes this as the least time one connection
  // attempt (TCP, TLS, the first HTTP/2 SETTINGS) may take. At 100 ms a
  // loaded machine's handshakes timed out again and again and a worker
  // never registered; a refused connection still fails at once, so the
  // 500 ms retries above are unaffected.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20000);
  // A report stream stays open for a whole job: pings find a coordinator
  // that went away without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  channel_ = grpc::CreateCustomChannel(o_.address, creds, args);
  stub_ = v1::WorkerService::NewStub(channel_);
  return absl::OkStatus();
}

absl::Status Agent::Register() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  v1::RegisterWorkerRequest req;
  req.set_host(host);
  req.set_device(o_.device);
  req.set_device_name(ToValidUtf8(core::DeviceName(o_.device), 256));
  req.set_name(o_.name);
  req.set_placement(o_.placement);
  req.add_capabilities(core::CudaAvailable() ? "cuda" : "cpu");
  v1::RegisterWorkerResponse resp;
  grpc::ClientContext ctx;
  PrepareCall(ctx, o_.token, absl::Seconds(10));
  StopSignal::Subscription cancel = stop_->OnStop([&ctx] { ctx.TryCancel(); });
  grpc::Status s = stub_->RegisterWorker(&ctx, req, &resp);
  if (!s.ok()) {
    if (!Stopping()) {
      // Plaintext against a TLS port fails as a closed socket or a
      // handshake: say what it probably is.
      const std::string& m = s.error_message();
      const bool looks_like_tls =
          o_.tls_ca_file.empty() && s.error_code() == grpc::StatusCode::UNAVAILABLE &&
          (m.find("Socket closed") != std::string::npos ||
           m.find("handshak") != std::string::npos);
      Log(absl::StrCat("cannot register with ", o_.address, ": ", m,
                       looks_like_tls
                           ? " (the coordinator may serve TLS: give --tls_ca "
                             "CA.pem or set MIXCAL_TLS_CA)"
                           : ""));
    }
    return FromGrpc(s);
  }
  worker_id_ = resp.worker_id();
  worker_key_ = resp.worker_key();
  heartbeat_ =
      absl::Milliseconds(std::max<uint32_t>(10, resp.heartbeat_interval_ms()));
  Log(absl::StrCat("registered as worker ", worker_id_, " (", o_.device,
                   ") with ", o_.address));
  return absl::OkStatus();
}

grpc::Status Agent::LongPoll(absl::Duration wait,
                             v1::AcquireJobResponse* resp) {
  v1::AcquireJobRequest req;
  req.set_worker_id(worker_id_);
  req.set_wait_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(wait)));
  grpc::ClientContext ctx;
  PrepareCall(ctx, o_.token, absl::Seconds(20));
  StopSignal::Subscription cancel = stop_->OnStop([&ctx] { ctx.TryCancel(); });
  return stub_->AcquireJob(&ctx, req, resp);
}

void Agent::RunJob(const v1::Job& job, const v1::Lease& lease) {
  Log(absl::StrCat("job ", job.id(), " (", job.method(), " ", job.value(),
                   ", seed ", job.seed(), ") attempt ", lease.attempt(),
                   job.checkpoint().empty()
                       ? ""
                       : absl::StrCat(", resuming from ", job.checkpoint())));
  absl::StatusOr<calib::TrainConfig> config = spec::ToTrainConfig(job.config());
  if (!config.ok()) {
    Finish(lease, v1::FAILED,
           absl::StrCat("invalid job config: ", config.status().message()));
    return;
  }
  if (absl::Status files = ResolveFiles(&*config); !files.ok()) {
    // The coordinator unreachable while fetching: another try later, here
    // or elsewhere; anything else is the job's own.
    const bool retry =
        absl::IsUnavailable(files) || absl::IsDeadlineExceeded(files);
    Finish(lease, retry ? v1::QUEUED : v1::FAILED,
           retry ? absl::StrCat("handed back: ", files.message())
                 : std::string(files.message()));
    return;
  }
  config->device = o_.device;
  config->cache_dir = o_.cache_dir;
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

  JobControl control(lease);
  ReportSender::Options so;
  so.stub = stub_.get();
  so.token = o_.token;
  so.address = o_.address;
  so.stop = stop_;
  so.clock = o_.clock;
  so.stop_drain = o_.stop_drain;
  if (!o_.keep_checkpoints) {
    const fs::path job_dir = config->checkpoint_dir;
    const int every = o_.keep_checkpoints_every;
    so.on_stored = [job_dir, every](const v1::WorkerReport& r,
                                    const v1::ReportAck& ack) {
      if (r.has_finish() && ack.state() == v1::SUCCEEDED) {
        // Nothing will resume it: only the every-N-th kept.
        PruneCheckpoints(job_dir, /*newest=*/0, every);
      } else if (r.has_checkpoint()) {
        // The coordinator now resumes from this epoch: older ones are
        // never read again.
        PruneCheckpoints(job_dir, r.checkpoint().epoch(), every);
      }
    };
  }
  ReportSender sender(so, &control);
  Heartbeater::Options ho;
  ho.stub = stub_.get();
  ho.token = o_.token;
  ho.worker_id = worker_id_;
  ho.interval = heartbeat_;
  ho.stop = stop_;
  Heartbeater heart(ho, &control);

  core::TrainHooks hooks;
  hooks.cancel = control.cancel_flag();
  if (!o_.model_checker.empty()) {
    hooks.check_model_file = [this](const std::string& path,
                                    const core::InputShape& shape) {
      return CheckModelInChild(o_.model_checker, path, shape,
                               o_.model_check_timeout);
    };
  }
  hooks.on_epoch = [&](const core::EpochReport& r) {
    sender.Push(EpochReport(r, lease));
    return absl::OkStatus();
  };
  hooks.on_checkpoint = [&](int epoch, const std::string& path) {
    // Named relative to --checkpoint_dir: the coordinator keeps
    // checkpoints inside it.
    const fs::path relative =
        fs::absolute(path).lexically_relative(fs::absolute(o_.checkpoint_dir));
    if (relative.empty() || *relative.begin() == "..") {
      Log(absl::StrCat("checkpoint ", path, " is outside --checkpoint_dir ",
                       o_.checkpoint_dir, "; not reported"));
      return;
    }
    sender.Push(CheckpointReport(epoch, relative.generic_string(), lease));
  };
  absl::Status result;
  {
    // Leaving (stop) also stops training; the job is then handed back and
    // resumes from the last checkpoint.
    StopSignal::Subscription stop_training =
        stop_->OnStop([&control] { control.StopTraining(); });
    result = trainer_->Run(*config, hooks);
  }
  // The job's end goes on the stream after its last epoch.
  if (!control.lost()) sender.Push(FinishReport(control, result));
  sender.Close();
  sender.Wait();  // everything acknowledged, or the lease lost, or given up
  if (control.lost()) {
    Log(absl::StrCat("job ", job.id(), ": lease lost; dropped"));
  } else if (Stopping() && !control.cancelled()) {
    Log(absl::StrCat("job ", job.id(), ": handed back; leaving"));
  }
  heart.Stop();
}

v1::WorkerReport Agent::FinishReport(const JobControl& control,
                                     const absl::Status& result) {
  v1::WorkerReport end;
  v1::FinishJobRequest* f = end.mutable_finish();
  *f->mutable_lease() = control.lease();
  if (Stopping() && !control.cancelled() && !result.ok()) {
    // Stopped (SIGTERM, preemption): hand the job back at once, to resume
    // elsewhere from its checkpoint, not after a lease expiry.
    f->set_outcome(v1::QUEUED);
    f->set_error("handed back: the worker was stopped");
  } else if (absl::IsUnavailable(result)) {
    // This worker's own fault (its checkpoint directory): the job goes to
    // another worker and this one leaves instead of failing more.
    f->set_outcome(v1::QUEUED);
    f->set_error(
        ToValidUtf8(absl::StrCat("handed back: worker ", worker_id_,
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
    // Code and message (ToString would add the status's payloads).
    f->set_error(ToValidUtf8(
        absl::StrCat(absl::StatusCodeToString(result.code()), ": ",
                     result.message()),
        4096));
    f->set_sweep_wide(core::IsSharedCause(result));
  }
  return end;
}

void Agent::Finish(const v1::Lease& lease, v1::JobState outcome,
                   const std::string& error) {
  Backoff backoff;
  while (!Stopping()) {
    v1::FinishJobRequest req;
    *req.mutable_lease() = lease;
    req.set_outcome(outcome);
    req.set_error(ToValidUtf8(error, 4096));
    v1::FinishJobResponse resp;
    grpc::ClientContext ctx;
    PrepareCall(ctx, o_.token, absl::Seconds(10));
    grpc::Status s = stub_->FinishJob(&ctx, req, &resp);
    if (s.ok()) {
      Log(absl::StrCat("job ", lease.job_id(), " ",
                       v1::JobState_Name(resp.state()),
                       error.empty() ? "" : absl::StrCat(": ", error)));
      return;
    }
    if (!Retryable(s)) {
      Log(absl::StrCat("job ", lease.job_id(),
                       ": finish refused: ", s.error_message()));
      return;
    }
    stop_->WaitFor(backoff.Next());
  }
}

void Agent::Leave(bool failing, const std::string& reason) {
  if (worker_id_ == 0 || stub_ == nullptr) return;
  v1::LeaveRotationRequest req;
  req.set_worker_id(worker_id_);
  req.set_worker_key(worker_key_);
  req.set_failing(failing);
  req.set_reason(ToValidUtf8(reason, 4096));
  v1::LeaveRotationResponse resp;
  grpc::ClientContext ctx;
  PrepareCall(ctx, o_.token, absl::Seconds(2));
  grpc::Status s = stub_->LeaveRotation(&ctx, req, &resp);
  if (!s.ok()) {
    Log(
        absl::StrCat("could not tell the coordinator that this worker "
                     "leaves: ",
                     s.error_message()));
  }
}

// The file to resume from: `checkpoint` relative to --checkpoint_dir (an
// absolute one, as stored before, only when inside it), and a regular file,
// not a device or a pipe.
absl::StatusOr<std::string> Agent::ResolveCheckpoint(
    const std::string& checkpoint) {
  std::error_code ec;
  // Canonical, so that a symbolic link cannot lead outside either.
  const fs::path dir = fs::weakly_canonical(o_.checkpoint_dir, ec);
  const fs::path file = fs::weakly_canonical(fs::path(checkpoint).is_absolute()
                                                 ? fs::path(checkpoint)
                                                 : dir / checkpoint,
                                             ec);
  const fs::path inside = file.lexically_relative(dir);
  if (inside.empty() || *inside.begin() == "..") {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", checkpoint,
                     " is not inside --checkpoint_dir ", o_.checkpoint_dir));
  }
  if (!fs::is_regular_file(file, ec)) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", file.string(),
                                            " is not a readable file here"));
  }
  return file.string();
}

absl::StatusOr<std::string> Agent::InsideDataRoot(
    const std::string& field, const std::string& path) const {
  std::error_code ec;
  const fs::path file = fs::weakly_canonical(fs::absolute(path, ec), ec);
  for (const std::string& root : o_.data_roots) {
    const fs::path dir = fs::weakly_canonical(fs::absolute(root, ec), ec);
    const fs::path inside = file.lexically_relative(dir);
    if (!inside.empty() && *inside.begin() != "..") return file.string();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      field, " ", path, " is outside this worker's --data_root (",
      o_.data_roots.empty() ? "none" : absl::StrJoin(o_.data_roots, ", "),
      "); put the data there, or upload it (mixcal data upload FILE)"));
}

absl::Status Agent::ResolveFiles(calib::TrainConfig* c) {
  auto fetch = [&](const std::string& field,
                   std::string* value) -> absl::Status {
    if (value->rfind(spec::kUploadedPrefix, 0) != 0) return absl::OkStatus();
    const std::string hash =
        value->substr(std::string(spec::kUploadedPrefix).size());
    if (cache_ == nullptr) {
      cache_ = std::make_unique<FileCache>(FileCacheOptions{
          .dir = o_.cache_dir, .max_bytes = o_.cache_bytes});
    }
    absl::StatusOr<std::string> path =
        cache_->Get(hash, FetchFromCoordinator(stub_.get(), o_.token));
    if (!path.ok()) {
      return absl::Status(path.status().code(),
                          absl::StrCat(field, " ", hash, ": ",
                                       path.status().message()));
    }
    *value = *path;
    return absl::OkStatus();
  };
  MIXCAL_RETURN_IF_ERROR(fetch("model_file", &c->model_file));
  if (c->data_file.rfind(spec::kUploadedPrefix, 0) == 0) {
    MIXCAL_RETURN_IF_ERROR(fetch("data.data_file", &c->data_file));
  } else if (!c->data_file.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c->data_file,
                            InsideDataRoot("data.data_path", c->data_file));
  }
  if (!c->data_dir.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c->data_dir,
                            InsideDataRoot("data.data_dir", c->data_dir));
  }
  if (!c->ood_data_dir.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        c->ood_data_dir,
        InsideDataRoot("evaluation.ood_data_dir", c->ood_data_dir));
  }
  return absl::OkStatus();
}

absl::Status Agent::ProbeCheckpointDir() {
  std::error_code ec;
  fs::create_directories(o_.checkpoint_dir, ec);
  const std::string probe =
      (fs::path(o_.checkpoint_dir) / absl::StrCat(".mixcal-probe-", ::getpid()))
          .string();
  absl::Status s = ec ? absl::FailedPreconditionError(ec.message())
                      : WriteFileAtomically(probe, "probe\n", "probe file");
  fs::remove(probe, ec);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--checkpoint_dir ", o_.checkpoint_dir,
                     " is not writable, so this worker would fail every job: ",
                     s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunAgent(const AgentOptions& options) {
  return Agent(options).Run();
}

}  // namespace mixcal::worker
