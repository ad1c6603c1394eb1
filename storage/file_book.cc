#include "storage/file_book.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "spec/sha256.h"
#include "storage/env.h"
#include "storage/internal/connection.h"
#include "storage/internal/records.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

bool ValidKind(const std::string& kind) {
  return kind == "model" || kind == "data";
}

// A write that failed: a full disk is StorageFullError, naming the file.
absl::Status WriteError(const std::string& path, int err) {
  const std::string msg =
      absl::StrCat("cannot write ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return StorageFullError(msg);
  return absl::InternalError(msg);
}

}  // namespace

// Writes the bytes to "<dir>/.upload-<random>" while hashing them; Finish
// renames the file to "<dir>/<sha256>" once size and hash are right.
class FileUploadImpl : public FileUpload {
 public:
  FileUploadImpl(FileBook* book, v1::StoredFile declared, std::string temp,
                 int fd)
      : book_(book),
        declared_(std::move(declared)),
        temp_(std::move(temp)),
        fd_(fd) {}
  ~FileUploadImpl() override {
    if (fd_ >= 0) ::close(fd_);
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

  absl::Status Append(absl::string_view bytes) override {
    if (fd_ < 0) return absl::FailedPreconditionError("the upload has ended");
    if (received_ + bytes.size() > declared_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("size: the file was declared as ", declared_.size(),
                       " bytes, and more arrived"));
    }
    sha_.Update(bytes);
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return WriteError(temp_, n < 0 ? errno : ENOSPC);
      done += static_cast<size_t>(n);
    }
    received_ += bytes.size();
    return absl::OkStatus();
  }

  absl::StatusOr<v1::StoredFile> Finish() override {
    if (fd_ < 0) return absl::FailedPreconditionError("the upload has ended");
    if (received_ != declared_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("size: the file was declared as ", declared_.size(),
                       " bytes, and ", received_, " arrived"));
    }
    const std::string sha = sha_.HexDigest();
    if (sha != declared_.sha256()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sha256: the bytes received hash to ", sha,
                       ", not the declared ", declared_.sha256(),
                       " (the upload was damaged or the hash is wrong)"));
    }
    if (::fsync(fd_) != 0) return WriteError(temp_, errno);
    ::close(fd_);
    fd_ = -1;
    const std::string final_path = (fs::path(book_->dir_) / sha).string();
    // Renamed over a file of the same bytes, if one is there already.
    if (::rename(temp_.c_str(), final_path.c_str()) != 0)
      return WriteError(final_path, errno);
    temp_.clear();
    return book_->Record(declared_);
  }

 private:
  FileBook* const book_;
  const v1::StoredFile declared_;
  std::string temp_;
  int fd_;
  spec::Sha256 sha_;
  uint64_t received_ = 0;
};

absl::StatusOr<std::unique_ptr<FileUpload>> FileBook::BeginUpload(
    const v1::FileChunk& first, const std::string& submitter,
    uint64_t max_bytes) {
  if (dir_.empty()) {
    return absl::FailedPreconditionError(
        "a store in memory keeps no files: give the coordinator a --db file");
  }
  if (!ValidKind(first.kind())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind must be model or data, got \"", Echo(first.kind()), "\""));
  }
  MIXCAL_RETURN_IF_ERROR(CheckText("name", first.name(), 256));
  if (first.size() < 1 || first.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "size must be in [1, %d] bytes (%.0f MiB, the coordinator's "
        "--max_upload_mb), got %d",
        max_bytes, max_bytes / 1048576.0, first.size()));
  }
  if (!spec::IsSha256Hex(first.sha256())) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256 must be 64 lowercase hex digits, got \"",
                     Echo(first.sha256()), "\""));
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir_, ": ", ec.message()));
  }
  ::chmod(dir_.c_str(), 0700);
  std::random_device rd;
  const std::string temp =
      (fs::path(dir_) / absl::StrFormat(".upload-%08x%08x", rd(), rd()))
          .string();
  const int fd =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return WriteError(temp, errno);
  v1::StoredFile declared;
  declared.set_sha256(first.sha256());
  declared.set_kind(first.kind());
  declared.set_name(first.name());
  declared.set_size(first.size());
  declared.set_submitter(submitter);
  return std::unique_ptr<FileUpload>(
      new FileUploadImpl(this, std::move(declared), temp, fd));
}

