#ifndef MIXCAL_BASE_UTF8_H_
#define MIXCAL_BASE_UTF8_H_

// Strings that are stored or sent back must be valid UTF-8 (Protobuf's
// string fields require it: a client that receives invalid UTF-8 fails to
// parse the whole message). These check input at the edge, cut text at
// character boundaries and keep echoed values short.

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mixcal {

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, no
// code points past U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// InvalidArgument naming `field` when `s` is not valid UTF-8, holds a NUL
// byte, or is longer than max_bytes; OK otherwise.
absl::Status CheckText(absl::string_view field, absl::string_view s,
                       size_t max_bytes);

// `s` with each invalid sequence replaced by U+FFFD, then cut to at most
// max_bytes at a character boundary: always valid UTF-8.
std::string ToValidUtf8(absl::string_view s, size_t max_bytes);

// A value for an error message: valid UTF-8, at most about 64 bytes, with
// "... (N bytes)" when it was longer, so an error never carries a huge or
// broken echo of the input.
std::string Echo(absl::string_view s);

}  // namespace mixcal

#endif  // MIXCAL_BASE_UTF8_H_
