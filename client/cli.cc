#include "client/cli.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/program.h"
#include "client/plot.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"

namespace mixcal::client {
namespace {

constexpr int kOk = 0, kServerError = 1, kUsage = 2;

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// --- arguments ---

struct Parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  std::string Get(const std::string& k,
                  const std::string& fallback = "") const {
    auto it = values.find(k);
    return it == values.end() ? fallback : it->second;
  }
  bool Has(const std::string& k) const {
    return values.count(k) || switches.count(k);
  }
};

struct Usage {
  std::string message;
};

struct Command {
  std::string name;
  std::string synopsis;  // one line
  std::string help;      // the rest of --help
  std::set<std::string> value_flags;
  std::set<std::string> switch_flags;
  size_t min_positional = 0, max_positional = 0;
};

const std::set<std::string>& GlobalValueFlags() {
  static const auto* f =
      new std::set<std::string>{"address", "token", "tls-ca", "format"};
  return *f;
}

// Throws nothing: returns a usage message on error.
std::optional<Usage> Parse(const Command& cmd,
                           const std::vector<std::string>& args, Parsed* p) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      p->positional.push_back(a);
      continue;
    }
    auto [name, given] = SplitFlag(a);
    const bool has_value = given.has_value();
    std::string value = given.value_or("");
    if (cmd.switch_flags.count(name)) {
      if (has_value) return Usage{absl::StrCat("--", name, " takes no value")};
      p->switches.insert(name);
      continue;
    }
    if (!cmd.value_flags.count(name) && !GlobalValueFlags().count(name)) {
      return Usage{absl::StrCat("unknown flag --", name, " for `mixcal ",
                                cmd.name, "` (see mixcal ", cmd.name,
                                " --help)")};
    }
    if (!has_value) {
      if (i + 1 >= args.size())
        return Usage{absl::StrCat("--", name, " needs a value")};
      value = args[++i];
    }
    p->values[name] = value;
  }
  if (p->positional.size() < cmd.min_positional ||
      p->positional.size() > cmd.max_positional) {
    return Usage{absl::StrCat("usage: mixcal ", cmd.synopsis)};
  }
  const std::string format = p->Get("format", "text");
  if (format != "text" && format != "json" && format != "csv") {
    return Usage{absl::StrCat("--format must be one of text|json|csv, got \"",
                              format, "\"")};
  }
  return std::nullopt;
}

std::optional<Usage> PositiveId(const std::string& what, const std::string& s,
                                int64_t* out) {
  if (!absl::SimpleAtoi(s, out) || *out <= 0) {
    return Usage{
        absl::StrCat(what, " must be a positive number, got \"", s, "\"")};
  }
  return std::nullopt;
}

// Parses a positive id, or prints why not.
bool ParseId(const std::string& what, const std::string& text, int64_t* id,
             std::ostream& err) {
  if (auto u = PositiveId(what, text, id)) {
    err << "mixcal: " << u->message << "\n";
    return false;
  }
  return true;
}

// --- output ---

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string s;
  (void)google::protobuf::util::MessageToJsonString(m, &s, o);
  return s;
}

template <typename Range>
std::string JsonArray(const Range& messages) {
  std::vector<std::string> parts;
  for (const auto& m : messages) parts.push_back(ToJson(m));
  return "[" + absl::StrJoin(parts, ",\n ") + "]";
}

// An aligned table; numeric-looking cells are right-aligned.
void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
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

