// The worker's file cache: fetched once and verified, read from disk after
// that, fetched again when the cached bytes changed, bounded by size; and
// fetched over the wire from a real coordinator by hash.

#include "worker/file_cache.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "server/coordinator.h"
#include "spec/sha256.h"
#include "storage/file_book.h"
#include "tests/scratch_dir.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

// Serves `files` (sha256 -> bytes) in chunks of 100 bytes, counting calls.
struct FakeCoordinator {
  std::map<std::string, std::string> files;
  int calls = 0;
  FileFetcher Fetcher() {
    return [this](const std::string& sha,
                  const std::function<absl::Status(const v1::FileChunk&)>& sink)
               -> absl::Status {
      ++calls;
      auto it = files.find(sha);
      if (it == files.end()) return absl::NotFoundError("no file " + sha);
      for (size_t at = 0; at == 0 || at < it->second.size(); at += 100) {
        v1::FileChunk c;
        if (at == 0) {
          c.set_sha256(sha);
          c.set_size(it->second.size());
        }
        c.set_data(it->second.substr(at, 100));
        if (absl::Status s = sink(c); !s.ok()) return s;
      }
      return absl::OkStatus();
    };
  }
  std::string Add(const std::string& bytes) {
    const std::string sha = spec::Sha256Hex(bytes);
    files[sha] = bytes;
    return sha;
  }
};

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FileCacheTest, FetchedOnceVerifiedAndFetchedAgainWhenTheBytesChanged) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("file_cache");
  FakeCoordinator coordinator;
  const std::string model(1000, 'w');
  const std::string sha = coordinator.Add(model);
  FileCache cache({.dir = dir.string(), .max_bytes = 1 << 20});
  auto path = cache.Get(sha, coordinator.Fetcher());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(Read(*path), model);
  EXPECT_EQ(fs::path(*path).filename(), sha);
  ASSERT_TRUE(cache.Get(sha, coordinator.Fetcher()).ok());
  EXPECT_EQ(coordinator.calls, 1) << "a cached file was fetched again";
  // Damaged on disk: noticed, fetched again.
  std::ofstream(*path, std::ios::binary | std::ios::trunc) << "garbage";
  auto again = cache.Get(sha, coordinator.Fetcher());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Read(*again), model);
  EXPECT_EQ(coordinator.calls, 2);
  fs::remove_all(dir);
}

TEST(FileCacheTest, BytesThatDoNotHashToTheirNameAreNotKept) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("file_cache_bad");
  FakeCoordinator coordinator;
  const std::string sha = coordinator.Add("the real model");
  coordinator.files[sha] = "a tampered model";  // served under the old name
  FileCache cache({.dir = dir.string(), .max_bytes = 1 << 20});
  auto path = cache.Get(sha, coordinator.Fetcher());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_NE(path.status().message().find(sha), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir))
    ADD_FAILURE() << "kept: " << e.path();
  EXPECT_EQ(cache.Get("not-a-hash", coordinator.Fetcher()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Get(spec::Sha256Hex("absent"), coordinator.Fetcher())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST(FileCacheTest, TheLeastRecentlyUsedFilesGoPastTheBound) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("file_cache_lru");
  FakeCoordinator coordinator;
  const std::string a = coordinator.Add(std::string(400, 'a'));
  const std::string b = coordinator.Add(std::string(400, 'b'));
  const std::string c = coordinator.Add(std::string(400, 'c'));
  const std::string huge = coordinator.Add(std::string(2000, 'h'));
  FileCache cache({.dir = dir.string(), .max_bytes = 1000});
  ASSERT_TRUE(cache.Get(a, coordinator.Fetcher()).ok());
  ASSERT_TRUE(cache.Get(b, coordinator.Fetcher()).ok());
  // a used again after b: b is the least recently used when c arrives.
  fs::last_write_time(
      dir / a, fs::file_time_type::clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(cache.Get(c, coordinator.Fetcher()).ok());
  EXPECT_TRUE(fs::exists(dir / a));
  EXPECT_FALSE(fs::exists(dir / b));
  EXPECT_TRUE(fs::exists(dir / c));
  auto too_big = cache.Get(huge, coordinator.Fetcher());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  fs::remove_all(dir);
}

TEST(FileCacheTest, FetchesAnUploadedFileFromARealCoordinator) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("file_cache_real");
  server::CoordinatorOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "mixcal.db").string();
  auto coordinator = server::Coordinator::Start(o);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*coordinator)->port()),
                          grpc::InsecureChannelCredentials());
  std::string bytes(2500000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  const std::string sha = spec::Sha256Hex(bytes);
  {
    auto api = v1::ExperimentService::NewStub(channel);
    grpc::ClientContext ctx;
    v1::StoredFile stored;
    auto writer = api->UploadFile(&ctx, &stored);
    for (size_t at = 0; at < bytes.size(); at += 1 << 20) {
      v1::FileChunk c;
      if (at == 0) {
        c.set_kind("data");
        c.set_name("arrays.npz");
        c.set_size(bytes.size());
        c.set_sha256(sha);
      }
      c.set_data(bytes.substr(at, 1 << 20));
      ASSERT_TRUE(writer->Write(c));
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  auto workers = v1::WorkerService::NewStub(channel);
  FileCache cache({.dir = (dir / "cache").string(), .max_bytes = 1 << 30});
  auto path = cache.Get(sha, FetchFromCoordinator(workers.get(), ""));
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(Read(*path), bytes);
  auto missing = cache.Get(spec::Sha256Hex("never"),
                           FetchFromCoordinator(workers.get(), ""));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  coordinator->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mixcal::worker
