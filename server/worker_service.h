#ifndef MIXCAL_SERVER_WORKER_SERVICE_H_
#define MIXCAL_SERVER_WORKER_SERVICE_H_

// WorkerService (DESIGN.md section 2): the worker protocol. AcquireJob
// long-polls through the Dispatcher; reports go through the ReportWriter
// (StreamReports and ReportEpoch); every report is fenced by its lease in
// the store.

#include "mixcal/v1/worker.grpc.pb.h"
#include "server/backends.h"

namespace mixcal::server {

class WorkerService
    : public v1::WorkerService::WithCallbackMethod_AcquireJob<
          v1::WorkerService::WithCallbackMethod_StreamReports<
              v1::WorkerService::Service>> {
 public:
  explicit WorkerService(Backends b) : b_(b) {}

  grpc::Status RegisterWorker(grpc::ServerContext* ctx,
                              const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override;
  grpc::ServerUnaryReactor* AcquireJob(
      grpc::CallbackServerContext* ctx, const v1::AcquireJobRequest* req,
      v1::AcquireJobResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx,
                         const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status ReportEpoch(grpc::ServerContext* ctx,
                           const v1::ReportEpochRequest* req,
                           v1::ReportEpochResponse*) override;
  grpc::ServerBidiReactor<v1::WorkerReport, v1::ReportAcks>* StreamReports(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status ReportCheckpoint(grpc::ServerContext* ctx,
                                const v1::ReportCheckpointRequest* req,
                                v1::ReportCheckpointResponse*) override;
  grpc::Status FinishJob(grpc::ServerContext* ctx,
                         const v1::FinishJobRequest* req,
                         v1::FinishJobResponse* resp) override;
  grpc::Status LeaveRotation(grpc::ServerContext* ctx,
                             const v1::LeaveRotationRequest* req,
                             v1::LeaveRotationResponse*) override;
  // A stored file's bytes in chunks of 1 MiB, the first saying what it is.
  grpc::Status FetchFile(grpc::ServerContext* ctx,
                         const v1::FetchFileRequest* req,
                         grpc::ServerWriter<v1::FileChunk>* writer) override;

 private:
  Backends b_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_WORKER_SERVICE_H_
