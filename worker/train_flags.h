#ifndef MIXCAL_WORKER_TRAIN_FLAGS_H_
#define MIXCAL_WORKER_TRAIN_FLAGS_H_

// mixcal-train's command line: --flag value or --flag=value, mapped onto a
// TrainConfig.

#include <string>

#include "absl/status/statusor.h"
#include "calib/config.h"

namespace mixcal::worker {

struct TrainCommand {
  calib::TrainConfig config;
  bool help = false;
  std::string format = "jsonl";  // jsonl | text
};

// Parses argv[1..]. InvalidArgument names the flag and what it accepts.
// The config is validated (calib::Validate) unless --help was given.
absl::StatusOr<TrainCommand> ParseTrainFlags(int argc, char** argv);

// The --help text: every dataset, model, method and parameter with its range.
std::string TrainHelp();

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_TRAIN_FLAGS_H_
