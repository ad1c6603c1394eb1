#ifndef MIXCAL_STORAGE_INTERNAL_SCHEMA_H_
#define MIXCAL_STORAGE_INTERNAL_SCHEMA_H_

// The store's schema as ordered migrations (DESIGN.md section 4).

#include <vector>

namespace mixcal::storage {

// Migration i (0-based) takes a file from schema version i to i + 1;
// schema_version holds the number applied. Never edit a released one: add
// the next.
const std::vector<const char*>& Migrations();

}  // namespace mixcal::storage

#endif  // MIXCAL_STORAGE_INTERNAL_SCHEMA_H_
