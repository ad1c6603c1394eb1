#include "storage/metric_reader.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "calib/metrics.h"
#include "calib/stats.h"
#include "spec/limits.h"
#include "storage/internal/bins_codec.h"
#include "storage/internal/connection.h"
#include "storage/internal/job_states.h"
#include "storage/internal/records.h"
#include "storage/internal/rows.h"
#include "storage/internal/sqlite.h"

namespace mixcal::storage {
namespace {

// A reported split's validation variant, where best_by chooses its epoch:
// test -> val, test_X -> val_X, a val split itself, anything else -> val.
std::string ValidationVariant(const std::string& split) {
  if (split == "test") return "val";
  if (split.rfind("test_", 0) == 0) return "val" + split.substr(4);
  if (split.rfind("val", 0) == 0) return split;
  return "val";
}
// The same, in SQL over the reported row m.
constexpr char kValidationVariantSql[] =
    "(CASE WHEN m.split = 'test' THEN 'val' "
    "WHEN substr(m.split, 1, 5) = 'test_' THEN 'val' || substr(m.split, 5) "
    "WHEN substr(m.split, 1, 3) = 'val' THEN m.split ELSE 'val' END)";

// The metrics SummarizeSweep reports, in the metric table's order.
const std::vector<const calib::Metric*>& SummaryMetrics() {
  static const auto* list = [] {
    auto* v = new std::vector<const calib::Metric*>;
    for (const calib::Metric& m : calib::Metrics())
      if (m.summarized) v->push_back(&m);
    return v;
  }();
  return *list;
}

// "m.accuracy, m.ece, ..." for SummaryMetrics().
const std::string& SummaryColumnsSql() {
  static const auto* sql = [] {
    auto* s = new std::string;
    for (const calib::Metric* m : SummaryMetrics())
      absl::StrAppend(s, s->empty() ? "" : ", ", "m.", m->name);
    return s;
  }();
  return *sql;
}

// "mixup:0.2", "baseline": how a reference is written.
std::string MethodLabelForError(const std::string& method, double value) {
  if (method == "baseline") return method;
  return absl::StrCat(method, ":", absl::StrFormat("%g", value));
}

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// Resolves SummarizeSweepRequest.vs ("METHOD" or "METHOD:VALUE") against the
// sweep's (method, value) configurations.
absl::StatusOr<std::pair<std::string, double>> ResolveReference(
    const std::string& vs,
    const std::vector<std::pair<std::string, double>>& configs,
    int64_t sweep_id) {
  if (vs.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("vs is ", vs.size(), " characters long; at most 128"));
  }
  std::string name = vs;
  std::optional<double> value;
  if (size_t colon = vs.find(':'); colon != std::string::npos) {
    name = vs.substr(0, colon);
    double v;
    if (!absl::SimpleAtod(vs.substr(colon + 1), &v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vs \"", Echo(vs), "\": the value after ':' is not a number"));
    }
    value = v;
  }
  absl::StatusOr<calib::MethodKind> kind = calib::ParseMethod(name);
  if (kind.ok()) name = std::string(calib::Name(*kind));
  std::set<std::string> listed;
  std::vector<double> values;
  for (const auto& [m, v] : configs) {
    listed.insert(MethodLabelForError(m, v));
    if (m == name && std::find(values.begin(), values.end(), v) == values.end())
      values.push_back(v);
  }
  const std::string have =
      listed.empty() ? "none stored yet" : absl::StrJoin(listed, ", ");
  if (value) {
    for (double v : values)
      if (std::fabs(v - *value) <= 1e-9 * std::max(1.0, std::fabs(v)))
        return std::make_pair(name, v);
  } else if (values.size() == 1) {
    return std::make_pair(name, values[0]);
  } else if (values.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vs \"", Echo(vs), "\": sweep ", sweep_id, " has ", values.size(),
        " values of ", name, "; name one as METHOD:VALUE (have: ", have, ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("vs \"", Echo(vs), "\" is not a configuration of sweep ",
                   sweep_id, " with stored metrics (have: ", have, ")"));
}

}  // namespace

