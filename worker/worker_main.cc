// mixcal-worker: trains the coordinator's jobs on one device. See --help.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/file.h"
#include "base/program.h"
#include "worker/agent.h"
#include "worker/model_check.h"
#include "worker/core/trainer.h"
#include "worker/placement.h"
#include "worker/stop_signal.h"

namespace {
std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

ABSL_FLAG(std::string, coordinator, Env("MIXCAL_ADDRESS", "127.0.0.1:7707"),
          "coordinator address (default $MIXCAL_ADDRESS or 127.0.0.1:7707)");
ABSL_FLAG(std::string, token, Env("MIXCAL_TOKEN", ""),
          "worker token (default $MIXCAL_TOKEN)");
ABSL_FLAG(std::string, token_file, Env("MIXCAL_TOKEN_FILE", ""),
          "a file holding the worker token (default $MIXCAL_TOKEN_FILE); "
          "used when --token is empty");
ABSL_FLAG(std::string, tls_ca, Env("MIXCAL_TLS_CA", ""),
          "PEM CA certificate of the coordinator; turns TLS on (default "
          "$MIXCAL_TLS_CA)");
ABSL_FLAG(std::string, credentials_dir, Env("CREDENTIALS_DIRECTORY", ""),
          "a directory whose `token` and `ca.pem` (or, as systemd names them "
          "for LoadCredential=mixcal:DIR, `mixcal_token` and `mixcal_ca.pem`) "
          "stand for --token_file and --tls_ca when those are not given "
          "(default $CREDENTIALS_DIRECTORY)");
ABSL_FLAG(std::string, device, "cpu",
          "cpu, cuda, cuda:N, or auto: the GPU the scheduler assigned "
          "(CUDA_VISIBLE_DEVICES, SLURM_JOB_GPUS) on a CUDA build, else cpu; "
          "run one worker per GPU");
ABSL_FLAG(int, threads, 0,
          "intra-op CPU threads for jobs that name none, [0, 1024]; 0 = "
          "OMP_NUM_THREADS or all "
          "cores. Several CPU workers on one machine should split the cores "
          "between them");
ABSL_FLAG(std::string, checkpoint_dir, "mixcal-checkpoints",
          "where checkpoints go; a directory every worker that may resume the "
          "job can read");
ABSL_FLAG(std::string, data_root, "/usr/share/datasets",
          "comma-separated directories whose files jobs may name as data "
          "(data_path, data_dir, ood_data_dir); anything else is refused, so "
          "a submitter cannot make the worker read other files");
ABSL_FLAG(std::string, cache_dir, "mixcal-cache",
          "where models and datasets uploaded to the coordinator are kept "
          "once fetched (by SHA-256)");
ABSL_FLAG(double, cache_gb, 8,
          "the most the cache may hold, in GiB, (0, 100000]; the files used "
          "least recently go first");
ABSL_FLAG(std::string, check_model, "",
          "used by the worker itself: load this TorchScript file in a child "
          "process and run it once on --check_shape; prints why it is "
          "unusable and exits 1");
ABSL_FLAG(std::string, check_shape, "",
          "with --check_model: images:C:H:W:CLASSES or "
          "tokens:LENGTH:VOCAB:CLASSES");
ABSL_FLAG(std::string, name, "", "a name shown by `mixcal workers`");
ABSL_FLAG(int, max_jobs, 0, "exit after this many jobs; 0 = run until stopped");
ABSL_FLAG(bool, insecure, false,
          "send the token without TLS to a coordinator that is not on this "
          "machine (otherwise refused: give --tls_ca)");
ABSL_FLAG(int, slots, 1,
          "jobs run at once on this worker's device, [1, 64]: one worker "
          "process per slot (each with its own lease, heartbeats, reports "
          "and --threads/slots threads), named NAME/slotK; small models "
          "cannot fill a GPU alone");
ABSL_FLAG(bool, keep_checkpoints, false,
          "keep every checkpoint; by default a job's older checkpoints are "
          "deleted once the coordinator has recorded a newer one, and its "
          "folder once it succeeded");
ABSL_FLAG(int, keep_checkpoints_every, 0,
          "without --keep_checkpoints: also keep every N-th epoch's "
          "checkpoint (N, 2N, ...) and, once the job succeeded, its last, [0, "
          "100000]; 0: none");
ABSL_FLAG(absl::Duration, exit_when_idle, absl::ZeroDuration(),
          "exit 0 after this long without a job (e.g. 5m), so that a batch "
          "allocation is released; 0 = never");

namespace {
constexpr const char* kUsage =
    "mixcal's worker: trains jobs from a mixcal-coordinator on one device, "
    "one at a time (or --slots N at once).\n"
    "  mixcal-worker --device cuda:0\n"
    "  mixcal-worker --coordinator host:7707 --token $TOKEN --tls_ca ca.pem "
    "--threads 2";
}  // namespace

// --slots N: N worker processes, forked before anything starts a thread
// (or CUDA). The parent passes SIGTERM/SIGINT on (a second signal: SIGKILL)
// and exits when they all have: 0 when every slot exited 0.
int SuperviseSlots(int slots, int* slot) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::vector<pid_t> children;
  for (int k = 0; k < slots; ++k) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("mixcal-worker: fork");
      for (pid_t c : children) kill(c, SIGTERM);
      break;
    }
    if (pid == 0) {
      pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
      *slot = k;
      return -1;  // a slot: go on as a worker
    }
    children.push_back(pid);
  }
  int signals_seen = 0;
  int failed = 0;
  size_t running = children.size();
  while (running > 0) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        --running;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
      }
      continue;
    }
    ++signals_seen;
    for (pid_t c : children) kill(c, signals_seen == 1 ? SIGTERM : SIGKILL);
  }
  return failed == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (!mixcal::ParseProgramFlags(argc, argv, kUsage)) return 0;  // --help
  if (!absl::GetFlag(FLAGS_check_model).empty()) {
    return mixcal::worker::RunModelCheck(absl::GetFlag(FLAGS_check_model),
                                         absl::GetFlag(FLAGS_check_shape));
  }
  const double cache_gb = absl::GetFlag(FLAGS_cache_gb);
  if (!(cache_gb > 0 && cache_gb <= 100000)) {
    std::fprintf(stderr,
                 "mixcal-worker: --cache_gb must be in (0, 100000], got %g\n",
                 cache_gb);
    return 2;
  }
  const int keep_every = absl::GetFlag(FLAGS_keep_checkpoints_every);
  if (keep_every < 0 || keep_every > 100000) {
    std::fprintf(stderr,
                 "mixcal-worker: --keep_checkpoints_every must be in [0, "
                 "100000], got %d\n",
                 keep_every);
    return 2;
  }
  const int slots = absl::GetFlag(FLAGS_slots);
  if (slots < 1 || slots > 64) {
    std::fprintf(stderr, "mixcal-worker: --slots must be in [1, 64], got %d\n",
                 slots);
    return 2;
  }
  int slot = -1;
  if (slots > 1) {
    const int rc = SuperviseSlots(slots, &slot);
    if (rc >= 0) return rc;  // the parent, once every slot has ended
  }
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0 || threads > 1024) {
    std::fprintf(stderr,
                 "mixcal-worker: --threads must be in [0, 1024], got %d\n",
                 threads);
    return 2;
  }
  const std::string flag_device = absl::GetFlag(FLAGS_device);
  if (flag_device != "cpu" && flag_device != "auto" &&
      flag_device.rfind("cuda", 0) != 0) {
    std::fprintf(stderr,
                 "mixcal-worker: --device must be cpu, cuda, cuda:N or auto, "
                 "got \"%s\"\n",
                 flag_device.c_str());
    return 2;
  }
  const absl::Duration idle = absl::GetFlag(FLAGS_exit_when_idle);
  if (idle < absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "mixcal-worker: --exit_when_idle must be 0 (never) or a "
                 "positive duration such as 90s or 10m, got %s\n",
                 absl::FormatDuration(idle).c_str());
    return 2;
  }
  // The token and CA: flags, the environment, then systemd's credentials.
  std::string token = absl::GetFlag(FLAGS_token);
  std::string token_file = absl::GetFlag(FLAGS_token_file);
  std::string tls_ca = absl::GetFlag(FLAGS_tls_ca);
  if (const std::string creds = absl::GetFlag(FLAGS_credentials_dir);
      !creds.empty()) {
    if (token.empty() && token_file.empty())
      token_file = mixcal::CredentialFile(creds, "token");
    if (tls_ca.empty()) tls_ca = mixcal::CredentialFile(creds, "ca.pem");
  }
  if (token.empty() && !token_file.empty()) {
    absl::StatusOr<std::string> t = mixcal::ReadFile(token_file, "--token_file");
    if (!t.ok()) {
      std::fprintf(stderr, "mixcal-worker: %s\n",
                   std::string(t.status().message()).c_str());
      return 2;
    }
    token = std::string(absl::StripAsciiWhitespace(*t));
    if (token.empty()) {
      std::fprintf(stderr, "mixcal-worker: token file %s is empty\n",
                   token_file.c_str());
      return 2;
    }
  }
  if (!token.empty() &&
      tls_ca.empty() && !absl::GetFlag(FLAGS_insecure) &&
      !mixcal::IsLoopback(absl::GetFlag(FLAGS_coordinator))) {
    std::fprintf(stderr,
                 "mixcal-worker: refusing to send the token in plaintext to "
                 "%s, which is not this machine: give --tls_ca CA.pem (the "
                 "coordinator's TLS), or --insecure to send it anyway\n",
                 absl::GetFlag(FLAGS_coordinator).c_str());
    return 2;
  }
  const mixcal::worker::Placement placement = mixcal::worker::Place(
      flag_device,
      flag_device == "auto" ? mixcal::core::CudaAvailable() : false,
      [](const char* name) { return std::getenv(name); });
  const std::string& device = placement.device;
  // A device this machine cannot use is the worker's own problem: refuse to
  // start rather than take jobs and fail them.
  if (device.rfind("cuda", 0) == 0) {
    const int count = mixcal::core::CudaDeviceCount();
    int index = 0;
    if (device.size() > 5) absl::SimpleAtoi(device.substr(5), &index);
    if (count == 0 || index >= count) {
      std::fprintf(stderr,
                   "mixcal-worker: --device %s cannot be used here: %s; give "
                   "--device cpu, or a cuda:N with N below the GPUs seen\n",
                   device.c_str(),
                   count == 0 ? "this LibTorch has no CUDA, or no GPU is visible"
                              : absl::StrCat("only ", count, " GPU(s) are visible")
                                    .c_str());
      return 2;
    }
  }
  if (flag_device == "auto" || !placement.where.empty()) {
    std::fprintf(stderr, "mixcal-worker: device %s%s%s\n", device.c_str(),
                 placement.where.empty() ? "" : "; ", placement.where.c_str());
  }
  // SIGINT/SIGTERM are blocked before the agent starts its threads, so that
  // they inherit the mask and only this thread takes them (sigwait): it may
  // then call Stop(), which locks a mutex, as a signal handler could not.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  static mixcal::worker::StopSignal stop;  // outlives the detached thread
  std::thread([signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr,
                 "mixcal-worker: stopping (signal %d): the job in hand is "
                 "handed back; a second signal exits at once\n",
                 sig);
    stop.Stop();
    sigwait(&signals, &sig);
    std::fprintf(stderr, "mixcal-worker: second signal (%d): exiting now\n",
                 sig);
    std::_Exit(128 + sig);
  }).detach();

  mixcal::worker::AgentOptions o;
  o.address = absl::GetFlag(FLAGS_coordinator);
  o.token = token;
  o.tls_ca_file = tls_ca;
  o.device = device;
  o.threads = threads;
  if (slot >= 0) {
    // Each slot its share of the cores.
    const int cores = threads > 0
                          ? threads
                          : static_cast<int>(std::max(
                                1u, std::thread::hardware_concurrency()));
    o.threads = std::max(1, cores / slots);
  }
  o.checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  o.data_roots = absl::StrSplit(absl::GetFlag(FLAGS_data_root), ',',
                                absl::SkipEmpty());
  o.cache_dir = absl::GetFlag(FLAGS_cache_dir);
  o.cache_bytes = static_cast<uint64_t>(cache_gb * (1ull << 30));
  {
    // This binary checks model files in a child (--check_model).
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) o.model_checker.assign(self, static_cast<size_t>(n));
  }
  o.name = absl::GetFlag(FLAGS_name);
  if (slot >= 0) {
    o.name = absl::StrCat(o.name.empty() ? "worker" : o.name, "/slot", slot);
  }
  o.max_jobs = absl::GetFlag(FLAGS_max_jobs);
  o.exit_when_idle = idle;
  o.keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  o.keep_checkpoints_every = absl::GetFlag(FLAGS_keep_checkpoints_every);
  o.placement = placement.where;
  o.stop = &stop;
  absl::Status s = mixcal::worker::RunAgent(o);
  if (!s.ok()) {
    std::fprintf(stderr, "mixcal-worker: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
