#ifndef MIXCAL_WORKER_FILE_CACHE_H_
#define MIXCAL_WORKER_FILE_CACHE_H_

// A worker's cache of files stored on the coordinator by SHA-256 (a
// model, a dataset; docs/files.md): the first job that names a file
// fetches it (WorkerService.FetchFile), checks its SHA-256 and keeps it in
// the cache directory as "<sha256>"; later jobs read it from there. The
// cache is bounded: past max_bytes, the files used least recently go
// first (never one in use by the caller that just asked for it). A cached
// file whose bytes changed on disk is fetched again.
//
//   FileCache cache({.dir = "mixcal-cache", .max_bytes = 8ull << 30});
//   MIXCAL_ASSIGN_OR_RETURN(std::string path,
//                           cache.Get(sha256, FetchFromCoordinator(stub)));
//
// Thread-safe: slots of one worker share one cache, and a file is fetched
// once even when two ask for it together.

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "mixcal/v1/files.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"

namespace mixcal::worker {

struct FileCacheOptions {
  std::string dir = "mixcal-cache";
  uint64_t max_bytes = uint64_t{8} << 30;  // 8 GiB
};

// Streams the file's chunks to `sink` (the first chunk saying its size
// and SHA-256); the call's status.
using FileFetcher = std::function<absl::Status(
    const std::string& sha256,
    const std::function<absl::Status(const v1::FileChunk&)>& sink)>;

// FetchFile on `stub` with `token`, no deadline (a large file takes time).
FileFetcher FetchFromCoordinator(v1::WorkerService::StubInterface* stub,
                                 std::string token);

class FileCache {
 public:
  explicit FileCache(FileCacheOptions options) : o_(std::move(options)) {}

  // The local path of the file `sha256` (64 lowercase hex digits), fetched
  // through `fetch` unless cached. InvalidArgument for a malformed hash;
  // DataLoss when the fetched bytes do not hash to `sha256` (nothing is
  // kept); Unavailable and others from the fetch as they came;
  // ResourceExhausted when the file alone is larger than max_bytes.
  absl::StatusOr<std::string> Get(const std::string& sha256,
                                  const FileFetcher& fetch);

 private:
  absl::StatusOr<std::string> Fetch(const std::string& sha256,
                                    const FileFetcher& fetch);
  // Removes the least recently used files until the cache holds at most
  // max_bytes; `keep` stays.
  void Trim(const std::string& keep);

  const FileCacheOptions o_;
  absl::Mutex mu_;
  std::set<std::string> fetching_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mixcal::worker

#endif  // MIXCAL_WORKER_FILE_CACHE_H_
