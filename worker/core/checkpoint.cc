#include "worker/core/checkpoint.h"

#include <sys/stat.h>
#include <torch/serialize/archive.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/file.h"

namespace mixcal::core {

namespace fs = std::filesystem;

std::string Fingerprint(const calib::TrainConfig& c, const InputShape& shape) {
  std::string subset;
  if (!c.classes.empty())
    subset = absl::StrCat(";subset=", absl::StrJoin(c.classes, ","));
  std::string model(Name(c.model)), dataset(Name(c.dataset));
  // Uploaded files are cached under their SHA-256, so the name says which.
  if (!c.model_file.empty())
    absl::StrAppend(&model, ":", fs::path(c.model_file).filename().string());
  if (!c.data_file.empty())
    absl::StrAppend(&dataset, ":", fs::path(c.data_file).filename().string());
  return absl::StrCat("model=", model, ";dataset=", dataset,
                      ";shape=", absl::StrJoin(shape.Batch(1), "x").substr(2),
                      ";classes=", shape.classes, ";method=", Name(c.method),
                      ";optimizer=", Name(c.optimizer), ";seed=", c.seed,
                      ";batch=", c.batch_size, subset);
}

absl::StatusOr<int> LoadCheckpoint(const std::string& path,
                                   const std::string& fingerprint,
                                   const at::Device& device,
                                   Network& model,
                                   torch::optim::Optimizer& optimizer) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat("resume_from ", path, ": no such file"));
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("resume_from ", path,
                                            ": not a mixcal checkpoint (",
                                            e.what_without_backtrace(), ")"));
  }
  c10::IValue stored_fp, stored_epoch;
  archive.read("fingerprint", stored_fp);
  archive.read("epoch", stored_epoch);
  if (stored_fp.toStringRef() != fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat("resume_from ", path, " was written by a different run (",
                     stored_fp.toStringRef(), "), not ", fingerprint));
  }
  if (absl::Status s = model.Load(archive); !s.ok()) {
    return absl::DataLossError(absl::StrCat("resume_from ", path, ": ",
                                            s.message()));
  }
  torch::serialize::InputArchive optimizer_archive;
  archive.read("optimizer", optimizer_archive);
  optimizer.load(optimizer_archive);
  return static_cast<int>(stored_epoch.toInt());
}

namespace {

// Shared checkpoint folders (docs/cluster.md, "Shared checkpoints"): when
// the folder above is group-writable (a lab's checkpoint root, group
// `mixcal`, mode 2775), what this worker creates is too, whatever its
// umask, so that another lab user's worker can resume the job: the job
// folder gets the group's rwx (and setgid, so files keep the group), each
// checkpoint the group's rw. Only the owner may chmod; a folder another
// user made is left as it is.
void ShareWithGroup(const fs::path& dir) {
  struct stat parent, self;
  if (stat(dir.parent_path().c_str(), &parent) != 0 ||
      (parent.st_mode & S_IWGRP) == 0 || stat(dir.c_str(), &self) != 0 ||
      self.st_uid != geteuid()) {
    return;
  }
  const mode_t want =
      (self.st_mode & 07777) | S_IRWXG | (parent.st_mode & S_ISGID);
  if (want != (self.st_mode & 07777)) chmod(dir.c_str(), want);
}

void ShareFileWithGroup(const fs::path& file) {
  struct stat dir, self;
  if (stat(file.parent_path().c_str(), &dir) != 0 ||
      (dir.st_mode & S_IWGRP) == 0 || stat(file.c_str(), &self) != 0 ||
      self.st_uid != geteuid()) {
    return;
  }
  chmod(file.c_str(), (self.st_mode & 07777) | S_IRGRP | S_IWGRP);
}

}  // namespace

absl::StatusOr<std::string> SaveCheckpoint(const std::string& dir, int epoch,
                                           const std::string& fingerprint,
                                           Network& model,
                                           torch::optim::Optimizer& optimizer) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("checkpoint_dir ", dir, ": ", ec.message()));
  }
  ShareWithGroup(dir);
  const std::string path =
      (fs::path(dir) / absl::StrFormat("checkpoint-epoch-%05d.pt", epoch))
          .string();
  torch::serialize::OutputArchive archive, optimizer_archive;
  model.Save(archive);
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("epoch", c10::IValue(static_cast<int64_t>(epoch)));
  archive.write("fingerprint", c10::IValue(fingerprint));
  // Serialised in memory, then written and renamed with every step checked:
  // LibTorch's own file writer aborts the process when the disk fills
  // (an exception from a destructor), and a full checkpoint directory is
  // the worker's problem, not a reason to die.
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    return absl::UnavailableError(absl::StrCat(
        "checkpoint ", path, ": cannot serialise (",
        e.what_without_backtrace(), ")"));
  }
  if (absl::Status s = WriteFileAtomically(path, bytes.str(), "checkpoint");
      !s.ok()) {
    return absl::UnavailableError(s.message());
  }
  ShareFileWithGroup(path);
  return path;
}

}  // namespace mixcal::core
