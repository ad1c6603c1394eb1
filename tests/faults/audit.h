#ifndef MIXCAL_TESTS_FAULTS_AUDIT_H_
#define MIXCAL_TESTS_FAULTS_AUDIT_H_

// Reading a store file with plain SQL, as the fault suites audit it after
// the coordinator has stopped (read-only; a bad statement is a test failure).

#include <sqlite3.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mixcal::testing {

class Audit {
 public:
  explicit Audit(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  }
  ~Audit() { sqlite3_close(db_); }
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "");
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    return out;
  }
  // The first column of the first row; -1 / "" when there is none.
  int64_t Int(const std::string& sql) {
    auto rows = Rows(sql);
    return rows.empty() ? -1 : std::atoll(rows[0][0].c_str());
  }
  std::string Text(const std::string& sql) {
    auto rows = Rows(sql);
    return rows.empty() ? "" : rows[0][0];
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace mixcal::testing

#endif  // MIXCAL_TESTS_FAULTS_AUDIT_H_
