#include "server/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace mixcal::server {

absl::StatusOr<std::string> RunCommand(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env, int timeout_s) {
  if (argv.empty()) return absl::InvalidArgumentError("no command");
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (env.count(key) == 0) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::string stdout_text, stderr_text;
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open = 2;
  bool timed_out = false;
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          until - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (pollfd& p : fds) {
      if (p.fd < 0 || (p.revents & (POLLIN | POLLHUP)) == 0) continue;
      char buf[4096];
      const ssize_t n = read(p.fd, buf, sizeof buf);
      if (n <= 0) {
        close(p.fd);
        p.fd = -1;
        --open;
      } else {
        (p.fd == out[0] ? stdout_text : stderr_text).append(buf, n);
      }
    }
  }
  for (pollfd& p : fds)
    if (p.fd >= 0) close(p.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string command = absl::StrJoin(argv, " ");
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(command, ": no answer within ", timeout_s, " s"));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnavailableError(absl::StrCat(
        command, ": exit status ",
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ": ",
        absl::StripAsciiWhitespace(stderr_text.substr(0, 1000))));
  }
  return stdout_text;
}

namespace {

class SlurmLauncher : public Launcher {
 public:
  explicit SlurmLauncher(SlurmLauncherOptions o) : o_(std::move(o)) {}

  std::string engine() const override { return "slurm"; }

  absl::StatusOr<std::string> Submit(const std::string& device_class,
                                     int tasks) override {
    std::vector<std::string> argv = {
        Bin("sbatch"), "--parsable", absl::StrCat("--array=0-", tasks - 1),
        "--job-name=" + o_.job_name};
    if (!o_.partition.empty()) argv.push_back("--partition=" + o_.partition);
    if (device_class == "cuda") {
      if (!o_.gres.empty()) argv.push_back("--gres=" + o_.gres);
    } else {
      // The script asks for a GPU (#SBATCH --gres=gpu:1); a CPU worker
      // takes none (and a node without GPUs refuses the request).
      argv.push_back("--gres=none");
    }
    if (!o_.time_limit.empty()) argv.push_back("--time=" + o_.time_limit);
    if (!o_.account.empty()) argv.push_back("--account=" + o_.account);
    if (o_.cpus_per_task > 0)
      argv.push_back(absl::StrCat("--cpus-per-task=", o_.cpus_per_task));
    if (!o_.log_dir.empty())
      argv.push_back("--output=" + o_.log_dir + "/mixcal-worker-%A_%a.out");
    argv.insert(argv.end(), o_.extra_args.begin(), o_.extra_args.end());
    argv.push_back(o_.script);
    absl::StatusOr<std::string> out = RunCommand(argv, o_.env);
    if (!out.ok()) return out.status();
    // "1234" or "1234;cluster".
    std::string id(absl::StripAsciiWhitespace(*out));
    id = id.substr(0, id.find(';'));
    if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) {
          return c >= '0' && c <= '9';
        })) {
      return absl::InternalError(
          absl::StrCat("sbatch answered \"", id, "\", not a job id"));
    }
    return id;
  }

  absl::StatusOr<std::map<std::string, TaskCounts>> Query(
      const std::vector<std::string>& ids) override {
    std::map<std::string, TaskCounts> out;
    if (ids.empty()) return out;
    // Every task of this user's worker arrays, one line each: the array's
    // id and the compact state. (Asking by id fails for ids Slurm forgot.)
    absl::StatusOr<std::string> text =
        RunCommand({Bin("squeue"), "--noheader", "--array", "--me",
                    "--name=" + o_.job_name, "--format=%F %t %r"});
    if (!text.ok()) return text.status();
    const std::set<std::string> wanted(ids.begin(), ids.end());
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(
          absl::StripAsciiWhitespace(line), absl::MaxSplits(' ', 2),
          absl::SkipWhitespace());
      if (f.size() < 2 || wanted.count(f[0]) == 0) continue;
      TaskCounts& c = out[f[0]];  // listed: not ended, whatever its tasks do
      if (f[1] == "PD") {
        ++c.pending;
        if (f.size() > 2)
          c.pending_reason = std::string(absl::StripAsciiWhitespace(f[2]));
      } else if (f[1] == "R" || f[1] == "CF") {
        ++c.running;  // CF: configuring, about to run
      } else {
        ++c.ending;  // CG, F, CA, TO, NF, OOM...: ending or ended
      }
    }
    return out;
  }

  absl::Status CancelPending(const std::string& id) override {
    return RunCommand({Bin("scancel"), "--state=PENDING", id}).status();
  }

  std::string WorkerPlacement(const std::string& id) const override {
    return "slurm job " + id;  // as worker/placement.cc writes it
  }

  LaunchEnd DescribeEnd(const std::string& id) override {
    // One line per task: "JobId=43 ArrayJobId=42 ... JobState=FAILED
    // Reason=NonZeroExitCode ... ExitCode=1:0 ... StdOut=/x.out". Slurm
    // keeps ended jobs for MinJobAge (300 s by default).
    absl::StatusOr<std::string> text =
        RunCommand({Bin("scontrol"), "--oneliner", "show", "job", id});
    LaunchEnd end;
    if (!text.ok()) {
      end.summary = "Slurm has no record of it any more (scontrol: " +
                    std::string(text.status().message()) + ")";
      return end;
    }
    end.cancelled = true;
    std::map<std::string, int> outcomes;  // "FAILED (NonZeroExitCode, exit 1:0)"
    std::string output;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      std::map<std::string, std::string> kv;
      for (absl::string_view field :
           absl::StrSplit(line, ' ', absl::SkipWhitespace())) {
        const size_t eq = field.find('=');
        if (eq != absl::string_view::npos)
          kv.emplace(std::string(field.substr(0, eq)),
                     std::string(field.substr(eq + 1)));
      }
      if (kv["JobState"] != "CANCELLED") end.cancelled = false;
      ++outcomes[absl::StrCat(kv["JobState"], " (reason ", kv["Reason"],
                              ", exit code ", kv["ExitCode"], ")")];
      if (output.empty()) output = kv["StdOut"];
    }
    std::vector<std::string> parts;
    for (const auto& [what, n] : outcomes)
      parts.push_back(absl::StrCat(n, " task(s) ", what));
    if (parts.empty()) end.cancelled = false;
    end.summary = absl::StrJoin(parts, "; ");
    if (!output.empty()) absl::StrAppend(&end.summary, "; output ", output);
    return end;
  }

 private:
  std::string Bin(const std::string& name) const {
    return o_.bin_dir.empty() ? name : o_.bin_dir + "/" + name;
  }

  SlurmLauncherOptions o_;
};

}  // namespace

std::unique_ptr<Launcher> NewSlurmLauncher(
    const SlurmLauncherOptions& options) {
  return std::make_unique<SlurmLauncher>(options);
}

}  // namespace mixcal::server
