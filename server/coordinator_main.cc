// mixcal-coordinator: serves mixcal's API on one port. See --help.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "server/autoscaler.h"
#include "server/coordinator.h"
#include "server/launcher.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/program.h"

ABSL_FLAG(
    std::string, listen, "127.0.0.1:7707",
    "host:port to listen on; port 0 picks a free one. Other than loopback "
    "needs --tls_cert, --tls_key and --tokens_file, or --insecure");
ABSL_FLAG(std::string, db, "mixcal.db",
          "the SQLite file holding all state (created if missing)");
ABSL_FLAG(double, lease_seconds, 30,
          "a job's lease without heartbeats, [0.1, 3600]");
ABSL_FLAG(double, heartbeat_seconds, 5,
          "how often workers heartbeat, at most half the lease");
ABSL_FLAG(std::string, tokens_file, "",
          "tokens file: lines of 'TOKEN ROLE [NAME]', roles "
          "admin|submit|read|worker");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain; with --tls_key serves TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key");
ABSL_FLAG(std::string, credentials_dir,
          [] {
            const char* d = std::getenv("CREDENTIALS_DIRECTORY");
            return std::string(d == nullptr ? "" : d);
          }(),
          "a directory whose `tokens`, `server.pem` and `server.key` (or, as "
          "systemd names them for LoadCredential=mixcal:DIR, `mixcal_tokens` "
          "...) stand for --tokens_file, --tls_cert and --tls_key when those "
          "are not given (default $CREDENTIALS_DIRECTORY)");
ABSL_FLAG(bool, insecure, false,
          "allow a non-loopback address without TLS and tokens");
ABSL_FLAG(int, max_message_mb, 8, "largest request accepted, in MiB, [1, 256]");
ABSL_FLAG(int, watch_buffer_mb, 16,
          "memory the unread updates of one WatchSweep stream may hold, in "
          "MiB, [1, 1024]; a watcher that falls further behind is cut off "
          "(RESOURCE_EXHAUSTED) and watches again");
ABSL_FLAG(int, max_watchers_per_caller, 32,
          "open WatchSweep streams (mixcal watch, dashboard pages) one "
          "caller may hold, [1, 100000]; a caller is a token's name, or "
          "\"local\" without tokens");
ABSL_FLAG(std::string, launcher, "none",
          "start workers on demand through a batch scheduler: none | slurm "
          "(sbatch, squeue, scancel on PATH)");
ABSL_FLAG(std::string, launcher_script, "",
          "the worker batch script to submit (deploy/slurm/mixcal-worker.sbatch)");
ABSL_FLAG(std::string, launcher_log_dir, "",
          "where launched tasks write their output "
          "(mixcal-worker-<array>_<task>.out), a directory every node can "
          "write; default: worker-logs beside --db, made absolute");
ABSL_FLAG(int, slurm_cpus_per_task, 0,
          "sbatch --cpus-per-task, also the worker's --threads, [0, 1024]; "
          "0: Slurm's default (1)");
ABSL_FLAG(std::string, launcher_device_class, "cuda",
          "start workers for queued jobs of this device class: cuda | cpu");
ABSL_FLAG(int, launcher_max_workers, 4,
          "worker tasks pending and running at once, at most, [1, 10000]");
ABSL_FLAG(std::string, launcher_address, "",
          "the address the started workers use (MIXCAL_ADDRESS); default: "
          "this host's name and the port listened on");
ABSL_FLAG(double, launcher_period_seconds, 5,
          "how often the launcher looks at the queue");
ABSL_FLAG(std::string, slurm_partition, "", "sbatch --partition; empty: default");
ABSL_FLAG(std::string, slurm_gres, "gpu:1",
          "sbatch --gres per task, for cuda jobs");
ABSL_FLAG(std::string, slurm_time, "", "sbatch --time; empty: the script's");
ABSL_FLAG(std::string, slurm_account, "", "sbatch --account");
ABSL_FLAG(std::string, slurm_args, "",
          "more sbatch arguments, separated by spaces");
ABSL_FLAG(int64_t, max_unfinished_jobs_per_submitter, 100000,
          "jobs one submitter (a token's name) may have queued or running; "
          "past it SubmitSweep is RESOURCE_EXHAUSTED; 0 = no limit");
