#include "client/output.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "google/protobuf/util/json_util.h"

namespace mixcal::client {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string s;
  // Protobuf 3.21's own Status type, with absl's codes.
  const google::protobuf::util::Status st =
      google::protobuf::util::MessageToJsonString(m, &s, o);
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.code()),
                        absl::StrCat("cannot write ", m.GetTypeName(),
                                     " as JSON: ", st.message().ToString()));
  }
  return s;
}

int PrintJson(const absl::StatusOr<std::string>& json, std::ostream& out,
              std::ostream& err) {
  if (!json.ok()) {
    err << "mixcal: " << json.status().message() << "\n";
    return kServerError;
  }
  out << *json << "\n";
  return kOk;
}

// A cell as a terminal may show it: control characters (ESC, BEL, NUL,
// newlines) that a worker's error text or a name may carry are written as
// \xNN, so no stored text can move the cursor or clear the screen.
std::string Printable(const std::string& cell) {
  std::string out;
  out.reserve(cell.size());
  for (char c : cell) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out += c;
    }
  }
  return out;
}

void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& raw_rows) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(raw_rows.size());
  for (const auto& r : raw_rows) {
    std::vector<std::string>& row = rows.emplace_back();
    for (const std::string& cell : r) row.push_back(Printable(cell));
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], r[c].size());
  auto numeric = [](const std::string& s) {
    return !s.empty() &&
           (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-') &&
           s.find_first_not_of("0123456789.-+e ±%") == std::string::npos;
  };
  auto line = [&](const std::vector<std::string>& r, bool head) {
    std::string s;
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < r.size() ? r[c] : "";
      const size_t pad =
          width[c] -
          std::min(width[c],
                   cell.size() - (cell.find("±") != std::string::npos ? 1 : 0));
      if (!head && numeric(cell))
        s += std::string(pad, ' ') + cell;
      else
        s += cell + std::string(pad, ' ');
      if (c + 1 < width.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(header, true);
  for (const auto& r : rows) line(r, false);
}

std::string Num(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  return absl::StrFormat("%.*f", digits, v);
}

std::string SignedNum(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  return absl::StrFormat("%+.*f", digits, v);
}

std::string StateName(v1::JobState s) {
  std::string n = v1::JobState_Name(s);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return n;
}
std::string SweepStateName(v1::SweepState s) {
  std::string n = v1::SweepState_Name(s);
  if (n.rfind("SWEEP_", 0) == 0) n = n.substr(6);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  return n;
}

std::string WorkerStateWords(const v1::WorkerInfo& w, int64_t now_us) {
  switch (w.state()) {
    case v1::WORKER_ACTIVE:
      if (now_us - w.last_heartbeat_us() > 60'000'000) return "gone (silent)";
      return w.current_job_id() ? "busy" : "idle";
    case v1::WORKER_LOST:
      return "gone (lost)";
    case v1::WORKER_OUT_OF_ROTATION:
      return "gone (out of rotation)";
    case v1::WORKER_STOPPED:
      return "gone (stopped)";
    default:
      return "?";
  }
}

std::string Ago(int64_t us) {
  if (us <= 0) return "-";
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t s = std::max<int64_t>(0, (now - us) / 1000000);
  if (s < 120) return absl::StrCat(s, "s ago");
  if (s < 7200) return absl::StrCat(s / 60, "m ago");
  return absl::StrCat(s / 3600, "h ago");
}

std::string MethodLabel(const std::string& method, double value) {
  if (method == "baseline") return method;
  return absl::StrCat(method, " ", absl::StrFormat("%g", value));
}

bool WriteOutputFile(const std::string& path, const std::string& text,
               const std::string& format, std::ostream& out,
               std::ostream& err) {
  if (absl::Status s = WriteFileAtomically(path, text, "output file");
      !s.ok()) {
    err << "mixcal: " << s.message() << "\n";
    return false;
  }
  if (format == "json") {
    out << "{\"wrote\":\"" << path << "\"}\n";
  } else {
    out << "wrote " << path << "\n";
  }
  return true;
}


}  // namespace mixcal::client
