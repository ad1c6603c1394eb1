#include "server/worker_service.h"

#include <algorithm>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
#include "server/report_stream.h"

namespace mixcal::server {

grpc::Status WorkerService::RegisterWorker(grpc::ServerContext* ctx,
                          const v1::RegisterWorkerRequest* req,
                          v1::RegisterWorkerResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  v1::WorkerInfo info;
  info.set_host(req->host());
  info.set_device(req->device());
  info.set_device_name(req->device_name());
  info.set_memory_bytes(req->memory_bytes());
  *info.mutable_capabilities() = req->capabilities();
  info.set_name(req->name());
  info.set_placement(req->placement());
  std::string key;
  auto id = b_.store->queue().RegisterWorker(info, &key);
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_worker_id(*id);
  resp->set_worker_key(key);
  resp->set_heartbeat_interval_ms(
      static_cast<uint32_t>(b_.heartbeat_ms));
  resp->set_lease_ms(static_cast<uint32_t>(b_.lease_ms));
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* WorkerService::AcquireJob(
    grpc::CallbackServerContext* ctx, const v1::AcquireJobRequest* req,
    v1::AcquireJobResponse* resp) {
  return b_.dispatcher->Acquire(req->worker_id(), req->wait_ms(),
                                b_.auth->Check(*ctx, Permission::kWorker),
                                resp);
}

grpc::Status WorkerService::Heartbeat(grpc::ServerContext* ctx,
                     const v1::HeartbeatRequest* req,
                     v1::HeartbeatResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  std::vector<v1::Lease> leases(req->leases().begin(), req->leases().end());
  auto r = b_.store->queue().Heartbeat(req->worker_id(), leases,
                                 b_.lease_ms * 1000);
  if (!r.ok()) return ToGrpc(r.status());
  for (auto& l : r->extended) *resp->add_extended() = l;
  for (auto& l : r->cancelled) *resp->add_cancelled() = l;
  for (auto& l : r->lost) *resp->add_lost() = l;
  return grpc::Status::OK;
}

grpc::Status WorkerService::ReportEpoch(grpc::ServerContext* ctx,
                       const v1::ReportEpochRequest* req,
                       v1::ReportEpochResponse*) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  // Through the report writer, as every report: stored with whatever else
  // is waiting, and published from there.
  v1::WorkerReport report;
  *report.mutable_epoch() = *req;
  return ToGrpc(b_.writer->StoreOne(std::move(report)).status);
}

grpc::ServerBidiReactor<v1::WorkerReport, v1::ReportAcks>* WorkerService::StreamReports(
  grpc::CallbackServerContext* ctx) {
  return new ReportStream(b_.writer,
                           b_.auth->Check(*ctx, Permission::kWorker));
}

grpc::Status WorkerService::ReportCheckpoint(grpc::ServerContext* ctx,
                            const v1::ReportCheckpointRequest* req,
                            v1::ReportCheckpointResponse*) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  v1::WorkerReport report;
  *report.mutable_checkpoint() = *req;
  return ToGrpc(b_.writer->StoreOne(std::move(report)).status);
}

grpc::Status WorkerService::FinishJob(grpc::ServerContext* ctx,
                     const v1::FinishJobRequest* req,
                     v1::FinishJobResponse* resp) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  v1::WorkerReport report;
  *report.mutable_finish() = *req;
  storage::ReportResult r = b_.writer->StoreOne(std::move(report));
  if (!r.status.ok()) return ToGrpc(r.status);
  resp->set_state(r.state);
  return grpc::Status::OK;
}

grpc::Status WorkerService::LeaveRotation(grpc::ServerContext* ctx,
                                          const v1::LeaveRotationRequest* req,
                                          v1::LeaveRotationResponse*) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  MIXCAL_GRPC_CHECK(PositiveId("worker_id", req->worker_id()));
  return ToGrpc(b_.store->queue().LeaveRotation(
      req->worker_id(), req->failing(), req->reason(), req->worker_key()));
}

grpc::Status WorkerService::FetchFile(grpc::ServerContext* ctx,
                                     const v1::FetchFileRequest* req,
                                     grpc::ServerWriter<v1::FileChunk>* writer) {
  MIXCAL_GRPC_CHECK(b_.auth->Check(*ctx, Permission::kWorker));
  auto found = b_.store->files().Find(req->sha256());
  if (!found.ok()) return ToGrpc(found.status());
  const auto& [file, path] = *found;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ToGrpc(absl::DataLossError(
        absl::StrCat("file ", file.sha256(), ": cannot read ", path)));
  }
  std::string buffer(size_t{1} << 20, '\0');
  uint64_t sent = 0;
  bool first = true;
  while (first || sent < file.size()) {
    v1::FileChunk chunk;
    if (first) {
      chunk.set_kind(file.kind());
      chunk.set_name(file.name());
      chunk.set_size(file.size());
      chunk.set_sha256(file.sha256());
      first = false;
    }
    const uint64_t want = std::min<uint64_t>(buffer.size(), file.size() - sent);
    in.read(buffer.data(), static_cast<std::streamsize>(want));
    if (static_cast<uint64_t>(in.gcount()) != want) {
      return ToGrpc(absl::DataLossError(absl::StrCat(
          "file ", file.sha256(), ": ", path, " ended early")));
    }
    chunk.set_data(buffer.data(), want);
    sent += want;
    if (ctx->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "the worker stopped reading");
    }
  }
  return grpc::Status::OK;
}

}  // namespace mixcal::server
