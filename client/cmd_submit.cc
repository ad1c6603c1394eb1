#include "client/commands.h"

#include <algorithm>
#include <random>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <tuple>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/output.h"
#include "base/file.h"
#include "calib/config.h"
#include "spec/sha256.h"
#include "base/json_syntax.h"
#include "google/protobuf/util/json_util.h"

namespace mixcal::client {

namespace {

// "cli-" and 16 random hex digits: unique per invocation.
std::string NewRequestId() {
  std::random_device rd;
  const uint64_t hi = (uint64_t{rd()} << 32) | rd();
  return absl::StrFormat("cli-%016x", hi);
}

std::optional<Usage> ParseMethods(const std::string& text,
                                  v1::SweepSpec* spec) {
  std::map<std::string, v1::MethodSpec*> by_name;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts =
        absl::StrSplit(item, absl::MaxSplits(':', 1));
    absl::StatusOr<calib::MethodKind> kind =
        calib::ParseMethod(parts[0], "--methods");
    if (!kind.ok()) return Usage{std::string(kind.status().message())};
    const std::string name(calib::Name(*kind));
    v1::MethodSpec*& m = by_name[name];
    if (m == nullptr) {
      m = spec->add_methods();
      m->set_name(name);
    }
    if (parts.size() == 2) {
      double v;
      if (!absl::SimpleAtod(parts[1], &v)) {
        return Usage{absl::StrCat("--methods: \"", std::string(item),
                                  "\" is not NAME or NAME:VALUE")};
      }
      m->add_values(v);
    }
  }
  if (spec->methods_size() == 0)
    return Usage{
        "--methods needs at least one method, e.g. baseline,mixup:0.4"};
  return std::nullopt;
}

}  // namespace