absl::StatusOr<v1::StoredFile> FileBook::Record(const v1::StoredFile& file) {
  RequestLock lock(c_);
  Transaction txn(c_.db());
  MIXCAL_RETURN_IF_ERROR(txn.Begin());
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement ins,
      c_.db()->Cached("INSERT OR IGNORE INTO files (sha256, kind, name, size, "
                      "stored_at, submitter) VALUES (?, ?, ?, ?, ?, ?)"));
  MIXCAL_RETURN_IF_ERROR(ins->Bind(1, file.sha256())
                             .Bind(2, file.kind())
                             .Bind(3, file.name())
                             .Bind(4, file.size())
                             .Bind(5, c_.clock()->NowMicros())
                             .Bind(6, file.submitter())
                             .Run());
  const bool existed = c_.db()->Changes() == 0;
  if (!existed) {
    MIXCAL_RETURN_IF_ERROR(
        AddEvent(c_, 0, 0, "file_stored",
                 absl::StrCat(file.kind(), " ", file.sha256(), " (",
                              file.size(), " bytes) from ", file.submitter())));
  }
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement get,
      c_.db()->Cached("SELECT sha256, kind, name, size, stored_at, submitter "
                      "FROM files WHERE sha256 = ?"));
  get->Bind(1, file.sha256());
  MIXCAL_ASSIGN_OR_RETURN(bool found, get->Step());
  if (!found) return absl::InternalError("a stored file's row vanished");
  v1::StoredFile out;
  out.set_sha256(get->Text(0));
  out.set_kind(get->Text(1));
  out.set_name(get->Text(2));
  out.set_size(static_cast<uint64_t>(get->Int(3)));
  out.set_stored_at_us(get->Int(4));
  out.set_submitter(get->Text(5));
  out.set_existed(existed);
  get->Reset();
  MIXCAL_RETURN_IF_ERROR(txn.Commit());
  return out;
}

absl::StatusOr<std::vector<v1::StoredFile>> FileBook::ListFiles(
    const std::string& kind) {
  if (!kind.empty() && !ValidKind(kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind must be model, data or empty, got \"", Echo(kind), "\""));
  }
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement s,
      c_.db()->Cached("SELECT sha256, kind, name, size, stored_at, submitter, "
                      "first_sweep FROM files WHERE ?1 = '' OR kind = ?1 "
                      "ORDER BY stored_at, sha256"));
  s->Bind(1, kind);
  std::vector<v1::StoredFile> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    v1::StoredFile& f = out.emplace_back();
    f.set_sha256(s->Text(0));
    f.set_kind(s->Text(1));
    f.set_name(s->Text(2));
    f.set_size(static_cast<uint64_t>(s->Int(3)));
    f.set_stored_at_us(s->Int(4));
    f.set_submitter(s->Text(5));
    f.set_first_sweep_id(s->Int(6));
  }
  return out;
}

absl::StatusOr<std::pair<v1::StoredFile, std::string>> FileBook::Find(
    const std::string& sha256) {
  if (!spec::IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sha256 must be 64 lowercase hex digits, got \"", Echo(sha256), "\""));
  }
  MIXCAL_ASSIGN_OR_RETURN(std::vector<v1::StoredFile> all, ListFiles(""));
  for (v1::StoredFile& f : all) {
    if (f.sha256() != sha256) continue;
    const std::string path = (fs::path(dir_) / sha256).string();
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 ||
        static_cast<uint64_t>(st.st_size) != f.size()) {
      return absl::DataLossError(
          absl::StrCat("file ", sha256, ": its bytes (", path,
                       ") are missing or not of the stored size ", f.size()));
    }
    return std::make_pair(std::move(f), path);
  }
  return absl::NotFoundError(absl::StrCat("no file ", sha256, " is stored"));
}

}  // namespace mixcal::storage
