#include "server/experiment_service.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/backups.h"
#include "server/grpc_status.h"
#include "spec/limits.h"
#include "spec/spec.h"

namespace mixcal::server {
namespace {

template <typename T>
grpc::Status Assign(absl::StatusOr<T> v, T* out) {
  if (!v.ok()) return ToGrpc(v.status());
  *out = *std::move(v);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ExperimentService::SubmitSweep(grpc::ServerContext* ctx,
                       const v1::SubmitSweepRequest* req,
                       v1::Sweep* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWrite));
  storage::SubmitQuota quota;
  quota.submitter = b_.auth->Who(*ctx);
  quota.max_unfinished_jobs = b_.max_unfinished_jobs_per_submitter;
  quota.max_active_sweeps = b_.max_active_sweeps_per_submitter;
  absl::StatusOr<v1::Sweep> s = b_.store->sweeps().CreateSweep(req->spec(), quota);
  if (!s.ok()) return ToGrpc(s.status());
  *resp = *s;
  b_.dispatcher->Notify();
  return grpc::Status::OK;
}

grpc::Status ExperimentService::GetSweep(grpc::ServerContext* ctx,
                    const v1::GetSweepRequest* req,
                    v1::Sweep* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
  return Assign(b_.store->sweeps().GetSweep(req->sweep_id()), resp);
}

grpc::Status ExperimentService::ListSweeps(grpc::ServerContext* ctx,
                      const v1::ListSweepsRequest* req,
                      v1::ListSweepsResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(spec::CheckLimit(spec::kListSweepsLimit, req->limit()));
  auto s = b_.store->sweeps().ListSweeps(static_cast<int>(req->limit()),
                                  req->active_only());
  if (!s.ok()) return ToGrpc(s.status());
  for (auto& sweep : *s) *resp->add_sweeps() = std::move(sweep);
  return grpc::Status::OK;
}

storage::SweepBook::Actor ExperimentService::Actor(
    const grpc::ServerContextBase& ctx) const {
  storage::SweepBook::Actor a;
  a.who = b_.auth->Who(ctx);
  a.admin = b_.auth->IsAdmin(ctx);
  return a;
}

grpc::Status ExperimentService::CancelSweep(grpc::ServerContext* ctx,
                       const v1::CancelSweepRequest* req,
                       v1::Sweep* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWrite));
  MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
  grpc::Status st = Assign(
      b_.store->sweeps().CancelSweep(req->sweep_id(), Actor(*ctx)), resp);
  if (st.ok()) b_.hub->PublishSweepJobs(req->sweep_id());
  return st;
}

grpc::Status ExperimentService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                  v1::Job* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
  grpc::Status st = Assign(b_.store->sweeps().GetJob(req->job_id()), resp);
  if (!st.ok()) return st;
  auto settings = spec::EffectiveSettings(resp->config());
  if (settings.ok()) {
    for (const auto& [name, value] : *settings) {
      v1::Setting* s = resp->add_settings();
      s->set_name(name);
      s->set_value(value);
    }
  }
  return grpc::Status::OK;
}

grpc::Status ExperimentService::ListJobs(grpc::ServerContext* ctx,
                    const v1::ListJobsRequest* req,
                    v1::ListJobsResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(spec::CheckLimit(spec::kListJobsLimit, req->limit()));
  storage::JobFilter f;
  f.sweep_id = req->sweep_id();
  for (int s : req->states())
    f.states.push_back(static_cast<v1::JobState>(s));
  f.limit = static_cast<int>(req->limit());
  auto jobs = b_.store->sweeps().ListJobs(f);
  if (!jobs.ok()) return ToGrpc(jobs.status());
  for (auto& j : *jobs) *resp->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::CancelJob(grpc::ServerContext* ctx,
                     const v1::CancelJobRequest* req,
                     v1::Job* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWrite));
  MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
  grpc::Status st =
      Assign(b_.store->sweeps().CancelJob(req->job_id(), Actor(*ctx)), resp);
  if (st.ok()) b_.hub->PublishJob(*resp);
  return st;
}

grpc::Status ExperimentService::RetryJob(grpc::ServerContext* ctx,
                    const v1::RetryJobRequest* req,
                    v1::Job* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWrite));
  MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
  grpc::Status st =
      Assign(b_.store->sweeps().RetryJob(req->job_id(), Actor(*ctx)), resp);
  if (st.ok()) {
    b_.dispatcher->Notify();
    b_.hub->PublishJob(*resp);
  }
  return st;
}

