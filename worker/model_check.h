#ifndef MIXCAL_WORKER_MODEL_CHECK_H_
#define MIXCAL_WORKER_MODEL_CHECK_H_

// A job's TorchScript file is untrusted input: before the worker loads it,
// a child process (this same binary, started with --check_model) loads it
// and runs it once on the job's input shape (core::CheckScriptModel). A
// file that crashes LibTorch's loader, hangs or is wrong fails the job with
// a one-line reason; the worker lives on.
//
//   absl::Status s = CheckModelInChild("/proc/self/exe", path, shape,
//                                      absl::Seconds(120));

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "worker/core/input_shape.h"

namespace mixcal::worker {

// The flag value that carries `shape` to the child, and back.
std::string EncodeShape(const core::InputShape& shape);
bool DecodeShape(const std::string& text, core::InputShape* shape);

// Runs `exe --check_model=PATH --check_shape=SHAPE` and waits at most
// `timeout`. OK when it exits 0; InvalidArgument with its one-line reason
// when it exits 1; InvalidArgument naming the signal when it crashed or
// was killed past the timeout; Internal when it could not be started.
absl::Status CheckModelInChild(const std::string& exe, const std::string& path,
                               const core::InputShape& shape,
                               absl::Duration timeout);

// The child's side: checks, prints the reason (one line) on failure;
// returns the exit code (0 fine, 1 refused, 2 bad usage).
int RunModelCheck(const std::string& path, const std::string& shape);

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_MODEL_CHECK_H_
