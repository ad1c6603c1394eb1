#ifndef MIXCAL_CLIENT_ARGS_H_
#define MIXCAL_CLIENT_ARGS_H_

// The `mixcal` command line's arguments: each subcommand declares its flags
// (Command); Parse checks argv against them and fills Parsed, or returns
// the one-line usage error. Exit codes are shared by every command.

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace mixcal::client {

// Exit codes: ok, the server refused or failed, bad usage.
inline constexpr int kOk = 0, kServerError = 1, kUsage = 2;

struct Parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  std::string Get(const std::string& k,
                  const std::string& fallback = "") const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
  bool Has(const std::string& k) const {
    return values.count(k) || switches.count(k);
  }
};

struct Usage {
  std::string message;
};

struct Command {
  std::string name;
  std::string synopsis;  // one line
  std::string help;      // the rest of --help
  std::set<std::string> value_flags;
  std::set<std::string> switch_flags;
  size_t min_positional = 0, max_positional = 0;
};

// The flags every command takes: --address, --token, --tls-ca, --format.
const std::set<std::string>& GlobalValueFlags();

// Fills *p from args; the usage error, naming the argument, otherwise.
std::optional<Usage> Parse(const Command& cmd,
                           const std::vector<std::string>& args, Parsed* p);

// A positive id, or a usage error naming `what`.
std::optional<Usage> PositiveId(const std::string& what, const std::string& s,
                                int64_t* out);

// As PositiveId, printing the error to `err`; false on error.
bool ParseId(const std::string& what, const std::string& text, int64_t* id,
             std::ostream& err);

// $name when set and not empty, else fallback.
std::string Env(const char* name, const char* fallback);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_ARGS_H_