grpc::Status ExperimentService::QueryMetrics(grpc::ServerContext* ctx,
                        const v1::QueryMetricsRequest* req,
                        v1::QueryMetricsResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  // The API's contract (metrics.proto): a query names its sweep or jobs.
  if (req->filter().sweep_id() == 0 && req->filter().job_ids().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "filter.sweep_id or filter.job_ids is required");
  }
  if (req->filter().job_ids_size() > spec::kListJobsLimit.max) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("filter.job_ids must hold at most ",
                     spec::kListJobsLimit.max, ", got ",
                     req->filter().job_ids_size()));
  }
  std::string token;
  auto rows = b_.store->metrics().QueryMetrics(req->filter(), &token);
  if (!rows.ok()) return ToGrpc(rows.status());
  for (auto& r : *rows) *resp->add_rows() = std::move(r);
  resp->set_next_page_token(token);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::SummarizeSweep(grpc::ServerContext* ctx,
                          const v1::SummarizeSweepRequest* req,
                          v1::SummarizeSweepResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
  auto rows =
      b_.store->metrics().SummarizeSweep(req->sweep_id(), req->at(), req->split(),
                                req->vs(), req->ensemble());
  // Nothing at that split or epoch (empty rows, or a --vs reference that
  // therefore has none): an error naming what the sweep has, unless it has
  // no epochs at all yet (then the answer stands).
  if ((rows.ok() ? rows->empty() : absl::IsInvalidArgument(rows.status())) &&
      (!req->split().empty() || req->at().epoch() > 0)) {
    v1::SummaryPoint final_point;
    final_point.set_final(true);
    auto all = b_.store->metrics().SummarizeSweep(req->sweep_id(), final_point,
                                                  "", "", false);
    if (all.ok() && !all->empty()) {
      std::set<std::string> splits;
      uint32_t newest = 0;
      for (const v1::SummaryRow& r : *all) {
        splits.insert(r.split());
        for (uint32_t e : r.epochs()) newest = std::max(newest, e);
      }
      if (!req->split().empty() && !splits.count(req->split())) {
        return ToGrpc(absl::NotFoundError(absl::StrCat(
            "no split ", req->split(), " in sweep ", req->sweep_id(),
            " (known: ", absl::StrJoin(splits, ", "), ")")));
      }
      if (req->at().epoch() > newest) {
        return ToGrpc(absl::NotFoundError(absl::StrCat(
            "no epoch ", req->at().epoch(), " in sweep ", req->sweep_id(),
            " (its jobs have epochs 1 to ", newest, ")")));
      }
    }
  }
  if (!rows.ok()) return ToGrpc(rows.status());
  for (auto& r : *rows) *resp->add_rows() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::GetReliability(grpc::ServerContext* ctx,
                          const v1::GetReliabilityRequest* req,
                          v1::GetReliabilityResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
  auto m =
      b_.store->metrics().GetReliability(req->job_id(), req->epoch(), req->split());
  if (!m.ok()) return ToGrpc(m.status());
  resp->set_epoch(m->epoch());
  resp->set_split(m->split());
  *resp->mutable_bins() = m->bins();
  resp->set_ece(m->ece());
  resp->set_mce(m->mce());
  resp->set_oe(m->oe());
  return grpc::Status::OK;
}

grpc::Status ExperimentService::ListWorkers(grpc::ServerContext* ctx,
                       const v1::ListWorkersRequest*,
                       v1::ListWorkersResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  auto w = b_.store->queue().ListWorkers();
  if (!w.ok()) return ToGrpc(w.status());
  for (auto& x : *w) *resp->add_workers() = std::move(x);
  auto events = b_.store->launches().LauncherEvents(20);
  if (!events.ok()) return ToGrpc(events.status());
  for (auto& e : *events) *resp->add_launcher_events() = std::move(e);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::BackupStore(grpc::ServerContext* ctx,
                                            const v1::BackupStoreRequest*,
                                            v1::BackupStoreResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kAdmin));
  absl::StatusOr<storage::BackupInfo> b = b_.backups->Run();
  if (!b.ok()) return ToGrpc(b.status());
  resp->set_dir(b->dir);
  resp->set_database_bytes(b->database_bytes);
  resp->set_predictions_bytes(b->predictions_bytes);
  resp->set_seconds(b->seconds);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::ListEvents(grpc::ServerContext* ctx,
                      const v1::ListEventsRequest* req,
                      v1::ListEventsResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(spec::CheckLimit(spec::kListEventsLimit, req->limit()));
  auto e = b_.store->metrics().ListEvents(req->sweep_id(), req->job_id(),
                                  req->after_id(),
                                  static_cast<int>(req->limit()));
  if (!e.ok()) return ToGrpc(e.status());
  for (auto& x : *e) *resp->add_events() = std::move(x);
  return grpc::Status::OK;
}

grpc::Status ExperimentService::GetPredictions(
    grpc::ServerContext* ctx, const v1::GetPredictionsRequest* req,
    grpc::ServerWriter<v1::Predictions>* writer) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
  auto p = b_.store->metrics().GetPredictions(req->job_id(), req->epoch(), req->split());
  if (!p.ok()) return ToGrpc(p.status());
  const int64_t classes = p->classes(), count = p->count();
  // Whole rows, about 1 MB of float16 values per chunk.
  const int64_t rows = std::max<int64_t>(1, (1 << 20) / (2 * classes));
  for (int64_t first = 0; first < count; first += rows) {
    const int64_t n = std::min(rows, count - first);
    v1::Predictions chunk;
    if (first == 0) {
      chunk.set_job_id(p->job_id());
      chunk.set_epoch(p->epoch());
      chunk.set_split(p->split());
      chunk.set_count(p->count());
      chunk.set_classes(p->classes());
    }
    chunk.set_first_row(static_cast<uint32_t>(first));
    chunk.set_probabilities(p->probabilities().substr(2 * first * classes,
                                                      2 * n * classes));
    chunk.set_labels(p->labels().substr(4 * first, 4 * n));
    if (!p->label_log_probs().empty())
      chunk.set_label_log_probs(p->label_log_probs().substr(4 * first, 4 * n));
    if (ctx->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "the client stopped reading");
    }
  }
  return grpc::Status::OK;
}

