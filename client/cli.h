#ifndef MIXCAL_CLIENT_CLI_H_
#define MIXCAL_CLIENT_CLI_H_

// The `mixcal` command line: subcommands over the coordinator's
// ExperimentService. main() only forwards argv and the process's streams.
//
// Exit codes: 0 ok, 1 the server refused or failed (its message is shown),
// 2 bad usage (one line naming the argument, or the subcommand's help).

#include <iosfwd>
#include <string>
#include <vector>

namespace mixcal::client {

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, bool out_is_terminal);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_CLI_H_
