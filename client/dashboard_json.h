#ifndef MIXCAL_CLIENT_DASHBOARD_JSON_H_
#define MIXCAL_CLIENT_DASHBOARD_JSON_H_

// The JSON `mixcal dashboard` serves under /api/ and in its live stream: one
// small writer (JsonObject, JsonList) and the shapes the browser script
// (client/dashboard_assets.cc) reads. These are not the API's messages as
// JSON (client/output.h's ToJson): they carry derived fields (a job's label,
// a sweep's epochs per job) and lower-case state names, so each shape is
// written field by field, always in the same order and format.
//
// Strings are escaped for embedding in a page: '<', '>' and '&' as \u00XX
// too. Numbers that are not finite are null.

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "mixcal/v1/jobs.pb.h"
#include "mixcal/v1/metrics.pb.h"

namespace mixcal::client {

// `s` as a quoted JSON string.
std::string JsonString(absl::string_view s);
// `v` with 9 significant digits ("%.9g"); "null" when not finite.
std::string JsonNumber(double v);

// One JSON object, its fields in the order they are added:
//   JsonObject o;
//   o.Int("id", 3).String("name", "a").Raw("counts", "{}");
//   o.str() == R"({"id":3,"name":"a","counts":{}})"
class JsonObject {
 public:
  JsonObject& String(absl::string_view key, absl::string_view value);
  JsonObject& Number(absl::string_view key, double value);
  JsonObject& Bool(absl::string_view key, bool value);
  // Any integer type, in full (a uint64 seed stays exact).
  template <typename T>
  JsonObject& Int(absl::string_view key, T value) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    return Raw(key, absl::StrCat(value));
  }
  // `json` is already JSON (an object or a list built here).
  JsonObject& Raw(absl::string_view key, absl::string_view json);
  std::string str() const { return body_ + "}"; }

 private:
  std::string body_ = "{";
};

// A JSON list of values already written as JSON, joined by `separator`
// ("," or ",\n": the longer lists put one element on a line).
class JsonList {
 public:
  explicit JsonList(absl::string_view separator = ",")
      : separator_(separator) {}
  JsonList& Add(absl::string_view json);
  bool empty() const { return body_.size() == 1; }
  std::string str() const { return body_ + "]"; }

 private:
  std::string separator_;
  std::string body_ = "[";
};

// {"id":..,"name":..,"state":"active",..,"counts":{"queued":..,..}}
std::string SweepJson(const v1::Sweep& s);
// {"id":..,"sweep_id":..,"method":..,"value":..,"label":"mixup 0.4",..}
std::string JobJson(const v1::Job& j);
// The few numbers a job table shows of one epoch's test row:
// {"job_id":..,"epoch":..,"accuracy":..,"ece":..,"oe":..,"samples_per_sec":..}
std::string LatestJson(const v1::EpochMetrics& m);
// {"time_us":..,"kind":..,"message":..}
std::string EventJson(const v1::Event& e);
// A worker with its heartbeat's age in seconds at `now_us` (null when it
// never sent one) and its state in lower case.
std::string WorkerJson(const v1::WorkerInfo& w, int64_t now_us);
// {"error":"..."}: every failed request's body (without a newline).
std::string ErrorJson(absl::string_view message);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_JSON_H_
