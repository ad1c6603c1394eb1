// mixcal: the command line of mixcal. See `mixcal --help`.

#include <unistd.h>

#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return mixcal::client::RunCli(args, std::cout, std::cerr,
                                isatty(STDOUT_FILENO) != 0);
}
