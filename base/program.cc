#include "base/program.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"

namespace mixcal {

std::pair<std::string, std::optional<std::string>> SplitFlag(
    absl::string_view arg) {
  arg.remove_prefix(std::min<size_t>(2, arg.size()));
  const size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) return {std::string(arg), std::nullopt};
  return {std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1))};
}

std::vector<char*> UnderscoreFlags(int argc, char** argv,
                                   std::vector<std::string>* keep) {
  keep->assign(argv, argv + argc);
  std::vector<char*> out;
  for (std::string& a : *keep) {
    if (a.rfind("--", 0) == 0) {
      auto [name, value] = SplitFlag(a);
      std::replace(name.begin(), name.end(), '-', '_');
      // Only a flag of this program: "--slurm_args --cpus-per-task=1"
      // passes its value (another program's flags) through untouched.
      const bool negated_bool =
          absl::StartsWith(name, "no") &&
          absl::FindCommandLineFlag(name.substr(2)) != nullptr;
      if (absl::FindCommandLineFlag(name) != nullptr || negated_bool) {
        a = absl::StrCat("--", name, value ? "=" : "", value.value_or(""));
      }
    }
    out.push_back(a.data());
  }
  return out;
}

bool PrintHelpIfAsked(int argc, char** argv, absl::string_view usage) {
  bool asked = false;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h" || a == "--helpfull" || a == "-help") {
      asked = true;
    }
  }
  if (!asked) return false;
  std::string out = absl::StrCat(usage,
                                 "\n\nFlags (--name=value or --name "
                                 "value; dashes and underscores alike):\n");
  std::map<std::string, const absl::CommandLineFlag*> mine;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "_main.cc") ||
        absl::EndsWith(flag->Filename(), "_bench.cc")) {
      mine[std::string(flag->Name())] = flag;
    }
  }
  for (const auto& [name, flag] : mine) {
    std::string def = flag->DefaultValue();
    if (def.empty()) def = "\"\"";
    absl::StrAppend(&out, "  --", name, "  (default ", def, ")\n      ",
                    absl::StrReplaceAll(flag->Help(), {{"\n", "\n      "}}),
                    "\n");
  }
  absl::StrAppend(&out, "  --help\n      this text\n");
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  return true;
}

bool ParseProgramFlags(int argc, char** argv, absl::string_view usage) {
  if (PrintHelpIfAsked(argc, argv, usage)) return false;
  absl::SetProgramUsageMessage(usage);
  TurnOffMutexDeadlockDetection();
  std::vector<std::string> keep;
  std::vector<char*> args = UnderscoreFlags(argc, argv, &keep);
  // Unknown flags are bad usage, exit 2 like every other usage error
  // (Abseil's parser would exit 1).
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (a == "--") break;
    if (!absl::StartsWith(a, "-") || a == "-") continue;
    a.remove_prefix(absl::StartsWith(a, "--") ? 2 : 1);
    absl::string_view name = a.substr(0, a.find('='));
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    if (absl::StartsWith(name, "no")) {
      const absl::CommandLineFlag* f = absl::FindCommandLineFlag(name.substr(2));
      if (f != nullptr && f->IsOfType<bool>()) continue;
    }
    std::fprintf(stderr, "%s: unknown flag --%s (--help lists them)\n",
                 std::string(absl::string_view(argv[0]).substr(
                     absl::string_view(argv[0]).rfind('/') + 1)).c_str(),
                 std::string(name).c_str());
    std::exit(2);
  }
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return true;
}

void TurnOffMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void KeepFreedMemory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
  });
#endif
}

}  // namespace mixcal
