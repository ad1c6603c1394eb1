// libFuzzer: bytes as a SweepSpec (JSON as `mixcal submit` reads it, else
// the binary wire form), through the validator; the seed corpus is the
// example specs, so mutations start from specs that are accepted. The property is
// the spec promise: a spec the validator accepts expands into jobs whose
// every config converts to a training configuration the training core
// accepts (what a worker will do with it); a refusal is valid UTF-8 and
// names its field briefly. Crashes, leaks and undefined behaviour are
// caught by the sanitizers.
//   tests/libfuzzer/run.sh   (builds with clang and runs both fuzzers)

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <string>

#include "base/utf8.h"
#include "google/protobuf/util/json_util.h"
#include "calib/config.h"
#include "mixcal/v1/sweep.pb.h"
#include "spec/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mixcal::v1::SweepSpec spec;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!google::protobuf::util::JsonStringToMessage(text, &spec).ok()) {
    spec.Clear();
    if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  }
  const absl::Status valid = mixcal::spec::ValidateSweepSpec(spec);
  if (!valid.ok()) {
    if (!mixcal::IsValidUtf8(valid.message()) || valid.message().size() > 2048) {
      std::fprintf(stderr, "refusal not valid UTF-8 or too long (%zu bytes)\n",
                   valid.message().size());
      std::abort();
    }
    return 0;
  }
  const mixcal::v1::SweepSpec normal = mixcal::spec::Normalized(spec);
  if (!mixcal::spec::ValidateSweepSpec(normal).ok()) {
    std::fprintf(stderr, "a valid spec's normal form is refused\n");
    std::abort();
  }
  const std::vector<mixcal::spec::JobSpec> jobs =
      mixcal::spec::ExpandSweep(normal);
  if (jobs.empty() || jobs.size() > mixcal::spec::kMaxJobsPerSweep) {
    std::fprintf(stderr, "a valid spec expands into %zu jobs\n", jobs.size());
    std::abort();
  }
  for (const mixcal::spec::JobSpec& job : jobs) {
    absl::StatusOr<mixcal::calib::TrainConfig> config =
        mixcal::spec::ToTrainConfig(job.config);
    absl::Status ok = config.ok() ? mixcal::calib::Validate(*config)
                                  : config.status();
    if (!ok.ok()) {
      std::fprintf(stderr, "accepted spec, untrainable job: %s\n",
                   std::string(ok.message()).c_str());
      std::abort();
    }
  }
  return 0;
}
