#ifndef MIXCAL_BASE_FILE_H_
#define MIXCAL_BASE_FILE_H_

// Whole-file reads and checked writes. Every error names the file and what
// it is for (`what`, e.g. "TLS certificate"), so a message a user sees says
// which of their files is wrong.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mixcal {

// The file's bytes. NotFound when it cannot be opened, DataLoss when reading
// fails part way.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const std::string& what);

// Writes `text` to `path` + ".tmp", flushes it and renames it over `path`,
// so that a reader never sees half a file. Every step is checked; on error
// nothing is left at `path` that was not there before, and the message
// names the file and the system's reason (e.g. "No space left on device").
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text,
                                 const std::string& what);

// The credential `name` (e.g. "tokens") in `dir`, a systemd credentials
// directory: the units load /etc/mixcal/<unit>/ as `LoadCredential=mixcal:`,
// which systemd names `mixcal_<file>`; a plain `<name>` is also found (a
// directory given by hand). Empty when neither exists.
std::string CredentialFile(const std::string& dir, const std::string& name);

}  // namespace mixcal

#endif  // MIXCAL_BASE_FILE_H_