ABSL_FLAG(int64_t, max_active_sweeps_per_submitter, 1000,
          "sweeps one submitter may have active at once; 0 = no limit");
ABSL_FLAG(int32_t, max_upload_mb, 512,
          "the largest model or dataset file a submitter may upload, in "
          "MiB, [1, 65536]");
ABSL_FLAG(std::string, backup_dir, "",
          "online backups of the database and predictions file go here, "
          "each in a folder mixcal-<UTC time>; default: backups beside --db; "
          "none: no backups");
ABSL_FLAG(double, backup_every_hours, 24,
          "a backup this often, [0, 8760]; 0: only on demand (mixcal backup)");
ABSL_FLAG(int, backup_keep, 3, "the newest backups kept, [1, 1000]");
ABSL_FLAG(bool, skip_integrity_check, false,
          "start without SQLite's quick_check of --db (it reads the whole "
          "file: seconds per GB)");
ABSL_FLAG(std::string, port_file, "",
          "write the port listened on to this file once serving");

namespace {
constexpr const char* kUsage =
    "mixcal's coordinator: takes sweeps from `mixcal`, schedules their jobs "
    "onto "
    "mixcal-worker processes and keeps every epoch's metrics in SQLite.\n"
    "  mixcal-coordinator --db lab.db\n"
    "  mixcal-coordinator --listen 0.0.0.0:7707 --tls_cert c.pem --tls_key "
    "k.pem "
    "--tokens_file tokens.txt";
}  // namespace

