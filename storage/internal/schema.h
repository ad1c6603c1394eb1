#ifndef MIXCAL_STORAGE_INTERNAL_SCHEMA_H_
#define MIXCAL_STORAGE_INTERNAL_SCHEMA_H_

// The store's schema as ordered migrations (DESIGN.md section 4).

#include <vector>

#include "absl/status/status.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {

// Migration i (0-based) takes a file from schema version i to i + 1;
// schema_version holds the number applied. Never edit a released one: add
// the next.
const std::vector<const char*>& Migrations();

// Adds a REAL column to epoch_metrics for each metric of calib's table it
// lacks (a metric added to the table needs no migration of its own),
// in one transaction; nothing is written when none is missing. For a file
// at the latest schema version.
absl::Status AddMetricColumns(Database* db);

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_SCHEMA_H_
