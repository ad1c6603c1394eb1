#ifndef MIXCAL_TESTS_SCRATCH_DIR_H_
#define MIXCAL_TESTS_SCRATCH_DIR_H_

// A test's own empty directory: <tmp>/mixcal_<prefix>_<pid>_<test name>,
// whatever an earlier run left there removed first.

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace mixcal::testing {

inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("mixcal_" + prefix + "_" + std::to_string(::getpid()) + "_" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace mixcal::testing

#endif  // MIXCAL_TESTS_SCRATCH_DIR_H_
