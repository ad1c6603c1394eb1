#ifndef MIXCAL_STORAGE_BACKUP_H_
#define MIXCAL_STORAGE_BACKUP_H_

// An online backup of a store: a consistent copy of the SQLite file and of
// the predictions file beside it, taken while the coordinator keeps
// writing.
//
//   MIXCAL_ASSIGN_OR_RETURN(BackupInfo b,
//       WriteBackup("/var/lib/mixcal/mixcal.db", "/srv/backups", 7));
//   // b.dir == "/srv/backups/mixcal-20261205T172000Z", holding mixcal.db
//   // and mixcal.db.predictions
//
// How: `VACUUM INTO` on a read-only connection of its own, a snapshot
// reader under WAL, so writers never wait for it (the log grows meanwhile
// and is checkpointed afterwards); then the predictions file up to the end
// of the last bytes a row of that snapshot refers to. The file is append
// only and its bytes are written before the row that points at them is
// committed, so that prefix is complete and unchanged. Both go to a
// hidden folder, are fsynced and checked (PRAGMA quick_check), and the
// folder is renamed into place: a backup folder is whole or absent. Then
// all but the newest `keep` backups in `dest` are deleted.
//
// Restore: stop the coordinator, copy the two files back as the database
// and `<database>.predictions`, start it (docs/storage.md, "Backups").

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace mixcal::storage {

struct BackupInfo {
  std::string dir;             // the finished backup folder
  int64_t database_bytes = 0;  // the copy of the SQLite file
  int64_t predictions_bytes = 0;
  double seconds = 0;  // wall time of the whole backup
};

// `db_path` is a store's file (not ":memory:"); `dest` is created if
// missing; keep >= 1. FailedPrecondition when dest is inside nothing
// writable, and the usual I/O errors, naming the path.
absl::StatusOr<BackupInfo> WriteBackup(const std::string& db_path,
                                       const std::string& dest, int keep);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_BACKUP_H_
