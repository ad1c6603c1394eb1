#include "client/args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/program.h"

namespace mixcal::client {

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

const std::set<std::string>& GlobalValueFlags() {
  static const auto* f =
      new std::set<std::string>{"address", "token", "token-file", "tls-ca",
                                "format"};
  return *f;
}

std::optional<Usage> Parse(const Command& cmd,
                           const std::vector<std::string>& args, Parsed* p) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      p->positional.push_back(a);
      continue;
    }
    auto [name, given] = SplitFlag(a);
    const bool has_value = given.has_value();
    std::string value = given.value_or("");
    if (cmd.switch_flags.count(name) || name == "insecure") {
      if (has_value) return Usage{absl::StrCat("--", name, " takes no value")};
      p->switches.insert(name);
      continue;
    }
    if (!cmd.value_flags.count(name) && !GlobalValueFlags().count(name)) {
      return Usage{absl::StrCat("unknown flag --", name, " for `mixcal ",
                                cmd.name, "` (see mixcal ", cmd.name,
                                " --help)")};
    }
    if (!has_value) {
      if (i + 1 >= args.size())
        return Usage{absl::StrCat("--", name, " needs a value")};
      value = args[++i];
    }
    p->values[name] = value;
  }
  if (p->positional.size() < cmd.min_positional ||
      p->positional.size() > cmd.max_positional) {
    return Usage{absl::StrCat("usage: mixcal ", cmd.synopsis)};
  }
  const std::string format = p->Get("format", "text");
  if (format != "text" && format != "json" && format != "csv") {
    return Usage{absl::StrCat("--format must be one of text|json|csv, got \"",
                              format, "\"")};
  }
  return std::nullopt;
}

std::optional<Usage> PositiveId(const std::string& what, const std::string& s,
                                int64_t* out) {
  if (!absl::SimpleAtoi(s, out) || *out <= 0) {
    return Usage{
        absl::StrCat(what, " must be a positive number, got \"", s, "\"")};
  }
  return std::nullopt;
}

bool ParseId(const std::string& what, const std::string& text, int64_t* id,
             std::ostream& err) {
  if (auto u = PositiveId(what, text, id)) {
    err << "mixcal: " << u->message << "\n";
    return false;
  }
  return true;
}

}  // namespace mixcal::client