int Submit(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty) {
  v1::SweepSpec spec;
  if (!p.positional.empty()) {
    absl::StatusOr<std::string> text = ReadFile(p.positional[0], "sweep spec");
    if (!text.ok()) {
      err << "mixcal: " << text.status().message() << "\n";
      return kUsage;
    }
    // Strict JSON first: Protobuf's parser accepts "[0.2,]" and the like.
    if (absl::Status syntax = CheckJsonSyntax(*text); !syntax.ok()) {
      err << "mixcal: " << p.positional[0] << ": not JSON: "
          << syntax.message() << "\n";
      return kUsage;
    }
    auto st = google::protobuf::util::JsonStringToMessage(*text, &spec);
    if (!st.ok()) {
      err << "mixcal: " << p.positional[0]
          << ": not a sweep spec: " << st.ToString() << "\n";
      return kUsage;
    }
  } else if (!p.Has("name") || !p.Has("methods")) {
    err << "mixcal: submit needs SPEC.json, or --name and --methods (see "
           "mixcal submit --help)\n";
    return kUsage;
  }
  // Flags set the spec's fields: the whole spec without a file, or
  // overrides of the file's values.
  const bool from_file = !p.positional.empty();
  if (p.Has("name")) spec.set_name(p.Get("name"));
  if (p.Has("dataset") || !from_file)
    spec.mutable_data()->set_dataset(p.Get("dataset", "fashion-mnist"));
  if (p.Has("data-dir")) spec.mutable_data()->set_data_dir(p.Get("data-dir"));
  if (p.Has("model") || (!from_file && !p.Has("model-file")))
    spec.set_model(p.Get("model", "lenet"));
  if (p.Has("model-file")) {
    spec.set_model_file(p.Get("model-file"));
    if (!p.Has("model")) spec.clear_model();
  }
  if (p.Has("data-file")) {
    spec.mutable_data()->set_data_file(p.Get("data-file"));
    if (!p.Has("dataset")) spec.mutable_data()->clear_dataset();
  }
  if (p.Has("data-path")) {
    spec.mutable_data()->set_data_path(p.Get("data-path"));
    if (!p.Has("dataset") && !from_file) spec.mutable_data()->clear_dataset();
  }
  // modelFile and dataFile name files here, uploaded now and replaced by
  // their SHA-256 (a hash already is one: the file was uploaded before).
  // A spec's paths are relative to the spec file; a flag's to here.
  for (const auto& [flag, kind, field] :
       {std::tuple<const char*, const char*, std::string*>{
            "model-file", "model", spec.mutable_model_file()},
        {"data-file", "data", spec.mutable_data()->mutable_data_file()}}) {
    if (field->empty() || spec::IsSha256Hex(*field)) continue;
    std::filesystem::path path(*field);
    if (from_file && !p.Has(flag) && path.is_relative()) {
      path = std::filesystem::path(p.positional[0]).parent_path() / path;
    }
    v1::StoredFile stored;
    if (int rc = UploadFile(kind, path.string(), s, err, &stored); rc != kOk)
      return rc;
    err << (stored.existed() ? "already stored: " : "uploaded: ") << kind
        << " " << path.string() << " (" << stored.sha256() << ")\n";
    *field = stored.sha256();
  }
  if (p.Has("schedule")) {
    spec.mutable_training()->set_schedule(p.Get("schedule"));
    // Milestones belong to the step schedule only.
    if (p.Get("schedule") != "step") spec.mutable_training()->clear_milestones();
  }
  if (p.Has("milestones")) {
    // The step schedule's epochs (the default schedule); "default": the
    // schedule's own (epochs/2 and 3*epochs/4).
    const std::string schedule = spec.training().schedule().empty()
                                     ? "step"
                                     : spec.training().schedule();
    if (schedule != "step") {
      err << "mixcal: --milestones applies to the step schedule; this sweep's "
             "training.schedule is "
          << schedule << "\n";
      return kUsage;
    }
    spec.mutable_training()->clear_milestones();
    const std::string m = p.Get("milestones");
    if (m != "default") {
      for (absl::string_view part : absl::StrSplit(m, ',')) {
        uint32_t e = 0;
        if (!absl::SimpleAtoi(part, &e) || e == 0) {
          err << "mixcal: --milestones expects epochs like 5,8 (or default: "
                 "epochs/2 and 3*epochs/4; no decay is --schedule constant), "
                 "got \""
              << m << "\"\n";
          return kUsage;
        }
        spec.mutable_training()->add_milestones(e);
      }
    }
  }
  if (p.Has("methods")) {
    spec.clear_methods();
    if (auto u = ParseMethods(p.Get("methods"), &spec)) {
      err << "mixcal: " << u->message << "\n";
      return kUsage;
    }
  }
  if (p.Has("seeds") || !from_file) {
    int seeds = 1;
    if (!absl::SimpleAtoi(p.Get("seeds", "1"), &seeds) || seeds < 1 ||
        seeds > 1000) {
      err << "mixcal: --seeds must be a count in [1, 1000], got \""
          << p.Get("seeds") << "\"\n";
      return kUsage;
    }
    spec.clear_seeds();
    for (int i = 0; i < seeds; ++i) spec.add_seeds(i);
  }
  struct NumFlag {
    const char* flag;
    bool fraction;  // a real number rather than a count
    std::function<void(double)> set;
  };
  for (const NumFlag& f : std::vector<NumFlag>{
           {"epochs", false,
            [&](double v) {
              spec.mutable_training()->set_epochs(static_cast<uint32_t>(v));
            }},
           {"batch-size", false,
            [&](double v) {
              spec.mutable_training()->set_batch_size(static_cast<uint32_t>(v));
            }},
           {"lr", true, [&](double v) { spec.mutable_training()->set_lr(v); }},
           {"weight-decay", true,
            [&](double v) { spec.mutable_training()->set_weight_decay(v); }},
           {"threads", false,
            [&](double v) {
              spec.mutable_training()->set_threads(static_cast<uint32_t>(v));
            }},
           {"train-limit", false,
            [&](double v) {
              spec.mutable_data()->set_train_limit(static_cast<uint64_t>(v));
            }},
           {"test-limit", false,
            [&](double v) {
              spec.mutable_data()->set_test_limit(static_cast<uint64_t>(v));
            }},
           {"priority", false,
            [&](double v) { spec.set_priority(static_cast<int32_t>(v)); }}}) {
    if (!p.Has(f.flag)) continue;
    double v;
    if (!absl::SimpleAtod(p.Get(f.flag), &v) || v < 0 || v > 1e9 ||
        (!f.fraction && v != std::floor(v))) {
      err << "mixcal: --" << f.flag << " expects a non-negative "
          << (f.fraction ? "number" : "integer") << ", got \""
          << p.Get(f.flag) << "\"\n";
      return kUsage;
    }
    f.set(v);
  }
  if (p.Has("device") || !from_file) spec.set_device(p.Get("device", "any"));
  // Fewer epochs than the file's step milestones: say which field and how
  // to override it, rather than the bare range check.
  if (from_file && p.Has("epochs") && !p.Has("milestones") &&
      spec.training().epochs() > 0) {
    const auto& ms = spec.training().milestones();
    if (!ms.empty() && *std::max_element(ms.begin(), ms.end()) >
                           spec.training().epochs()) {
      err << "mixcal: the file's training.milestones (" << absl::StrJoin(ms, ",")
          << ") lie past --epochs " << spec.training().epochs()
          << ": give --milestones with it (e.g. --milestones "
          << std::max<uint32_t>(1, spec.training().epochs() / 2)
          << ", or default: epochs/2 and 3*epochs/4), or another --schedule "
             "(cosine, constant)\n";
      return kUsage;
    }
  }
  // Fewer epochs than the file's checkpoint interval: checkpoint at the
  // end rather than refuse the override.
  if (from_file && p.Has("epochs") && spec.has_checkpoint_every() &&
      spec.checkpoint_every() > spec.training().epochs()) {
    err << "mixcal: checkpointEvery " << spec.checkpoint_every()
        << " is more than --epochs " << spec.training().epochs()
        << "; checkpointing every " << spec.training().epochs()
        << " epochs instead\n";
    spec.set_checkpoint_every(spec.training().epochs());
  }
  // A file's request id names the file's sweep; with fields overridden it
  // is another sweep, which must not come back as the first one.
  if (from_file && !p.Has("request-id")) {
    for (const char* f :
         {"name", "dataset", "data-dir", "model", "schedule", "methods",
          "seeds", "epochs", "batch-size", "lr", "weight-decay", "threads",
          "train-limit", "test-limit", "priority", "device", "model-file",
          "data-file", "data-path", "milestones"}) {
      if (p.Has(f)) {
        spec.clear_request_id();
        break;
      }
    }
  }
  if (p.Has("request-id")) spec.set_request_id(p.Get("request-id"));
  // Every submission carries a request id (made here when none was given),
  // so that a retry after a dropped connection returns the sweep the first
  // try stored instead of storing a second copy.
  if (spec.request_id().empty()) spec.set_request_id(NewRequestId());
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = spec;
  v1::Sweep sweep;
  grpc::Status st;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
    }
    st = s.Call(&v1::ExperimentService::Stub::SubmitSweep, req, &sweep);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE &&
        st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      break;
    }
  }
  if (!st.ok()) {
    s.Fail(st);
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
        st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      err << "mixcal: the sweep may or may not have been stored; submitting "
             "again with --request-id "
          << spec.request_id() << " is safe: it never stores a second copy\n";
    }
    return kServerError;
  }
  const std::string format = p.Get("format", "text");
  if (format == "json") {
    if (int rc = PrintJson(ToJson(sweep), out, err); rc != kOk) return rc;
  } else {
    out << "sweep " << sweep.id() << " submitted: " << sweep.job_ids_size()
        << " jobs (" << sweep.name() << ")\n";
    if (!p.switches.count("wait")) {
      out << "follow it with: mixcal watch " << sweep.id() << "\n";
    }
  }
  out.flush();
  if (p.switches.count("wait"))
    return Watch(sweep.id(), s, out, err, tty, format);
  return kOk;
}

}  // namespace mixcal::client
