#include "base/file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace mixcal {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(what, " ", path, ": cannot read (",
                                            std::strerror(errno), ")"));
  }
  std::stringstream s;
  s << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(what, " ", path, ": read failed"));
  }
  return s.str();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& text,
                                 const std::string& what) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* step) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(what, " ", path, ": cannot ", step,
                                            " (", std::strerror(err), ")"));
  };
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return fail("create");
  const bool wrote =
      std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
      std::fflush(f) == 0;
  if (!wrote) {
    const int err = errno;
    std::fclose(f);
    errno = err;
    return fail("write");
  }
  if (std::fclose(f) != 0) return fail("close");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  return absl::OkStatus();
}

std::string CredentialFile(const std::string& dir, const std::string& name) {
  for (const std::string& path :
       {absl::StrCat(dir, "/mixcal_", name), absl::StrCat(dir, "/", name)}) {
    if (access(path.c_str(), F_OK) == 0) return path;
  }
  return "";
}

}  // namespace mixcal