absl::Status MetricReader::ReadBins(v1::EpochMetrics* m) {
  MIXCAL_ASSIGN_OR_RETURN(
      CachedStatement b,
      c_.db()->Cached(
          "SELECT bins FROM epoch_bins WHERE job_id = ? AND epoch = ? "
          "AND split = ?"));
  b->Bind(1, m->job_id()).Bind(2, m->epoch()).Bind(3, m->split());
  MIXCAL_ASSIGN_OR_RETURN(bool row, b->Step());
  if (!row) return absl::OkStatus();
  if (!DecodeBins(b->Text(0), m)) {
    return absl::DataLossError(absl::StrCat(
        "epoch_bins of job ", m->job_id(), " epoch ", m->epoch(), " split ",
        m->split(), " is not a list of [count, confidence_sum, correct]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::EpochMetrics>> MetricReader::QueryMetrics(
    const v1::MetricsFilter& f, std::string* next_page_token) {
  MIXCAL_RETURN_IF_ERROR(
      spec::CheckLimit(spec::kMetricsPageSize, f.page_size()));
  const int page = spec::EffectiveLimit(spec::kMetricsPageSize, f.page_size());
  if (!f.split().empty() && !ValidSplitName(f.split())) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", Echo(f.split()), "\" is not a split name"));
  }
  int64_t after_job = 0, after_epoch = 0;
  std::string after_split;
  if (!f.page_token().empty()) {
    std::vector<std::string> parts = absl::StrSplit(f.page_token(), ':');
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &after_job) ||
        !absl::SimpleAtoi(parts[1], &after_epoch)) {
      return absl::InvalidArgumentError(
          "page_token is not one this store gave out");
    }
    after_split = parts[2];
  }
  std::string sql = absl::StrCat(
      "SELECT ", MetricColumns(),
      " FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id WHERE 1 = 1");
  // Numbers are formatted in; strings are bound.
  if (f.sweep_id() > 0)
    absl::StrAppend(&sql, " AND j.sweep_id = ", f.sweep_id());
  if (f.job_ids_size() > 0) {
    std::vector<int64_t> ids(f.job_ids().begin(), f.job_ids().end());
    absl::StrAppend(&sql, " AND m.job_id IN (", absl::StrJoin(ids, ","), ")");
  }
  if (!f.method().empty()) absl::StrAppend(&sql, " AND j.method = ?1");
  if (f.has_value_min()) absl::StrAppend(&sql, " AND j.value >= ?2");
  if (f.has_value_max()) absl::StrAppend(&sql, " AND j.value <= ?3");
  if (f.seeds_size() > 0) {
    std::vector<uint64_t> seeds(f.seeds().begin(), f.seeds().end());
    absl::StrAppend(&sql, " AND j.seed IN (", absl::StrJoin(seeds, ","), ")");
  }
  if (!f.split().empty()) absl::StrAppend(&sql, " AND m.split = ?4");
  if (f.epoch_min() > 0)
    absl::StrAppend(&sql, " AND m.epoch >= ", f.epoch_min());
  if (f.epoch_max() > 0)
    absl::StrAppend(&sql, " AND m.epoch <= ", f.epoch_max());
  if (f.latest_only()) absl::StrAppend(&sql, " AND m.epoch = j.last_epoch");
  if (!f.page_token().empty())
    absl::StrAppend(&sql, " AND (m.job_id, m.epoch, m.split) > (?5, ?6, ?7)");
  absl::StrAppend(&sql, " ORDER BY m.job_id, m.epoch, m.split LIMIT ",
                  page + 1);

  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(Statement s, c_.db()->Prepare(sql));
  if (!f.method().empty()) {
    absl::StatusOr<calib::MethodKind> kind = calib::ParseMethod(f.method());
    s.Bind(1, kind.ok() ? std::string(calib::Name(*kind)) : f.method());
  }
  if (f.has_value_min()) s.Bind(2, f.value_min());
  if (f.has_value_max()) s.Bind(3, f.value_max());
  if (!f.split().empty()) s.Bind(4, f.split());
  if (!f.page_token().empty())
    s.Bind(5, after_job).Bind(6, after_epoch).Bind(7, after_split);
  std::vector<v1::EpochMetrics> rows;
  next_page_token->clear();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (static_cast<int>(rows.size()) == page) {
      const v1::EpochMetrics& last = rows.back();
      *next_page_token =
          absl::StrCat(last.job_id(), ":", last.epoch(), ":", last.split());
      break;
    }
    rows.push_back(MetricsFromRow(s));
  }
  if (f.include_bins()) {
    for (v1::EpochMetrics& m : rows) MIXCAL_RETURN_IF_ERROR(ReadBins(&m));
  }
  return rows;
}

