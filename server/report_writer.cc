#include "server/report_writer.h"

#include <algorithm>
#include <map>
#include <utility>

#include "server/grpc_status.h"
#include "server/report_stream.h"

namespace mixcal::server {

void ReportWriter::Loop() {
  constexpr size_t kMaxBatch = 2048;
  while (true) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stop_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping
      const size_t n = std::min(kMaxBatch, queue_.size());
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<storage::ReportResult> results = Write(batch);
    Publish(batch, results);
    absl::MutexLock lock(&ack_mu_);
    stored_.push_back({std::move(batch), std::move(results)});
  }
}

std::vector<storage::ReportResult> ReportWriter::Write(
    const std::vector<Item>& batch) {
  std::vector<const v1::WorkerReport*> reports;
  std::vector<const storage::PreparedReport*> prepared;
  reports.reserve(batch.size());
  prepared.reserve(batch.size());
  for (const Item& it : batch) {
    reports.push_back(&it.report);
    prepared.push_back(&it.prepared);
  }
  return store_->reports().StoreReports(reports, prepared);
}

void ReportWriter::Publish(const std::vector<Item>& batch,
                           const std::vector<storage::ReportResult>& results) {
  bool requeued = false;
  // Each job read once per batch, not once per report, and only while
  // someone watches.
  const bool watched = hub_->Any();
  std::map<int64_t, absl::StatusOr<v1::Job>> jobs;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!results[i].status.ok()) continue;
    const v1::WorkerReport& r = batch[i].report;
    if (r.has_finish()) {
      // Handed back: queued again, idle workers may take it now.
      requeued = requeued || results[i].state == v1::QUEUED;
      hub_->PublishJobId(r.finish().lease().job_id());
    } else if (r.has_epoch() && watched) {
      const int64_t id = r.epoch().lease().job_id();
      auto it = jobs.find(id);
      if (it == jobs.end())
        it = jobs.emplace(id, store_->sweeps().GetJob(id)).first;
      if (it->second.ok()) hub_->PublishMetrics(r.epoch(), *it->second);
    }
  }
  if (requeued) dispatcher_->Notify();
}

void ReportWriter::PrepareLoop() {
  while (true) {
    PrepareTask task;
    {
      absl::MutexLock lock(&prep_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(prep_mu_) {
        return !prep_queue_.empty() || prep_stop_;
      };
      prep_mu_.Await(absl::Condition(&ready));
      if (prep_queue_.empty()) return;  // stopping, and nothing waits
      task = std::move(prep_queue_.front());
      prep_queue_.pop_front();
    }
    task.done(Prepare(task.report));
  }
}

void ReportWriter::AckLoop() {
  while (true) {
    Stored done;
    {
      absl::MutexLock lock(&ack_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_) {
        return !stored_.empty() || ack_stop_;
      };
      ack_mu_.Await(absl::Condition(&ready));
      if (stored_.empty()) return;  // stopping, and the writer is done
      done = std::move(stored_.front());
      stored_.pop_front();
    }
    const std::vector<Item>& batch = done.batch;
    const std::vector<storage::ReportResult>& results = done.results;
    // Acks per stream, in the order received.
    std::vector<std::pair<ReportStream*, std::vector<v1::ReportAck>>> acks;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (Waiter* w = batch[i].waiter) {
        w->result = results[i];
        w->done.Notify();
        continue;
      }
      ReportStream* r = batch[i].stream;
      auto it = std::find_if(acks.begin(), acks.end(),
                             [r](const auto& a) { return a.first == r; });
      if (it == acks.end()) {
        acks.push_back({r, {}});
        it = acks.end() - 1;
      }
      v1::ReportAck& a = it->second.emplace_back();
      a.set_sequence(batch[i].report.sequence());
      const absl::Status& st = results[i].status;
      a.set_code(static_cast<int32_t>(st.code()));
      if (!st.ok()) a.set_message(std::string(st.message()));
      NoteServerError(st);
      a.set_state(results[i].state);
    }
    for (auto& [stream, list] : acks) stream->Acked(std::move(list));
  }
}

}  // namespace mixcal::server
