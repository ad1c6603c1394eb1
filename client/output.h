#ifndef MIXCAL_CLIENT_OUTPUT_H_
#define MIXCAL_CLIENT_OUTPUT_H_

// How `mixcal` prints: aligned tables for people, JSON for scripts, and the
// small formatting rules the commands share.

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "client/args.h"
#include "google/protobuf/message.h"
#include "mixcal/v1/jobs.pb.h"

namespace mixcal::client {

// A message as JSON with the proto field names and every field; protobuf's
// error, naming the message type, when it cannot write one (a well-known
// type out of its range).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& m);

// A JSON array of messages; the first error of ToJson.
template <typename Range>
absl::StatusOr<std::string> JsonArray(const Range& messages) {
  std::vector<std::string> parts;
  for (const auto& m : messages) {
    absl::StatusOr<std::string> json = ToJson(m);
    if (!json.ok()) return json.status();
    parts.push_back(*std::move(json));
  }
  return "[" + absl::StrJoin(parts, ",\n ") + "]";
}

// A command's --format json reply: prints `json` and a newline to `out` and
// returns kOk; when it is an error, prints that to `err` and returns
// kServerError.
int PrintJson(const absl::StatusOr<std::string>& json, std::ostream& out,
              std::ostream& err);

// Text as a terminal may show it: control characters (ESC, BEL, NUL,
// newlines) written as \xNN.
std::string Printable(const std::string& cell);

// An aligned table; numeric-looking cells are right-aligned.
void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// v with `digits` decimals; "-" when not finite.
std::string Num(double v, int digits = 4);
// As Num, with a sign: "+0.0123", "-0.0456".
std::string SignedNum(double v, int digits = 4);
// "queued", "running", ...; "active", "succeeded", ...
std::string StateName(v1::JobState s);
std::string SweepStateName(v1::SweepState s);
// "12s ago", "3m ago", "2h ago"; "-" for 0.
std::string Ago(int64_t us);
// A worker's state in words (the CLI's and the dashboard's): busy, idle,
// or gone (stopped, lost, out of rotation, or silent: still active for the
// coordinator but not heard from for over a minute).
std::string WorkerStateWords(const v1::WorkerInfo& w, int64_t now_us);
// "baseline", "mixup 0.4".
std::string MethodLabel(const std::string& method, double value);

// Writes a file a command produced (a plot) and says so on `out` (text or
// JSON per `format`); on error prints it to `err` naming the file and
// returns false.
bool WriteOutputFile(const std::string& path, const std::string& text,
                     const std::string& format, std::ostream& out,
                     std::ostream& err);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_OUTPUT_H_