grpc::Status ExperimentService::UploadFile(
    grpc::ServerContext* ctx, grpc::ServerReader<v1::FileChunk>* reader,
    v1::StoredFile* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWrite));
  v1::FileChunk chunk;
  if (!reader->Read(&chunk)) {
    return ToGrpc(absl::InvalidArgumentError(
        "an upload must start with a chunk saying kind, name, size and "
        "sha256"));
  }
  absl::StatusOr<std::unique_ptr<storage::FileUpload>> upload =
      b_.store->files().BeginUpload(chunk, b_.auth->Who(*ctx),
                                    b_.max_upload_bytes);
  if (!upload.ok()) return ToGrpc(upload.status());
  while (true) {
    if (chunk.data().size() > (size_t{1} << 20)) {
      return ToGrpc(absl::InvalidArgumentError(absl::StrCat(
          "data must be at most 1 MiB a chunk, got ", chunk.data().size(),
          " bytes")));
    }
    MIXCAL_GRPC_CHECK((*upload)->Append(chunk.data()));
    if (!reader->Read(&chunk)) break;
    if (!chunk.kind().empty() || !chunk.sha256().empty() || chunk.size() != 0) {
      return ToGrpc(absl::InvalidArgumentError(
          "only the first chunk may say kind, size and sha256"));
    }
  }
  if (ctx->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the upload was cancelled");
  }
  absl::StatusOr<v1::StoredFile> stored = (*upload)->Finish();
  if (!stored.ok()) return ToGrpc(stored.status());
  *resp = *stored;
  return grpc::Status::OK;
}

grpc::Status ExperimentService::ListFiles(grpc::ServerContext* ctx,
                                          const v1::ListFilesRequest* req,
                                          v1::ListFilesResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kRead));
  absl::StatusOr<std::vector<v1::StoredFile>> files =
      b_.store->files().ListFiles(req->kind());
  if (!files.ok()) return ToGrpc(files.status());
  for (v1::StoredFile& f : *files) *resp->add_files() = std::move(f);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::SweepUpdate>* ExperimentService::WatchSweep(
    grpc::CallbackServerContext* ctx, const v1::WatchSweepRequest* req) {
  // The snapshot is read on the hub's thread, not this callback thread.
  return b_.hub->Watch(req->sweep_id(), b_.auth->Check(*ctx, Permission::kRead),
                       b_.auth->Who(*ctx));
}

}  // namespace mixcal::server