absl::StatusOr<std::vector<v1::SummaryRow>> MetricReader::SummarizeSweep(
    int64_t sweep_id, const v1::SummaryPoint& at, const std::string& split,
    const std::string& vs, bool ensemble) {
  if (!split.empty() && !ValidSplitName(split)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split \"", Echo(split), "\" is not a split name"));
  }
  // Which epoch of each job to read, as SQL yielding (job_id, epoch), and
  // with best_by the split it was chosen on (sel), which a reported row's
  // split maps to through selection_sql.
  std::string chosen;
  bool best_by = false;
  std::string selection_sql;
  if (at.at_case() == v1::SummaryPoint::kEpoch) {
    if (at.epoch() < 1)
      return absl::InvalidArgumentError("at.epoch must be at least 1");
    chosen = absl::StrCat("SELECT id AS job_id, ", at.epoch(),
                          " AS epoch FROM jobs WHERE sweep_id = ?1");
  } else if (at.at_case() == v1::SummaryPoint::kBestBy) {
    MIXCAL_ASSIGN_OR_RETURN(const calib::Metric* col,
                            calib::ParseMetric(at.best_by(), "at.best_by",
                                               /*summarized_only=*/true));
    const std::string& asked = at.best_split();
    if (!asked.empty() && !ValidSplitName(asked)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "at.best_split \"", Echo(asked), "\" is not a split name"));
    }
    best_by = true;
    // Each reported split's epoch is chosen on its selection split (the
    // validation variant unless one was asked for); the chosen set holds
    // (job, selection split, epoch), and the reported rows join it through
    // the same mapping. SQLite fills the bare column `epoch` from the row
    // holding MIN()/MAX().
    selection_sql = asked.empty()
                        ? std::string(kValidationVariantSql)
                        : absl::StrCat("'", asked, "'");
    chosen = absl::StrCat(
        "SELECT m.job_id AS job_id, m.split AS sel, m.epoch AS epoch, ",
        col->higher_is_better ? "MAX" : "MIN", "(m.", col->name,
        ") FROM epoch_metrics m JOIN jobs j ON j.id = m.job_id "
        "WHERE j.sweep_id = ?1 AND ",
        asked.empty() ? "m.split LIKE 'val%'"
                      : absl::StrCat("m.split = '", asked, "'"),
        " AND m.", col->name, " IS NOT NULL GROUP BY m.job_id, m.split");
  } else {
    chosen =
        "SELECT id AS job_id, last_epoch AS epoch FROM jobs WHERE sweep_id = "
        "?1 AND last_epoch > 0";
  }
  std::string sql = absl::StrCat(
      "SELECT j.method, j.value, m.split, m.epoch, j.seed, ",
      SummaryColumnsSql(), " FROM (", chosen,
      ") c JOIN jobs j ON j.id = c.job_id "
      "JOIN epoch_metrics m ON m.job_id = c.job_id AND m.epoch = c.epoch",
      best_by ? absl::StrCat(" AND c.sel = ", selection_sql) : "",
      split.empty() ? "" : " WHERE m.split = ?2", " ORDER BY j.id, m.split");

  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(v1::Sweep sweep, ReadSweep(c_, sweep_id));
  if (best_by) {
    // The selection split must have rows: an empty answer would read as
    // "nothing to compare".
    const std::string needed =
        !at.best_split().empty() ? at.best_split()
                                 : ValidationVariant(split.empty() ? "test"
                                                                   : split);
    MIXCAL_ASSIGN_OR_RETURN(
        Statement has,
        c_.db()->Prepare("SELECT 1 FROM epoch_metrics m JOIN jobs j ON j.id = "
                         "m.job_id WHERE j.sweep_id = ?1 AND m.split = ?2 "
                         "LIMIT 1"));
    has.Bind(1, sweep_id);
    has.Bind(2, needed);
    MIXCAL_ASSIGN_OR_RETURN(bool any, has.Step());
    if (!any) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sweep ", sweep_id, " has no rows on split \"", needed,
          "\", which best_by chooses each job's epoch on",
          at.best_split().empty()
              ? absl::StrCat(
                    " (validation data: sweeps stored before validation "
                    "metrics were kept, or run with val_fraction 0, have "
                    "none; choosing on test data needs best_split \"test\", "
                    "mixcal summary --select-split test)")
              : ""));
    }
  }
  MIXCAL_ASSIGN_OR_RETURN(Statement s, c_.db()->Prepare(sql));
  s.Bind(1, sweep_id);
  if (!split.empty()) s.Bind(2, split);

  struct Group {
    v1::SummaryRow row;
    std::vector<int64_t> seeds;               // one per job read
    std::vector<std::vector<double>> values;  // per metric, per job; NaN = none
  };
  std::vector<Group> groups;
  std::map<std::tuple<std::string, double, std::string>, size_t> index;
  const std::vector<const calib::Metric*>& metrics = SummaryMetrics();
  const size_t n_metrics = metrics.size();
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    auto key = std::make_tuple(s.Text(0), s.Double(1), s.Text(2));
    auto [it, inserted] = index.emplace(key, groups.size());
    if (inserted) {
      Group g;
      g.row.set_method(std::get<0>(key));
      g.row.set_value(std::get<1>(key));
      g.row.set_split(std::get<2>(key));
      if (best_by) {
        g.row.set_selected_on(at.best_split().empty()
                                  ? ValidationVariant(std::get<2>(key))
                                  : at.best_split());
      }
      g.values.resize(n_metrics);
      groups.push_back(std::move(g));
    }
    Group& g = groups[it->second];
    g.row.set_seeds(g.row.seeds() + 1);
    g.row.add_epochs(static_cast<uint32_t>(s.Int(3)));
    g.seeds.push_back(s.Int(4));
    for (size_t k = 0; k < n_metrics; ++k) {
      const int col = 5 + static_cast<int>(k);
      g.values[k].push_back(s.IsNull(col) ? kNoValue : s.Double(col));
    }
  }

  // The reference of the comparison, resolved against the groups read.
  std::optional<std::pair<std::string, double>> ref;
  if (!vs.empty()) {
    std::vector<std::pair<std::string, double>> configs;
    for (const Group& g : groups)
      configs.emplace_back(g.row.method(), g.row.value());
    MIXCAL_ASSIGN_OR_RETURN(ref, ResolveReference(vs, configs, sweep_id));
  }
  std::map<std::pair<std::string, double>, std::map<std::string, const Group*>>
      by_config;
  for (const Group& g : groups)
    by_config[{g.row.method(), g.row.value()}][g.row.split()] = &g;

  std::vector<v1::SummaryRow> out;
  for (Group& g : groups) {
    const Group* r = nullptr;
    if (ref) {
      g.row.set_vs_method(ref->first);
      g.row.set_vs_value(ref->second);
      const bool is_ref =
          g.row.method() == ref->first && g.row.value() == ref->second;
      auto it = by_config[*ref].find(g.row.split());
      if (!is_ref && it != by_config[*ref].end()) r = it->second;
    }
    for (size_t k = 0; k < n_metrics; ++k) {
      std::vector<double> v;
      for (double x : g.values[k])
        if (!std::isnan(x)) v.push_back(x);
      if (v.empty()) continue;
      const calib::MeanStd ms = calib::MeanAndStd(v);
      v1::MetricStat* stat = g.row.add_stats();
      stat->set_metric(metrics[k]->name);
      stat->set_mean(ms.mean);
      stat->set_std(ms.std);
      stat->set_count(static_cast<uint32_t>(v.size()));
      if (r == nullptr) continue;
      // Pairs: the seeds both configurations have a value for.
      std::vector<double> a, b;
      for (size_t i = 0; i < g.seeds.size(); ++i) {
        if (std::isnan(g.values[k][i])) continue;
        for (size_t j = 0; j < r->seeds.size(); ++j) {
          if (r->seeds[j] != g.seeds[i] || std::isnan(r->values[k][j]))
            continue;
          a.push_back(g.values[k][i]);
          b.push_back(r->values[k][j]);
          break;
        }
      }
      if (a.empty()) continue;
      const calib::PairedDiff d = calib::PairedDifference(a, b);
      v1::PairedComparison* c = stat->mutable_vs();
      c->set_mean(d.mean);
      c->set_low(d.low);
      c->set_high(d.high);
      c->set_pairs(static_cast<uint32_t>(d.pairs));
      c->set_significant(d.significant());
    }
    out.push_back(std::move(g.row));
  }
  if (ensemble && (split.empty() || split == "test")) {
    const int bins =
        sweep.spec().evaluation().ece_bins() > 0
            ? static_cast<int>(sweep.spec().evaluation().ece_bins())
            : 15;
    // Ensembles are of the test split: with best_by, its selection split's
    // epochs.
    const std::string ensemble_chosen =
        best_by ? absl::StrCat("SELECT job_id, epoch FROM (", chosen,
                               ") WHERE sel = '",
                               at.best_split().empty() ? std::string("val")
                                                       : at.best_split(),
                               "'")
                : chosen;
    MIXCAL_RETURN_IF_ERROR(
        AppendEnsembles(ensemble_chosen, sweep_id, bins, ref, &out));
  }
  return out;
}

