#include "worker/file_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spec/sha256.h"
#include "worker/calls.h"

namespace mixcal::worker {
namespace {

namespace fs = std::filesystem;

// SHA-256 of a file on disk; empty when it cannot be read.
std::string HashOfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  spec::Sha256 sha;
  std::string buffer(size_t{1} << 20, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    sha.Update({buffer.data(), static_cast<size_t>(in.gcount())});
  }
  return in.bad() ? "" : sha.HexDigest();
}

}  // namespace

FileFetcher FetchFromCoordinator(v1::WorkerService::StubInterface* stub,
                                 std::string token) {
  return [stub, token = std::move(token)](
             const std::string& sha256,
             const std::function<absl::Status(const v1::FileChunk&)>& sink)
             -> absl::Status {
    grpc::ClientContext ctx;
    PrepareCall(ctx, token, absl::InfiniteDuration());
    v1::FetchFileRequest req;
    req.set_sha256(sha256);
    std::unique_ptr<grpc::ClientReaderInterface<v1::FileChunk>> reader =
        stub->FetchFile(&ctx, req);
    v1::FileChunk chunk;
    absl::Status failed;
    while (reader->Read(&chunk)) {
      if (failed.ok()) failed = sink(chunk);
      if (!failed.ok()) ctx.TryCancel();
    }
    const grpc::Status st = reader->Finish();
    if (!failed.ok()) return failed;
    return FromGrpc(st);
  };
}

absl::StatusOr<std::string> FileCache::Get(const std::string& sha256,
                                           const FileFetcher& fetch) {
  if (!spec::IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a file is named by 64 lowercase hex digits (its SHA-256), got \"",
        sha256.substr(0, 80), "\""));
  }
  {
    // One fetch per file at a time; others wait for it.
    absl::MutexLock lock(&mu_);
    auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return fetching_.count(sha256) == 0;
    };
    mu_.Await(absl::Condition(&free));
    fetching_.insert(sha256);
  }
  absl::StatusOr<std::string> path = Fetch(sha256, fetch);
  {
    absl::MutexLock lock(&mu_);
    fetching_.erase(sha256);
  }
  return path;
}

absl::StatusOr<std::string> FileCache::Fetch(const std::string& sha256,
                                             const FileFetcher& fetch) {
  std::error_code ec;
  fs::create_directories(o_.dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create the file cache ",
                                               o_.dir, ": ", ec.message()));
  }
  const std::string path = (fs::path(o_.dir) / sha256).string();
  if (fs::exists(path, ec)) {
    if (HashOfFile(path) == sha256) {
      fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // used
      return path;
    }
    Log(absl::StrCat("cached file ", path,
                     " changed on disk; fetching it again"));
    fs::remove(path, ec);
  }
  std::random_device rd;
  const std::string temp =
      (fs::path(o_.dir) / absl::StrFormat(".fetch-%08x%08x", rd(), rd()))
          .string();
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::UnavailableError(absl::StrCat("cannot write ", temp));
  }
  ::chmod(temp.c_str(), 0600);
  spec::Sha256 sha;
  uint64_t declared = 0, received = 0;
  bool first = true;
  absl::Status st = fetch(sha256, [&](const v1::FileChunk& chunk) {
    if (first) {
      declared = chunk.size();
      first = false;
      if (declared > o_.max_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("file ", sha256, " has ", declared,
                         " bytes, more than the worker's file cache holds (",
                         o_.max_bytes, " bytes)"));
      }
    }
    received += chunk.data().size();
    if (received > declared) {
      return absl::DataLossError(absl::StrCat("file ", sha256,
                                              ": more bytes arrived than the ",
                                              declared, " announced"));
    }
    sha.Update(chunk.data());
    out.write(chunk.data().data(),
              static_cast<std::streamsize>(chunk.data().size()));
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write ", temp, " (", std::strerror(errno), ")"));
    }
    return absl::OkStatus();
  });
  const std::string hex = sha.HexDigest();
  out.close();
  auto drop = [&] { fs::remove(temp, ec); };
  if (!st.ok()) {
    drop();
    return st;
  }
  if (first || received != declared || hex != sha256) {
    drop();
    return absl::DataLossError(absl::StrCat(
        "file ", sha256, " fetched from the coordinator hashes to ", hex, " (",
        received, " of ", declared, " bytes): not kept"));
  }
  fs::rename(temp, path, ec);
  if (ec) {
    drop();
    return absl::UnavailableError(
        absl::StrCat("cannot keep ", path, ": ", ec.message()));
  }
  Trim(path);
  return path;
}

void FileCache::Trim(const std::string& keep) {
  struct Entry {
    fs::file_time_type used;
    std::string path;
    uint64_t bytes;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!spec::IsSha256Hex(name)) continue;  // temporary files of other fetches
    const uint64_t bytes = e.file_size(ec);
    total += bytes;
    entries.push_back({e.last_write_time(ec), e.path().string(), bytes});
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const Entry& e : entries) {
    if (total <= o_.max_bytes) break;
    if (e.path == keep) continue;
    {
      absl::MutexLock lock(&mu_);
      if (fetching_.count(fs::path(e.path).filename().string())) continue;
    }
    fs::remove(e.path, ec);
    if (!ec) total -= e.bytes;
  }
}

}  // namespace mixcal::worker