std::string Num(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  return absl::StrFormat("%.*f", digits, v);
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

// --- the connection ---

class Session {
 public:
  Session(const Parsed& p, std::ostream& err) : err_(err) {
    address_ = p.Get("address", Env("MIXCAL_ADDRESS", "127.0.0.1:7707"));
    token_ = p.Get("token", Env("MIXCAL_TOKEN", ""));
    tls_ca_ = p.Get("tls-ca");
  }
  bool Connect() {
    std::shared_ptr<grpc::ChannelCredentials> creds =
        grpc::InsecureChannelCredentials();
    if (!tls_ca_.empty()) {
      std::ifstream in(tls_ca_);
      if (!in) {
        err_ << "mixcal: --tls-ca " << tls_ca_ << ": cannot read\n";
        return false;
      }
      grpc::SslCredentialsOptions o;
      o.pem_root_certs.assign(std::istreambuf_iterator<char>(in), {});
      creds = grpc::SslCredentials(o);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    stub_ = v1::ExperimentService::NewStub(
        grpc::CreateCustomChannel(address_, creds, args));
    return true;
  }
  void Prepare(grpc::ClientContext& ctx, bool deadline = true) {
    if (deadline)
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
  }
  // Prints the error; returns kServerError.
  int Fail(const grpc::Status& s) {
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      err_ << "mixcal: cannot reach the coordinator at " << address_ << " ("
           << s.error_message()
           << "); start it with mixcal-coordinator, or set --address / "
              "MIXCAL_ADDRESS\n";
    } else {
      err_ << "mixcal: " << s.error_message() << "\n";
    }
    return kServerError;
  }
  v1::ExperimentService::Stub& api() { return *stub_; }

 private:
  std::ostream& err_;
  std::string address_, token_, tls_ca_;
  std::unique_ptr<v1::ExperimentService::Stub> stub_;
};

// --- commands ---

using Handler = std::function<int(const Parsed&, Session&, std::ostream&,
                                  std::ostream&, bool)>;

int Summary(int64_t sweep_id, const std::string& at, const std::string& split,
            const std::string& format, Session& s, std::ostream& out,
            std::ostream& err) {
  v1::SummarizeSweepRequest req;
  req.set_sweep_id(sweep_id);
  if (at.empty() || at == "final") {
    req.mutable_at()->set_final(true);
  } else if (at.rfind("best:", 0) == 0) {
    req.mutable_at()->set_best_by(at.substr(5));
  } else if (at.rfind("epoch:", 0) == 0) {
    uint32_t e = 0;
    if (!absl::SimpleAtoi(at.substr(6), &e) || e == 0) {
      err << "mixcal: --at epoch:N needs N >= 1, got \"" << at << "\"\n";
      return kUsage;
    }
    req.mutable_at()->set_epoch(e);
  } else {
    err << "mixcal: --at must be final, best:METRIC or epoch:N, got \"" << at
        << "\"\n";
    return kUsage;
  }
  req.set_split(split);
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::SummarizeSweepResponse resp;
  grpc::Status st = s.api().SummarizeSweep(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (format == "json") {
    out << JsonArray(resp.rows()) << "\n";
    return kOk;
  }
  auto stat = [](const v1::SummaryRow& r,
                 const std::string& name) -> const v1::MetricStat* {
    for (const auto& m : r.stats())
      if (m.metric() == name) return &m;
    return nullptr;
  };
  auto cell = [&](const v1::SummaryRow* r,
                  const std::string& name) -> std::string {
    const v1::MetricStat* m = r ? stat(*r, name) : nullptr;
    if (m == nullptr) return "-";
    return m->count() > 1 ? absl::StrCat(Num(m->mean()), " ± ", Num(m->std()))
                          : Num(m->mean());
  };
  if (format == "csv") {
    out << "method,value,split,seeds,metric,mean,std,count\n";
    for (const auto& r : resp.rows())
      for (const auto& m : r.stats())
        out << r.method() << "," << r.value() << "," << r.split() << ","
            << r.seeds() << "," << m.metric() << "," << m.mean() << ","
            << m.std() << "," << m.count() << "\n";
    return kOk;
  }
  // The papers' table: raw test metrics, then after temperature scaling.
  std::map<std::pair<std::string, double>,
           std::map<std::string, const v1::SummaryRow*>>
      groups;
  std::vector<std::pair<std::string, double>> order;
  for (const auto& r : resp.rows()) {
    auto key = std::make_pair(r.method(), r.value());
    if (!groups.count(key)) order.push_back(key);
    groups[key][r.split()] = &r;
  }
  std::vector<std::vector<std::string>> rows;
  const std::string main_split = split.empty() ? "test" : split;
  for (const auto& key : order) {
    const v1::SummaryRow* t =
        groups[key].count(main_split) ? groups[key][main_split] : nullptr;
    const v1::SummaryRow* ts =
        groups[key].count("test_ts") ? groups[key]["test_ts"] : nullptr;
    rows.push_back({MethodLabel(key.first, key.second),
                    t ? absl::StrCat(t->seeds()) : "-", cell(t, "accuracy"),
                    cell(t, "ece"), cell(t, "oe"), cell(t, "mce"),
                    cell(t, "nll"), cell(t, "brier"), cell(ts, "ece"),
                    cell(ts, "nll"), cell(ts, "temperature")});
  }
  if (rows.empty()) {
    out << "sweep " << sweep_id << ": no epochs stored on split " << main_split
        << "\n";
    return kOk;
  }
  out << "sweep " << sweep_id << ", split " << main_split << ", at "
      << (at.empty() ? "final" : at)
      << " (mean ± std over seeds; TS: after temperature scaling)\n";
  PrintTable(out,
             {"method", "seeds", "accuracy", "ECE", "OE", "MCE", "NLL", "Brier",
              "ECE (TS)", "NLL (TS)", "T"},
             rows);
  return kOk;
}

int Watch(int64_t sweep_id, Session& s, std::ostream& out, std::ostream& err,
          bool tty, const std::string& format) {
  v1::WatchSweepRequest req;
  req.set_sweep_id(sweep_id);
  std::map<int64_t, v1::Job> jobs;
  std::map<int64_t, v1::EpochMetrics> latest;  // test split
  v1::Sweep sweep;
  v1::SweepUpdate u;
  int drawn = 0;
  std::vector<std::string>
      pending;  // lines that stay (job endings; every epoch off a terminal)
  auto counts = [&] {
    std::map<v1::JobState, int> c;
    for (const auto& [id, j] : jobs) c[j.state()]++;
    return absl::StrFormat(
        "%d queued, %d running, %d done, %d failed, %d cancelled",
        c[v1::QUEUED], c[v1::RUNNING], c[v1::SUCCEEDED], c[v1::FAILED],
        c[v1::CANCELLED]);
  };
  auto redraw = [&] {
    if (!tty) {
      for (const std::string& l : pending) out << l << "\n";
      pending.clear();
      out.flush();
      return;
    }
    for (int i = 0; i < drawn; ++i) out << "\x1b[1A\x1b[2K";
    drawn = 0;
    for (const std::string& l : pending) out << l << "\n";
    pending.clear();
    for (const auto& [id, j] : jobs) {
      if (j.state() != v1::RUNNING) continue;
      const int epochs = static_cast<int>(
          j.config().training().epochs() ? j.config().training().epochs() : 10);
      auto it = latest.find(id);
      const int done =
          it == latest.end() ? 0 : static_cast<int>(it->second.epoch());
      const int width = 20,
                filled =
                    epochs > 0 ? std::min(width, done * width / epochs) : 0;
      out << absl::StrFormat(
          "job %-5d %-20s seed %-3d [%s%s] %3d/%-3d %8s/s  ECE %s\n", id,
          MethodLabel(j.method(), j.value()), j.seed(),
          std::string(filled, '#'), std::string(width - filled, '.'), done,
          epochs,
          it == latest.end() ? "-" : Num(it->second.samples_per_sec(), 0),
          it == latest.end() ? "-" : Num(it->second.ece()));
      ++drawn;
    }
    out << counts() << "\n";
    ++drawn;
    out.flush();
  };
  // The stream starts with a snapshot, so after a lost connection (the
  // coordinator restarting, say) watching again resumes where it was.
  grpc::Status st;
  bool connected_once = false, told = false;
  while (true) {
    grpc::ClientContext ctx;
    s.Prepare(ctx, /*deadline=*/false);
    auto reader = s.api().WatchSweep(&ctx, req);
    while (reader->Read(&u)) {
      if (format == "json") {
        out << ToJson(u) << "\n";
        out.flush();
        continue;
      }
      if (u.has_job()) {
        const v1::Job& j = u.job();
        const bool changed =
            !jobs.count(j.id()) || jobs[j.id()].state() != j.state();
        jobs[j.id()] = j;
        const bool ended = j.state() == v1::SUCCEEDED ||
                           j.state() == v1::FAILED ||
                           j.state() == v1::CANCELLED;
        if (changed && (ended || (!tty && j.state() == v1::RUNNING))) {
          pending.push_back(absl::StrCat(
              "job ", j.id(), " ", MethodLabel(j.method(), j.value()), " seed ",
              j.seed(), ": ", StateName(j.state()),
              j.error().empty() ? "" : ": " + j.error()));
        }
      } else if (u.has_metrics() && u.metrics().split() == "test") {
        const v1::EpochMetrics& m = u.metrics();
        latest[m.job_id()] = m;
        if (!tty) {
          pending.push_back(absl::StrCat(
              "job ", m.job_id(), " ", MethodLabel(m.method(), m.value()),
              " seed ", m.seed(), ": epoch ", m.epoch(), " acc ",
              Num(m.accuracy()), " ECE ", Num(m.ece()), " OE ", Num(m.oe()),
              " (", Num(m.samples_per_sec(), 0), " samples/s)"));
        }
      } else if (u.has_sweep()) {
        sweep = u.sweep();
      }
      redraw();
    }
    st = reader->Finish();
    if (st.ok()) break;
    const bool lost = st.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (!lost || (!connected_once && jobs.empty())) break;
    connected_once = true;
    if (!told) {
      err << "mixcal: lost the coordinator (" << st.error_message()
          << "); reconnecting\n";
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (!st.ok()) return s.Fail(st);
  if (format == "json") return kOk;
  if (!tty) out << counts() << "\n";
  out << "sweep " << sweep_id << " " << SweepStateName(sweep.state()) << "\n\n";
  int rc = Summary(sweep_id, "final", "", "text", s, out, err);
  if (rc != kOk) return rc;
  return sweep.state() == v1::SWEEP_SUCCEEDED ? kOk : kServerError;
}

// "baseline,mixup:0.2,mixup:0.4,ls:0.1" -> methods with their values.
std::optional<Usage> ParseMethods(const std::string& text,
                                  v1::SweepSpec* spec) {
  std::map<std::string, v1::MethodSpec*> by_name;
  static const std::map<std::string, std::string> kAliases = {
      {"ls", "label_smoothing"},
      {"label-smoothing", "label_smoothing"},
      {"feature-mixup", "feature_mixup"},
      {"fmixup", "feature_mixup"}};
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<std::string> parts =
        absl::StrSplit(item, absl::MaxSplits(':', 1));
    std::string name = parts[0];
    if (auto a = kAliases.find(name); a != kAliases.end()) name = a->second;
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

int Submit(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool tty) {
  v1::SweepSpec spec;
  if (!p.positional.empty()) {
    std::ifstream in(p.positional[0]);
    if (!in) {
      err << "mixcal: " << p.positional[0] << ": cannot read\n";
      return kUsage;
    }
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto st = google::protobuf::util::JsonStringToMessage(text, &spec);
    if (!st.ok()) {
      err << "mixcal: " << p.positional[0]
          << ": not a sweep spec: " << st.ToString() << "\n";
      return kUsage;
    }
  } else {
    if (!p.Has("name") || !p.Has("methods")) {
      err << "mixcal: submit needs SPEC.json, or --name and --methods (see "
             "mixcal submit --help)\n";
      return kUsage;
    }
    spec.set_name(p.Get("name"));
    spec.mutable_data()->set_dataset(p.Get("dataset", "fashion-mnist"));
    spec.mutable_data()->set_data_dir(p.Get("data-dir"));
    spec.set_model(p.Get("model", "lenet"));
    if (auto u = ParseMethods(p.Get("methods"), &spec)) {
      err << "mixcal: " << u->message << "\n";
      return kUsage;
    }
    int seeds = 1;
    if (!absl::SimpleAtoi(p.Get("seeds", "1"), &seeds) || seeds < 1 ||
        seeds > 1000) {
      err << "mixcal: --seeds must be a count in [1, 1000], got \""
          << p.Get("seeds") << "\"\n";
      return kUsage;
    }
    for (int i = 0; i < seeds; ++i) spec.add_seeds(i);
    struct NumFlag {
      const char* flag;
      std::function<void(double)> set;
    };
    for (const NumFlag& f : std::vector<NumFlag>{
             {"epochs",
              [&](double v) {
                spec.mutable_training()->set_epochs(static_cast<uint32_t>(v));
              }},
             {"batch-size",
              [&](double v) {
                spec.mutable_training()->set_batch_size(
                    static_cast<uint32_t>(v));
              }},
             {"lr", [&](double v) { spec.mutable_training()->set_lr(v); }},
             {"threads",
              [&](double v) {
                spec.mutable_training()->set_threads(static_cast<uint32_t>(v));
              }},
             {"train-limit",
              [&](double v) {
                spec.mutable_data()->set_train_limit(static_cast<uint64_t>(v));
              }},
             {"priority",
              [&](double v) { spec.set_priority(static_cast<int32_t>(v)); }}}) {
      if (!p.Has(f.flag)) continue;
      double v;
      if (!absl::SimpleAtod(p.Get(f.flag), &v) || v < 0 || v > 1e9 ||
          (std::string(f.flag) != "lr" && v != std::floor(v))) {
        err << "mixcal: --" << f.flag << " expects a non-negative "
            << (std::string(f.flag) == "lr" ? "number" : "integer")
            << ", got \"" << p.Get(f.flag) << "\"\n";
        return kUsage;
      }
      f.set(v);
    }
    spec.set_device(p.Get("device", "any"));
  }
  if (p.Has("request-id")) spec.set_request_id(p.Get("request-id"));
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::SubmitSweepRequest req;
  *req.mutable_spec() = spec;
  v1::Sweep sweep;
  grpc::Status st = s.api().SubmitSweep(&ctx, req, &sweep);
  if (!st.ok()) return s.Fail(st);
  const std::string format = p.Get("format", "text");
  if (format == "json") {
    out << ToJson(sweep) << "\n";
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

int Sweeps(const Parsed& p, Session& s, std::ostream& out, std::ostream&,
           bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListSweepsRequest req;
  req.set_active_only(p.switches.count("active"));
  v1::ListSweepsResponse resp;
  grpc::Status st = s.api().ListSweeps(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") {
    out << JsonArray(resp.sweeps()) << "\n";
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.sweeps()) {
    const auto& c = w.counts();
    rows.push_back({absl::StrCat(w.id()), w.name(), SweepStateName(w.state()),
                    absl::StrCat(w.job_ids_size()), absl::StrCat(c.queued()),
                    absl::StrCat(c.running()), absl::StrCat(c.succeeded()),
                    absl::StrCat(c.failed()), absl::StrCat(c.cancelled()),
                    Ago(w.created_at_us())});
  }
  PrintTable(out,
             {"id", "name", "state", "jobs", "queued", "running", "done",
              "failed", "cancelled", "created"},
             rows);
  return kOk;
}

int Jobs(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  v1::ListJobsRequest req;
  if (!p.positional.empty()) {
    int64_t id;
    if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
    req.set_sweep_id(id);
  }
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListJobsResponse resp;
  grpc::Status st = s.api().ListJobs(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") {
    out << JsonArray(resp.jobs()) << "\n";
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& j : resp.jobs()) {
    rows.push_back(
        {absl::StrCat(j.id()), absl::StrCat(j.sweep_id()), j.method(),
         j.method() == "baseline" ? "-" : absl::StrFormat("%g", j.value()),
         absl::StrCat(j.seed()), StateName(j.state()),
         absl::StrCat(j.last_epoch()), absl::StrCat(j.attempt()),
         j.worker_id() ? absl::StrCat(j.worker_id()) : "-",
         j.error().substr(0, 60)});
  }
  PrintTable(out,
             {"id", "sweep", "method", "value", "seed", "state", "epoch",
              "attempt", "worker", "error"},
             rows);
  return kOk;
}

int Workers(const Parsed& p, Session& s, std::ostream& out, std::ostream&,
            bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListWorkersResponse resp;
  grpc::Status st = s.api().ListWorkers(&ctx, v1::ListWorkersRequest(), &resp);
  if (!st.ok()) return s.Fail(st);
  if (p.Get("format") == "json") {
    out << JsonArray(resp.workers()) << "\n";
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.workers()) {
    std::string state = v1::WorkerState_Name(w.state());
    state = state == "WORKER_ACTIVE" ? "active"
            : state == "WORKER_LOST" ? "lost"
                                     : "?";
    rows.push_back(
        {absl::StrCat(w.id()), w.name().empty() ? "-" : w.name(), w.host(),
         w.device(), state,
         w.current_job_id() ? absl::StrCat(w.current_job_id()) : "idle",
         Ago(w.last_heartbeat_us())});
  }
  PrintTable(out, {"id", "name", "host", "device", "state", "job", "heartbeat"},
             rows);
  return kOk;
}

int Cancel(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
           bool) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  int64_t id;
  if (p.Has("job")) {
    if (!p.positional.empty()) {
      err << "mixcal: give a SWEEP or --job JOB, not both\n";
      return kUsage;
    }
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    v1::CancelJobRequest req;
    req.set_job_id(id);
    v1::Job job;
    grpc::Status st = s.api().CancelJob(&ctx, req, &job);
    if (!st.ok()) return s.Fail(st);
    out << (p.Get("format") == "json"
                ? ToJson(job)
                : absl::StrCat("job ", job.id(), " cancelled"))
        << "\n";
    return kOk;
  }
  if (p.positional.empty()) {
    err << "usage: mixcal cancel SWEEP | --job JOB\n";
    return kUsage;
  }
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  v1::CancelSweepRequest req;
  req.set_sweep_id(id);
  v1::Sweep sweep;
  grpc::Status st = s.api().CancelSweep(&ctx, req, &sweep);
  if (!st.ok()) return s.Fail(st);
  out << (p.Get("format") == "json"
              ? ToJson(sweep)
              : absl::StrCat("sweep ", sweep.id(), " ",
                             SweepStateName(sweep.state()), ": ",
                             sweep.counts().cancelled(), " jobs cancelled"))
      << "\n";
  return kOk;
}

int Retry(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
          bool) {
  int64_t id;
  if (!ParseId("JOB", p.positional[0], &id, err)) return kUsage;
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::RetryJobRequest req;
  req.set_job_id(id);
  v1::Job job;
  grpc::Status st = s.api().RetryJob(&ctx, req, &job);
  if (!st.ok()) return s.Fail(st);
  out << (p.Get("format") == "json"
              ? ToJson(job)
              : absl::StrCat("job ", job.id(), " queued again"))
      << "\n";
  return kOk;
}

int WatchCmd(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
             bool tty) {
  int64_t id;
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  return Watch(id, s, out, err, tty, p.Get("format", "text"));
}

int SummaryCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool) {
  int64_t id;
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  return Summary(id, p.Get("at", "final"), p.Get("split"),
                 p.Get("format", "text"), s, out, err);
}

int MetricsCmd(const Parsed& p, Session& s, std::ostream& out,
               std::ostream& err, bool) {
  v1::QueryMetricsRequest req;
  v1::MetricsFilter* f = req.mutable_filter();
  int64_t id;
  if (p.Has("job")) {
    if (!ParseId("--job", p.Get("job"), &id, err)) return kUsage;
    f->add_job_ids(id);
  } else if (!p.positional.empty()) {
    if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
    f->set_sweep_id(id);
  } else {
    err << "usage: mixcal metrics SWEEP | --job JOB [--split S] [--format "
           "csv|json]\n";
    return kUsage;
  }
  f->set_split(p.Get("split"));
  f->set_include_bins(p.switches.count("bins"));
  f->set_page_size(10000);
  const std::string format =
      p.Get("format", "text") == "text" ? "csv" : p.Get("format");
  if (format == "csv") {
    out << "job_id,method,value,seed,epoch,split,count,accuracy,nll,brier,ece,"
           "mce,oe,adaptive_ece,"
           "mean_confidence,mean_entropy,auroc,temperature,train_loss,train_"
           "accuracy,lr,samples_per_sec,"
           "wall_seconds\n";
  } else {
    out << "[";
  }
  bool first = true;
  do {
    grpc::ClientContext ctx;
    s.Prepare(ctx);
    v1::QueryMetricsResponse resp;
    grpc::Status st = s.api().QueryMetrics(&ctx, req, &resp);
    if (!st.ok()) return s.Fail(st);
    for (const auto& m : resp.rows()) {
      if (format == "csv") {
        auto g = [](double v) { return absl::StrFormat("%.9g", v); };
        out << m.job_id() << "," << m.method() << "," << g(m.value()) << ","
            << m.seed() << "," << m.epoch() << "," << m.split() << ","
            << m.count() << "," << g(m.accuracy()) << "," << g(m.nll()) << ","
            << g(m.brier()) << "," << g(m.ece()) << "," << g(m.mce()) << ","
            << g(m.oe()) << "," << g(m.adaptive_ece()) << ","
            << g(m.mean_confidence()) << "," << g(m.mean_entropy()) << ","
            << (m.has_auroc() ? g(m.auroc()) : "") << ","
            << (m.has_temperature() ? g(m.temperature()) : "") << ","
            << g(m.train_loss()) << "," << g(m.train_accuracy()) << ","
            << g(m.lr()) << "," << g(m.samples_per_sec()) << ","
            << g(m.wall_seconds()) << "\n";
      } else {
        out << (first ? "" : ",\n ") << ToJson(m);
      }
      first = false;
    }
    f->set_page_token(resp.next_page_token());
  } while (!f->page_token().empty());
  if (format == "json") out << "]\n";
  return kOk;
}

// --- plots ---

std::optional<double> MetricOf(const v1::EpochMetrics& m,
                               const std::string& name) {
  if (name == "accuracy") return m.accuracy();
  if (name == "nll") return m.nll();
  if (name == "brier") return m.brier();
  if (name == "ece") return m.ece();
  if (name == "mce") return m.mce();
  if (name == "oe") return m.oe();
  if (name == "adaptive_ece") return m.adaptive_ece();
  if (name == "mean_confidence") return m.mean_confidence();
  if (name == "mean_entropy") return m.mean_entropy();
  if (name == "train_loss") return m.train_loss();
  if (name == "train_accuracy") return m.train_accuracy();
  if (name == "lr") return m.lr();
  if (name == "samples_per_sec") return m.samples_per_sec();
  if (name == "temperature" && m.has_temperature()) return m.temperature();
  if (name == "auroc" && m.has_auroc()) return m.auroc();
  return std::nullopt;
}

const char* kPlotMetrics =
    "accuracy|nll|brier|ece|mce|oe|adaptive_ece|mean_confidence|mean_entropy|"
    "train_loss|train_accuracy|"
    "temperature|auroc";

bool WriteFile(const std::string& path, const std::string& text,
               const std::string& format, std::ostream& out,
               std::ostream& err) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) {
    err << "mixcal: cannot write " << path << "\n";
    return false;
  }
  if (format == "json") {
    out << "{\"wrote\":\"" << path << "\"}\n";
  } else {
    out << "wrote " << path << "\n";
  }
  return true;
}

int Plot(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
         bool) {
  const std::string kind = p.positional[0];
  int64_t id;
  if (!ParseId(kind == "reliability" ? "JOB" : "SWEEP", p.positional[1], &id,
               err))
    return kUsage;
  const std::string split = p.Get("split", "test");
  const std::string metric = p.Get("metric", "ece");
  if (kind != "reliability" &&
      std::string(kPlotMetrics).find(metric) == std::string::npos) {
    err << "mixcal: --metric must be one of " << kPlotMetrics << ", got \""
        << metric << "\"\n";
    return kUsage;
  }
  if (kind == "reliability") {
    uint32_t epoch = 0;
    if (p.Has("epoch") &&
        (!absl::SimpleAtoi(p.Get("epoch"), &epoch) || epoch == 0)) {
      err << "mixcal: --epoch must be a positive number, got \""
          << p.Get("epoch") << "\"\n";
      return kUsage;
    }
    grpc::ClientContext ctx;
    s.Prepare(ctx);
    v1::GetReliabilityRequest req;
    req.set_job_id(id);
    req.set_epoch(epoch);
    req.set_split(split);
    v1::GetReliabilityResponse r;
    grpc::Status st = s.api().GetReliability(&ctx, req, &r);
    if (!st.ok()) return s.Fail(st);
    std::vector<Bin> bins;
    for (const auto& b : r.bins())
      bins.push_back({b.count(), b.confidence_sum(), b.correct()});
    const std::string path =
        p.Get("out", absl::StrCat("reliability-job", id, "-epoch", r.epoch(),
                                  "-", split, ".svg"));
    return WriteFile(path,
                     ReliabilityPlot(absl::StrCat("job ", id, ", epoch ",
                                                  r.epoch(), ", ", split),
                                     bins, r.ece(), r.mce(), r.oe()),
                     p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  if (kind == "curves") {
    v1::QueryMetricsRequest req;
    req.mutable_filter()->set_sweep_id(id);
    req.mutable_filter()->set_split(split);
    req.mutable_filter()->set_page_size(10000);
    // (method, value) -> epoch -> values over seeds
    std::map<std::pair<std::string, double>,
             std::map<uint32_t, std::vector<double>>>
        groups;
    do {
      grpc::ClientContext ctx;
      s.Prepare(ctx);
      v1::QueryMetricsResponse resp;
      grpc::Status st = s.api().QueryMetrics(&ctx, req, &resp);
      if (!st.ok()) return s.Fail(st);
      for (const auto& m : resp.rows())
        if (auto v = MetricOf(m, metric))
          groups[{m.method(), m.value()}][m.epoch()].push_back(*v);
      req.mutable_filter()->set_page_token(resp.next_page_token());
    } while (!req.filter().page_token().empty());
    if (groups.empty()) {
      err << "mixcal: sweep " << id << " has no " << metric << " on split "
          << split << " yet\n";
      return kServerError;
    }
    std::vector<Series> series;
    for (const auto& [key, epochs] : groups) {
      Series sr;
      sr.label = MethodLabel(key.first, key.second);
      for (const auto& [epoch, values] : epochs) {
        double mean = 0, ss = 0;
        for (double v : values) mean += v;
        mean /= values.size();
        for (double v : values) ss += (v - mean) * (v - mean);
        const double sd =
            values.size() > 1 ? std::sqrt(ss / (values.size() - 1)) : 0;
        sr.x.push_back(epoch);
        sr.y.push_back(mean);
        sr.lo.push_back(mean - sd);
        sr.hi.push_back(mean + sd);
      }
      series.push_back(std::move(sr));
    }
    const std::string path =
        p.Get("out", absl::StrCat("curves-sweep", id, "-", metric, ".svg"));
    return WriteFile(path,
                     LinePlot(absl::StrCat("sweep ", id, ": ", metric, " on ",
                                           split, " (mean ± std over seeds)"),
                              "epoch", metric, series),
                     p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  if (kind == "sweep") {
    const std::string param = p.Get("param");
    std::set<std::string> methods;
    if (param == "alpha")
      methods = {"mixup", "feature_mixup"};
    else if (param == "epsilon")
      methods = {"label_smoothing"};
    else if (param == "beta")
      methods = {"erl"};
    else if (!param.empty()) {
      err << "mixcal: --param must be one of alpha|epsilon|beta, got \""
          << param << "\"\n";
      return kUsage;
    }
    v1::SummarizeSweepRequest req;
    req.set_sweep_id(id);
    req.mutable_at()->set_final(true);
    req.set_split(split);
    grpc::ClientContext ctx;
    s.Prepare(ctx);
    v1::SummarizeSweepResponse resp;
    grpc::Status st = s.api().SummarizeSweep(&ctx, req, &resp);
    if (!st.ok()) return s.Fail(st);
    std::map<std::string, Series> by_method;
    std::optional<double> baseline;
    double xmin = INFINITY, xmax = -INFINITY;
    for (const auto& r : resp.rows()) {
      const v1::MetricStat* stat = nullptr;
      for (const auto& m : r.stats())
        if (m.metric() == metric) stat = &m;
      if (stat == nullptr) continue;
      if (r.method() == "baseline") {
        baseline = stat->mean();
        continue;
      }
      if (!methods.empty() && !methods.count(r.method())) continue;
      Series& sr = by_method[r.method()];
      sr.label = r.method();
      sr.markers = true;
      sr.x.push_back(r.value());
      sr.y.push_back(stat->mean());
      sr.lo.push_back(stat->mean() - stat->std());
      sr.hi.push_back(stat->mean() + stat->std());
      xmin = std::min(xmin, r.value());
      xmax = std::max(xmax, r.value());
    }
    if (by_method.empty()) {
      err << "mixcal: sweep " << id << " has no finished "
          << (param.empty() ? "method with values" : param) << " to plot\n";
      return kServerError;
    }
    std::vector<Series> series;
    for (auto& [name, sr] : by_method) {
      std::vector<size_t> order(sr.x.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return sr.x[a] < sr.x[b]; });
      Series sorted = sr;
      for (size_t i = 0; i < order.size(); ++i) {
        sorted.x[i] = sr.x[order[i]];
        sorted.y[i] = sr.y[order[i]];
        sorted.lo[i] = sr.lo[order[i]];
        sorted.hi[i] = sr.hi[order[i]];
      }
      series.push_back(std::move(sorted));
    }
    if (baseline) {
      Series b;
      b.label = "baseline";
      b.dashed = true;
      b.x = {xmin, xmax};
      b.y = {*baseline, *baseline};
      series.push_back(b);
    }
    const std::string path =
        p.Get("out", absl::StrCat("sweep", id, "-", metric, "-vs-",
                                  param.empty() ? "value" : param, ".svg"));
    return WriteFile(
               path,
               LinePlot(absl::StrCat("sweep ", id, ": final ", metric, " on ",
                                     split, " (mean ± std over seeds)"),
                        param.empty() ? "hyperparameter value" : param, metric,
                        series),
               p.Get("format", "text"), out, err)
               ? kOk
               : kServerError;
  }
  err << "mixcal: plot KIND must be reliability, curves or sweep, got \""
      << kind << "\"\n";
  return kUsage;
}

struct Entry {
  Command cmd;
  Handler run;
};

const std::vector<Entry>& Commands() {
  static const auto* c = new std::vector<Entry>{
      {{"submit",
        "submit SPEC.json | --name N --methods M[,M...] [flags] [--wait]",
        "Submits a sweep: a JSON SweepSpec file (docs/sweep-spec.md), or the "
        "common case from flags:\n"
        "  mixcal submit --name fmnist-calib --dataset fashion-mnist --model "
        "lenet \\\n"
        "      --methods baseline,mixup:0.2,mixup:0.4,ls:0.1,erl:0.1 --seeds 3 "
        "--epochs 10\n"
        "Flags: --dataset (fashion-mnist), --data-dir, --model (lenet), "
        "--methods NAME[:VALUE],...\n"
        "  (baseline, mixup, feature_mixup, label_smoothing or ls, erl), "
        "--seeds N (seeds 0..N-1),\n"
        "  --epochs, --batch-size, --lr, --threads, --train-limit, --device "
        "cpu|cuda|any, --priority,\n"
        "  --request-id (resubmitting with it never makes a copy), --wait "
        "(follow it to the end).",
        {"name", "dataset", "data-dir", "model", "methods", "seeds", "epochs",
         "batch-size", "lr", "threads", "train-limit", "device", "priority",
         "request-id"},
        {"wait"},
        0,
        1},
       Submit},
      {{"sweeps",
        "sweeps [--active]",
        "Lists sweeps, newest first, with their job counts.",
        {},
        {"active"},
        0,
        0},
       Sweeps},
      {{"jobs",
        "jobs [SWEEP]",
        "Lists the jobs of a sweep (or of all sweeps).",
        {},
        {},
        0,
        1},
       Jobs},
      {{"workers",
        "workers",
        "Lists the workers with their device, state and current job.",
        {},
        {},
        0,
        0},
       Workers},
      {{"cancel",
        "cancel SWEEP | --job JOB",
        "Cancels a sweep's queued and running jobs, or one job. Running jobs "
        "stop within a batch.",
        {"job"},
        {},
        0,
        1},
       Cancel},
      {{"retry",
        "retry JOB",
        "Queues a failed or cancelled job again.",
        {},
        {},
        1,
        1},
       Retry},
      {{"watch",
        "watch SWEEP",
        "Follows a sweep live: a bar per running job (epoch, samples/s, latest "
        "ECE) and the job counts;\n"
        "ends with the summary when the sweep ends. --format json prints each "
        "update as JSON.",
        {},
        {},
        1,
        1},
       WatchCmd},
      {{"summary",
        "summary SWEEP [--at final|best:METRIC|epoch:N] [--split S]",
        "The papers' table: per method and value, mean ± std over seeds of "
        "accuracy, ECE, OE, MCE,\n"
        "NLL and Brier, and ECE, NLL and T after temperature scaling. --at "
        "picks each job's final epoch\n"
        "(default), its best epoch by METRIC (e.g. best:ece), or epoch N.",
        {"at", "split"},
        {},
        1,
        1},
       SummaryCmd},
      {{"metrics",
        "metrics SWEEP | --job JOB [--split S] [--bins] [--format csv|json]",
        "Every per-epoch row, as CSV (default) or JSON, ready for pandas.",
        {"job", "split"},
        {"bins"},
        0,
        1},
       MetricsCmd},
      {{"plot",
        "plot reliability JOB | curves SWEEP | sweep SWEEP [--metric M] "
        "[--param P] [--out FILE]",
        "Writes an SVG to open in a browser:\n"
        "  reliability JOB [--epoch N] [--split S]  a reliability diagram: "
        "accuracy per confidence bin\n"
        "      against the diagonal, the gap drawn, and the confidence "
        "histogram (newest epoch by default)\n"
        "  curves SWEEP [--metric ece]              the metric against epoch "
        "per method, mean over seeds\n"
        "      with a ±std band\n"
        "  sweep SWEEP [--metric ece] [--param alpha|epsilon|beta]  the final "
        "metric against the\n"
        "      hyperparameter, with baseline as a dashed line\n"
        "--out names the file (default: a descriptive name in the current "
        "directory).",
        {"metric", "param", "split", "epoch", "out"},
        {},
        2,
        2},
       Plot},
  };
  return *c;
}

std::string MainHelp() {
  std::string s =
      "mixcal: run calibration sweeps on a mixcal coordinator.\n\n"
      "usage: mixcal COMMAND [ARGS] [--address HOST:PORT] [--token T] "
      "[--tls-ca CA.pem] [--format text|json]\n\n"
      "Commands:\n";
  for (const Entry& e : Commands())
    absl::StrAppend(&s, "  mixcal ", e.cmd.synopsis, "\n");
  absl::StrAppend(&s,
                  "\nThe address and token default to $MIXCAL_ADDRESS (else "
                  "127.0.0.1:7707) and $MIXCAL_TOKEN.\n"
                  "`mixcal COMMAND --help` describes a command. Exit codes: 0 "
                  "ok, 1 server error, 2 usage.\n");
  return s;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err, bool tty) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      args[0] == "help") {
    (args.empty() ? err : out) << MainHelp();
    return args.empty() ? kUsage : kOk;
  }
  for (const Entry& e : Commands()) {
    if (e.cmd.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
        std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
      out << "usage: mixcal " << e.cmd.synopsis << "\n\n" << e.cmd.help << "\n";
      return kOk;
    }
    Parsed p;
    if (auto u = Parse(e.cmd, rest, &p)) {
      err << "mixcal: " << u->message << "\n";
      return kUsage;
    }
    Session session(p, err);
    if (!session.Connect()) return kUsage;
    return e.run(p, session, out, err, tty);
  }
  err << "mixcal: unknown command \"" << args[0] << "\" (see mixcal --help)\n";
  return kUsage;
}

}  // namespace mixcal::client
