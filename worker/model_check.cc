#include "worker/model_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/utf8.h"
#include "worker/core/trainer.h"

extern char** environ;

namespace mixcal::worker {

std::string EncodeShape(const core::InputShape& s) {
  if (s.tokens) {
    return absl::StrCat("tokens:", s.length, ":", s.vocab, ":", s.classes);
  }
  return absl::StrCat("images:", s.channels, ":", s.height, ":", s.width, ":",
                      s.classes);
}

bool DecodeShape(const std::string& text, core::InputShape* s) {
  std::vector<std::string> p = absl::StrSplit(text, ':');
  auto num = [](const std::string& t, int64_t* v) {
    return absl::SimpleAtoi(t, v) && *v > 0 && *v < (int64_t{1} << 40);
  };
  int64_t a = 0, b = 0, c = 0, d = 0;
  if (p.size() == 4 && p[0] == "tokens" && num(p[1], &a) && num(p[2], &b) &&
      num(p[3], &c)) {
    *s = core::InputShape();
    s->tokens = true;
    s->length = static_cast<int>(a);
    s->vocab = b;
    s->classes = static_cast<int>(c);
    return true;
  }
  if (p.size() == 5 && p[0] == "images" && num(p[1], &a) && num(p[2], &b) &&
      num(p[3], &c) && num(p[4], &d)) {
    *s = core::InputShape();
    s->channels = static_cast<int>(a);
    s->height = static_cast<int>(b);
    s->width = static_cast<int>(c);
    s->classes = static_cast<int>(d);
    return true;
  }
  return false;
}

absl::Status CheckModelInChild(const std::string& exe, const std::string& path,
                               const core::InputShape& shape,
                               absl::Duration timeout) {
  const std::string who = absl::StrCat(
      "model_file ", std::filesystem::path(path).filename().string());
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot check ", who, ": pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  std::vector<std::string> args = {exe, absl::StrCat("--check_model=", path),
                                   absl::StrCat("--check_shape=",
                                                EncodeShape(shape))};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, exe.c_str(), &actions, nullptr,
                              argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    return absl::InternalError(absl::StrCat("cannot check ", who, ": start ",
                                            exe, ": ", std::strerror(err)));
  }
  // Read its one line until it closes stdout or the time is up.
  std::string text;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  while (true) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (text.size() < 8192) text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": loading and running it once took over ",
        absl::FormatDuration(timeout), "; stopped"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  std::string line(absl::StripAsciiWhitespace(text));
  if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
  line = ToValidUtf8(line, 2048);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && !line.empty()) {
    return absl::InvalidArgumentError(line);
  }
  if (WIFSIGNALED(status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": LibTorch crashed loading or running it (signal ",
        WTERMSIG(status), ", ", strsignal(WTERMSIG(status)),
        "); it is damaged, or was not made by torch.jit.save"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      who, ": the check exited with status ", WEXITSTATUS(status),
      line.empty() ? "" : ": ", line));
}

int RunModelCheck(const std::string& path, const std::string& shape_text) {
  core::InputShape shape;
  if (!DecodeShape(shape_text, &shape)) {
    std::printf("--check_shape %s: not images:C:H:W:K or tokens:L:V:K\n",
                shape_text.c_str());
    return 2;
  }
  absl::Status s = core::CheckScriptModel(path, shape);
  if (s.ok()) return 0;
  std::printf("%s\n", std::string(s.message()).c_str());
  std::fflush(stdout);
  return 1;
}

}  // namespace mixcal::worker