absl::StatusOr<v1::EpochMetrics> MetricReader::GetReliability(
    int64_t job_id, uint32_t epoch, const std::string& split_in) {
  MIXCAL_ASSIGN_OR_RETURN(const std::string split, SplitOrTest(split_in));
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(v1::Job job, ReadJob(c_, job_id));
  if (epoch == 0) epoch = job.last_epoch();
  MIXCAL_ASSIGN_OR_RETURN(CachedStatement s,
                          c_.db()->Cached(absl::StrCat(
                              "SELECT ", MetricColumns(),
                              " FROM epoch_metrics m JOIN jobs j ON "
                              "j.id = m.job_id WHERE m.job_id = ? AND m.epoch "
                              "= ? AND m.split = ?")));
  s->Bind(1, job_id).Bind(2, epoch).Bind(3, split);
  MIXCAL_ASSIGN_OR_RETURN(bool found, s->Step());
  if (!found) {
    return absl::NotFoundError(absl::StrCat(
        "job ", job_id, " has no metrics for epoch ", epoch, " split ", split));
  }
  v1::EpochMetrics m = MetricsFromRow(*s);
  MIXCAL_RETURN_IF_ERROR(ReadBins(&m));
  std::vector<calib::ReliabilityBin> bins;
  for (const v1::ReliabilityBin& bin : m.bins())
    bins.push_back({bin.count(), bin.confidence_sum(), bin.correct()});
  // The bins are the source of truth.
  calib::Calibration c = calib::CalibrationFromBins(bins);
  m.set_ece(c.ece);
  m.set_mce(c.mce);
  m.set_oe(c.oe);
  return m;
}

absl::StatusOr<std::vector<v1::Event>> MetricReader::ListEvents(
    int64_t sweep_id, int64_t job_id, int64_t after_id, int limit) {
  std::string sql =
      "SELECT id, time, sweep_id, job_id, kind, message FROM events WHERE id > "
      "?1";
  if (sweep_id > 0) absl::StrAppend(&sql, " AND sweep_id = ", sweep_id);
  if (job_id > 0) absl::StrAppend(&sql, " AND job_id = ", job_id);
  absl::StrAppend(&sql, " ORDER BY id LIMIT ",
                  spec::EffectiveLimit(spec::kListEventsLimit, limit));
  RequestLock lock(c_);
  MIXCAL_ASSIGN_OR_RETURN(Statement s, c_.db()->Prepare(sql));
  s.Bind(1, after_id);
  std::vector<v1::Event> out;
  while (true) {
    MIXCAL_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::Event e;
    e.set_id(s.Int(0));
    e.set_time_us(s.Int(1));
    e.set_sweep_id(s.Int(2));
    e.set_job_id(s.Int(3));
    e.set_kind(s.Text(4));
    e.set_message(s.Text(5));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace mixcal::storage