int main(int argc, char** argv) {
  if (!mixcal::ParseProgramFlags(argc, argv, kUsage)) return 0;  // --help
  // Reports with kept predictions (a few hundred KB each) are received,
  // parsed and stored without a page fault per page (base/program.h).
  mixcal::KeepFreedMemory();
  // Every client holds a socket: the common soft limit of 1,024 would let
  // a crowd of connections stop the coordinator from accepting any more.
  // (Logged once serving: a start-up error is one line on its own.)
  rlimit fds{};
  rlim_t soft_before = 0;
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0) {
    soft_before = fds.rlim_cur;
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
    getrlimit(RLIMIT_NOFILE, &fds);
  }

  mixcal::server::CoordinatorOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.db_path = absl::GetFlag(FLAGS_db);
  o.lease_ms = static_cast<int64_t>(absl::GetFlag(FLAGS_lease_seconds) * 1000);
  o.heartbeat_ms =
      static_cast<int64_t>(absl::GetFlag(FLAGS_heartbeat_seconds) * 1000);
  o.tokens_file = absl::GetFlag(FLAGS_tokens_file);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  if (const std::string creds = absl::GetFlag(FLAGS_credentials_dir);
      !creds.empty()) {
    // systemd copies root's files there, readable by the service's user.
    auto from = [&](std::string* path, const char* name) {
      if (path->empty()) *path = mixcal::CredentialFile(creds, name);
    };
    from(&o.tokens_file, "tokens");
    from(&o.tls_cert_file, "server.pem");
    from(&o.tls_key_file, "server.key");
  }
  o.insecure = absl::GetFlag(FLAGS_insecure);
  o.check_integrity = !absl::GetFlag(FLAGS_skip_integrity_check);
  const int mb = absl::GetFlag(FLAGS_max_message_mb);
  if (mb < 1 || mb > 256) {
    std::fprintf(
        stderr,
        "mixcal-coordinator: --max_message_mb must be in [1, 256], got %d\n",
        mb);
    return 2;
  }
  o.max_message_bytes = mb << 20;
  const int watch_mb = absl::GetFlag(FLAGS_watch_buffer_mb);
  if (watch_mb < 1 || watch_mb > 1024) {
    std::fprintf(
        stderr,
        "mixcal-coordinator: --watch_buffer_mb must be in [1, 1024], got %d\n",
        watch_mb);
    return 2;
  }
  o.watch_buffer_bytes = static_cast<size_t>(watch_mb) << 20;
  o.max_watchers_per_caller = absl::GetFlag(FLAGS_max_watchers_per_caller);
  if (o.max_watchers_per_caller < 1 || o.max_watchers_per_caller > 100000) {
    std::fprintf(stderr,
                 "mixcal-coordinator: --max_watchers_per_caller must be in "
                 "[1, 100000], got %d\n",
                 o.max_watchers_per_caller);
    return 2;
  }
  o.max_unfinished_jobs_per_submitter =
      absl::GetFlag(FLAGS_max_unfinished_jobs_per_submitter);
  o.max_active_sweeps_per_submitter =
      absl::GetFlag(FLAGS_max_active_sweeps_per_submitter);
  if (o.max_unfinished_jobs_per_submitter < 0 ||
      o.max_active_sweeps_per_submitter < 0) {
    std::fprintf(stderr,
                 "mixcal-coordinator: --max_unfinished_jobs_per_submitter and "
                 "--max_active_sweeps_per_submitter must be >= 0 (0 = no "
                 "limit)\n");
    return 2;
  }

  const int32_t upload_mb = absl::GetFlag(FLAGS_max_upload_mb);
  if (upload_mb < 1 || upload_mb > 65536) {
    std::fprintf(stderr,
                 "mixcal-coordinator: --max_upload_mb must be in [1, 65536], "
                 "got %d\n",
                 upload_mb);
    return 2;
  }
  o.max_upload_bytes = static_cast<uint64_t>(upload_mb) << 20;
  {
    const double hours = absl::GetFlag(FLAGS_backup_every_hours);
    const int keep = absl::GetFlag(FLAGS_backup_keep);
    if (!(hours >= 0 && hours <= 8760)) {
      std::fprintf(stderr,
                   "mixcal-coordinator: --backup_every_hours must be in "
                   "[0, 8760], got %g\n",
                   hours);
      return 2;
    }
    if (keep < 1 || keep > 1000) {
      std::fprintf(stderr,
                   "mixcal-coordinator: --backup_keep must be in [1, 1000], "
                   "got %d\n",
                   keep);
      return 2;
    }
    std::string dir = absl::GetFlag(FLAGS_backup_dir);
    if (dir.empty() && o.db_path != ":memory:") {
      dir = (std::filesystem::path(o.db_path).parent_path() / "backups")
                .string();
    }
    if (dir == "none" || o.db_path == ":memory:") dir.clear();
    if (!dir.empty()) {
      std::error_code ec;
      dir = std::filesystem::absolute(dir, ec).lexically_normal().string();
    }
    o.backup_dir = dir;
    o.backup_every = absl::Seconds(hours * 3600);
    o.backup_keep = keep;
  }

  // SIGINT/SIGTERM are taken by a thread of our own, which shuts down cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto c = mixcal::server::Coordinator::Start(o);
  if (!c.ok()) {
    std::fprintf(stderr, "mixcal-coordinator: %s\n",
                 std::string(c.status().message()).c_str());
    return absl::IsInvalidArgument(c.status()) ? 2 : 1;
  }
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty()) {
    absl::Status w = mixcal::WriteFileAtomically(
        port_file, absl::StrCat((*c)->port(), "\n"), "--port_file");
    if (!w.ok()) {
      std::fprintf(stderr, "mixcal-coordinator: %s\n",
                   std::string(w.message()).c_str());
      (*c)->Shutdown();
      return 1;
    }
  }
  std::fprintf(
      stderr, "mixcal-coordinator: serving on port %d (%s), state in %s%s\n",
      (*c)->port(),
      o.tls_cert_file.empty() ? "plaintext"
                              : ("TLS, " + o.tls_cert_file).c_str(),
      o.db_path.c_str(),
      o.tokens_file.empty()
          ? " (no tokens: open to local users)"
          : (", tokens from " + o.tokens_file).c_str());
  std::fprintf(stderr,
               "mixcal-coordinator: open files limit %llu (was %llu; hard "
               "%llu)\n",
               static_cast<unsigned long long>(fds.rlim_cur),
               static_cast<unsigned long long>(soft_before),
               static_cast<unsigned long long>(fds.rlim_max));
  if (const std::string engine = absl::GetFlag(FLAGS_launcher);
      engine != "none") {
    std::string script = absl::GetFlag(FLAGS_launcher_script);
    std::string log_dir = absl::GetFlag(FLAGS_launcher_log_dir);
    const int cpus = absl::GetFlag(FLAGS_slurm_cpus_per_task);
    const std::string device_class =
        absl::GetFlag(FLAGS_launcher_device_class);
    const int max_workers = absl::GetFlag(FLAGS_launcher_max_workers);
    std::string problem;
    if (engine != "slurm") {
      problem = "--launcher must be none or slurm, got " + engine;
    } else if (script.empty()) {
      problem = "--launcher slurm needs --launcher_script";
    } else if (device_class != "cuda" && device_class != "cpu") {
      problem = "--launcher_device_class must be cuda or cpu, got " +
                device_class;
    } else if (max_workers < 1 || max_workers > 10000) {
      problem = absl::StrCat(
          "--launcher_max_workers must be in [1, 10000], got ", max_workers);
    } else if (cpus < 0 || cpus > 1024) {
      problem = absl::StrCat("--slurm_cpus_per_task must be in [0, 1024], got ",
                             cpus);
    } else if (access(script.c_str(), R_OK) != 0) {
      problem = absl::StrCat("--launcher_script ", script, ": cannot read (",
                             std::strerror(errno), ")");
    } else {
      // Absolute paths: the coordinator may run in / (a systemd service)
      // and sbatch resolves relative ones against its working directory.
      std::error_code ec;
      script = std::filesystem::absolute(script, ec).string();
      if (log_dir.empty()) {
        log_dir = (std::filesystem::path(o.db_path).parent_path() /
                   "worker-logs").string();
      }
      log_dir = std::filesystem::absolute(log_dir, ec).lexically_normal().string();
      std::filesystem::create_directories(log_dir, ec);
      if (ec || access(log_dir.c_str(), W_OK | X_OK) != 0) {
        problem = absl::StrCat("--launcher_log_dir ", log_dir,
                               ": cannot create or write it (",
                               ec ? ec.message() : std::strerror(errno), ")");
      }
      if (!log_dir.empty() && log_dir.back() == '/') log_dir.pop_back();
    }
    if (!problem.empty()) {
      std::fprintf(stderr, "mixcal-coordinator: %s\n", problem.c_str());
      (*c)->Shutdown();
      return 2;
    }
    std::string address = absl::GetFlag(FLAGS_launcher_address);
    if (address.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof host - 1);
      std::string listen_host = o.listen.substr(0, o.listen.rfind(':'));
      if (listen_host == "0.0.0.0" || listen_host == "[::]" ||
          listen_host.empty()) {
        listen_host = host;
      }
      address = absl::StrCat(listen_host, ":", (*c)->port());
    }
    mixcal::server::SlurmLauncherOptions so;
    so.script = script;
    so.log_dir = log_dir;
    so.cpus_per_task = cpus;
    so.partition = absl::GetFlag(FLAGS_slurm_partition);
    so.gres = absl::GetFlag(FLAGS_slurm_gres);
    so.time_limit = absl::GetFlag(FLAGS_slurm_time);
    so.account = absl::GetFlag(FLAGS_slurm_account);
    so.extra_args = absl::StrSplit(absl::GetFlag(FLAGS_slurm_args), ' ',
                                   absl::SkipEmpty());
    so.env["MIXCAL_ADDRESS"] = address;
    mixcal::server::AutoscalerOptions ao;
    ao.device_class = device_class;
    ao.max_workers = max_workers;
    ao.period = absl::Seconds(
        std::max(0.1, absl::GetFlag(FLAGS_launcher_period_seconds)));
    ao.idle_window_us = o.lease_ms * 2000;
    (*c)->StartLauncher(mixcal::server::NewSlurmLauncher(so), ao);
    std::fprintf(stderr,
                 "mixcal-coordinator: launcher slurm: up to %d worker task(s) "
                 "for %s jobs, told to reach %s; task output in %s\n",
                 max_workers, device_class.c_str(), address.c_str(),
                 log_dir.c_str());
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "mixcal-coordinator: stopping (signal %d)\n", sig);
    (*c)->Shutdown();
  });
  stopper.detach();
  (*c)->Wait();
  return 0;
}
