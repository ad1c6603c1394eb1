#include "client/commands.h"

#include <algorithm>
#include <chrono>
#include <cmath>
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

namespace mixcal::client {

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
        if (int rc = PrintJson(ToJson(u), out, err); rc != kOk) {
          ctx.TryCancel();
          reader->Finish();
          return rc;
        }
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
  int rc = Summary(sweep_id, "final", "", "text", "", false, s, out, err);
  if (rc != kOk) return rc;
  return sweep.state() == v1::SWEEP_SUCCEEDED ? kOk : kServerError;
}

// "baseline,mixup:0.2,mixup:0.4,ls:0.1" -> methods with their values.

int WatchCmd(const Parsed& p, Session& s, std::ostream& out, std::ostream& err,
             bool tty) {
  int64_t id;
  if (!ParseId("SWEEP", p.positional[0], &id, err)) return kUsage;
  return Watch(id, s, out, err, tty, p.Get("format", "text"));
}

}  // namespace mixcal::client
