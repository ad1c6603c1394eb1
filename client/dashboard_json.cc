#include "client/dashboard_json.h"

#include <cctype>
#include <cmath>

#include "absl/strings/str_format.h"
#include "client/output.h"

namespace mixcal::client {
namespace {

// A sweep's or job's epochs, with the spec's default when unset.
uint32_t EpochsOrDefault(const v1::TrainingSpec& t) {
  return t.epochs() > 0 ? t.epochs() : 10;
}

std::string CountsJson(const v1::JobCounts& c) {
  return JsonObject()
      .Int("queued", c.queued())
      .Int("running", c.running())
      .Int("succeeded", c.succeeded())
      .Int("failed", c.failed())
      .Int("cancelled", c.cancelled())
      .Int("epochs_done", c.epochs_done())
      .str();
}

}  // namespace

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // '<', '>' and '&' too: the text may end up inside a page.
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

JsonObject& JsonObject::String(absl::string_view key, absl::string_view value) {
  return Raw(key, JsonString(value));
}

JsonObject& JsonObject::Number(absl::string_view key, double value) {
  return Raw(key, JsonNumber(value));
}

JsonObject& JsonObject::Bool(absl::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}

JsonObject& JsonObject::Raw(absl::string_view key, absl::string_view json) {
  absl::StrAppend(&body_, body_.size() > 1 ? "," : "", JsonString(key), ":",
                  json);
  return *this;
}

JsonList& JsonList::Add(absl::string_view json) {
  absl::StrAppend(&body_, empty() ? "" : separator_, json);
  return *this;
}

std::string SweepJson(const v1::Sweep& s) {
  return JsonObject()
      .Int("id", s.id())
      .String("name", s.name())
      .String("state", SweepStateName(s.state()))
      .Int("created_at_us", s.created_at_us())
      .Int("jobs", s.job_ids_size())
      .Int("epochs_per_job", EpochsOrDefault(s.spec().training()))
      .String("dataset", s.spec().data().dataset())
      .String("model", s.spec().model())
      .String("submitter", s.submitter())
      .Raw("counts", CountsJson(s.counts()))
      .str();
}

std::string JobJson(const v1::Job& j) {
  return JsonObject()
      .Int("id", j.id())
      .Int("sweep_id", j.sweep_id())
      .String("method", j.method())
      .Number("value", j.value())
      .String("label", MethodLabel(j.method(), j.value()))
      .Int("seed", j.seed())
      .String("state", StateName(j.state()))
      .Int("epoch", j.last_epoch())
      .Int("epochs", EpochsOrDefault(j.config().training()))
      .Int("attempt", j.attempt())
      .Int("max_attempts", j.max_attempts())
      .Int("worker", j.worker_id())
      .String("error", j.error())
      .Int("started_at_us", j.started_at_us())
      .Int("finished_at_us", j.finished_at_us())
      .str();
}

std::string LatestJson(const v1::EpochMetrics& m) {
  return JsonObject()
      .Int("job_id", m.job_id())
      .Int("epoch", m.epoch())
      .Number("accuracy", m.accuracy())
      .Number("ece", m.ece())
      .Number("oe", m.oe())
      .Number("samples_per_sec", m.samples_per_sec())
      .str();
}

std::string EventJson(const v1::Event& e) {
  return JsonObject()
      .Int("time_us", e.time_us())
      .Int("job_id", e.job_id())
      .String("kind", e.kind())
      .String("message", e.message())
      .str();
}

std::string WorkerJson(const v1::WorkerInfo& w, int64_t now_us) {
  const std::string state = WorkerStateWords(w, now_us);
  return JsonObject()
      .Int("id", w.id())
      .String("name", w.name())
      .String("host", w.host())
      .String("device", w.device())
      .String("device_name", w.device_name())
      .String("state", state)
      .String("reason", w.state_reason())
      .String("placement", w.placement())
      .Int("current_job", w.current_job_id())
      .Number("heartbeat_ago_s", w.last_heartbeat_us() > 0
                                     ? (now_us - w.last_heartbeat_us()) / 1e6
                                     : NAN)
      .str();
}

std::string ErrorJson(absl::string_view message) {
  return JsonObject().String("error", message).str();
}

}  // namespace mixcal::client
