#ifndef MIXCAL_SERVER_BACKUPS_H_
#define MIXCAL_SERVER_BACKUPS_H_

// The coordinator's online backups (storage/backup.h): on a schedule and on
// an admin's demand (ExperimentService.BackupStore, `mixcal backup`), one at
// a time, into one folder keeping the newest N.

#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/periodic.h"
#include "storage/backup.h"

namespace mixcal::server {

struct BackupOptions {
  std::string db_path;
  std::string dir;                         // empty: no backups at all
  absl::Duration every = absl::Hours(24);  // zero: only on demand
  int keep = 7;
};

class Backups {
 public:
  explicit Backups(BackupOptions options);
  ~Backups();  // Stop()

  // A backup now; a second caller waits for the first to end, then takes
  // its own. FailedPrecondition when backups are off (no folder).
  absl::StatusOr<storage::BackupInfo> Run();
  const BackupOptions& options() const { return o_; }
  void Start();  // the schedule, if any
  void Stop();

 private:
  const BackupOptions o_;
  absl::Mutex mu_;  // one backup at a time
  PeriodicThread thread_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_BACKUPS_H_
