#ifndef MIXCAL_BASE_JSON_SYNTAX_H_
#define MIXCAL_BASE_JSON_SYNTAX_H_

// Strict JSON syntax (RFC 8259), before Protobuf's parser, which accepts
// more (trailing commas, "[0.2,]"): a spec a researcher mistyped is refused
// with the line and column, not read as something else.
//
//   absl::Status s = CheckJsonSyntax(text);
//   // InvalidArgument "line 3, column 21: a trailing comma before ']'"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mixcal {

absl::Status CheckJsonSyntax(absl::string_view text);

}  // namespace mixcal

#endif  // MIXCAL_BASE_JSON_SYNTAX_H_
