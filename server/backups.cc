#include "server/backups.h"

#include <cstdio>
#include <utility>

namespace mixcal::server {

Backups::Backups(BackupOptions options)
    : o_(std::move(options)),
      thread_(
          o_.every > absl::ZeroDuration() ? o_.every : absl::Hours(24),
          [this] {
            absl::StatusOr<storage::BackupInfo> b = Run();
            if (!b.ok()) {
              std::fprintf(stderr,
                           "mixcal-coordinator: scheduled backup failed: "
                           "%s\n",
                           std::string(b.status().message()).c_str());
            }
          },
          /*tick_at_start=*/false) {}

Backups::~Backups() { Stop(); }

absl::StatusOr<storage::BackupInfo> Backups::Run() {
  if (o_.dir.empty()) {
    return absl::FailedPreconditionError(
        "backups are off: start the coordinator with --backup_dir");
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<storage::BackupInfo> b =
      storage::WriteBackup(o_.db_path, o_.dir, o_.keep);
  if (b.ok()) {
    std::fprintf(stderr,
                 "mixcal-coordinator: backup %s: database %lld bytes, "
                 "predictions %lld bytes, %.2f s\n",
                 b->dir.c_str(), static_cast<long long>(b->database_bytes),
                 static_cast<long long>(b->predictions_bytes), b->seconds);
  }
  return b;
}

void Backups::Start() {
  if (!o_.dir.empty() && o_.every > absl::ZeroDuration()) thread_.Start();
}

void Backups::Stop() { thread_.Stop(); }

}  // namespace mixcal::server
