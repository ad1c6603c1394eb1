#ifndef MIXCAL_SERVER_EXPERIMENT_SERVICE_H_
#define MIXCAL_SERVER_EXPERIMENT_SERVICE_H_

// ExperimentService (DESIGN.md section 2): what people and scripts call.
// Each handler checks the caller's role, validates the request (naming the
// field) and calls the store; WatchSweep streams through the WatchHub.

#include "mixcal/v1/experiment.grpc.pb.h"
#include "server/backends.h"

namespace mixcal::server {

class ExperimentService
    : public v1::ExperimentService::WithCallbackMethod_WatchSweep<
          v1::ExperimentService::Service> {
 public:
  explicit ExperimentService(Backends b) : b_(b) {}

  grpc::Status SubmitSweep(grpc::ServerContext* ctx,
                           const v1::SubmitSweepRequest* req,
                           v1::Sweep* resp) override;
  grpc::Status GetSweep(grpc::ServerContext* ctx,
                        const v1::GetSweepRequest* req,
                        v1::Sweep* resp) override;
  grpc::Status ListSweeps(grpc::ServerContext* ctx,
                          const v1::ListSweepsRequest* req,
                          v1::ListSweepsResponse* resp) override;
  grpc::Status CancelSweep(grpc::ServerContext* ctx,
                           const v1::CancelSweepRequest* req,
                           v1::Sweep* resp) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::Job* resp) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx,
                        const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* resp) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx,
                         const v1::CancelJobRequest* req,
                         v1::Job* resp) override;
  grpc::Status RetryJob(grpc::ServerContext* ctx,
                        const v1::RetryJobRequest* req,
                        v1::Job* resp) override;
  grpc::Status QueryMetrics(grpc::ServerContext* ctx,
                            const v1::QueryMetricsRequest* req,
                            v1::QueryMetricsResponse* resp) override;
  grpc::Status SummarizeSweep(grpc::ServerContext* ctx,
                              const v1::SummarizeSweepRequest* req,
                              v1::SummarizeSweepResponse* resp) override;
  grpc::Status GetReliability(grpc::ServerContext* ctx,
                              const v1::GetReliabilityRequest* req,
                              v1::GetReliabilityResponse* resp) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx,
                           const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* resp) override;
  grpc::Status ListEvents(grpc::ServerContext* ctx,
                          const v1::ListEventsRequest* req,
                          v1::ListEventsResponse* resp) override;
  // In chunks of at most 1 MB of probabilities (whole rows).
  grpc::Status GetPredictions(
      grpc::ServerContext* ctx, const v1::GetPredictionsRequest* req,
      grpc::ServerWriter<v1::Predictions>* writer) override;
  // Role submit or admin; chunks of at most 1 MiB, the first saying what
  // the file is (storage/file_book.h).
  grpc::Status UploadFile(grpc::ServerContext* ctx,
                          grpc::ServerReader<v1::FileChunk>* reader,
                          v1::StoredFile* resp) override;
  grpc::Status ListFiles(grpc::ServerContext* ctx,
                         const v1::ListFilesRequest* req,
                         v1::ListFilesResponse* resp) override;
  grpc::Status BackupStore(grpc::ServerContext* ctx,
                           const v1::BackupStoreRequest* req,
                           v1::BackupStoreResponse* resp) override;
  grpc::ServerWriteReactor<v1::SweepUpdate>* WatchSweep(
      grpc::CallbackServerContext* ctx,
      const v1::WatchSweepRequest* req) override;

 private:
  // Who makes the call, for sweep ownership (cancel, retry).
  storage::SweepBook::Actor Actor(const grpc::ServerContextBase& ctx) const;

  Backends b_;
};

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_EXPERIMENT_SERVICE_H_
