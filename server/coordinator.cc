#include "server/coordinator.h"

#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "mixcal/v1/experiment.grpc.pb.h"
#include "mixcal/v1/worker.grpc.pb.h"
#include "server/auth.h"
#include "storage/store.h"
#include "base/status_macros.h"

namespace mixcal::server {
namespace {

using storage::Store;

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

absl::Status PositiveId(const char* field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be a positive id, got ", id));
}

// Returns the gRPC form of a non-OK status from the enclosing handler.
#define MIXCAL_GRPC_CHECK(expr)                               \
  do {                                                        \
    if (::absl::Status mixcal_st_ = (expr); !mixcal_st_.ok()) \
      return ToGrpc(mixcal_st_);                              \
  } while (0)

bool Ended(v1::SweepState s) {
  return s != v1::SWEEP_ACTIVE && s != v1::SWEEP_STATE_UNSPECIFIED;
}

// --- watchers of sweeps ---

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void Push(const v1::SweepUpdate& update) = 0;
};

class Hub {
 public:
  void Subscribe(int64_t sweep_id, Watcher* w) {
    absl::MutexLock lock(&mu_);
    watchers_.emplace(sweep_id, w);
  }
  void Unsubscribe(int64_t sweep_id, Watcher* w) {
    absl::MutexLock lock(&mu_);
    auto [lo, hi] = watchers_.equal_range(sweep_id);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == w) {
        watchers_.erase(it);
        return;
      }
    }
  }
  bool Any() {
    absl::MutexLock lock(&mu_);
    return !watchers_.empty();
  }
  void Publish(int64_t sweep_id, const v1::SweepUpdate& u) {
    absl::MutexLock lock(&mu_);
    auto [lo, hi] = watchers_.equal_range(sweep_id);
    for (auto it = lo; it != hi; ++it) it->second->Push(u);
  }

 private:
  absl::Mutex mu_;
  std::multimap<int64_t, Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

class WatchReactor : public grpc::ServerWriteReactor<v1::SweepUpdate>,
                     public Watcher {
 public:
  WatchReactor(Hub* hub, int64_t sweep_id) : hub_(hub), sweep_id_(sweep_id) {}

  void Push(const v1::SweepUpdate& u) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    queue_.push_back(u);
    if (u.has_sweep() && Ended(u.sweep().state())) end_after_ = true;
    if (!writing_) Next();
  }
  void FinishNow(const grpc::Status& s) {
    absl::MutexLock lock(&mu_);
    if (!finished_) {
      finished_ = true;
      Finish(s);
    }
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok || cancelled_) {
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status::CANCELLED);
      }
      return;
    }
    Next();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
    }
  }
  void OnDone() override {
    hub_->Unsubscribe(sweep_id_, this);
    delete this;
  }

 private:
  void Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (queue_.empty()) {
      if (end_after_) {
        finished_ = true;
        Finish(grpc::Status::OK);
      }
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  Hub* const hub_;
  const int64_t sweep_id_;
  absl::Mutex mu_;
  std::deque<v1::SweepUpdate> queue_ ABSL_GUARDED_BY(mu_);
  v1::SweepUpdate current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_after_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// --- long-polling AcquireJob ---

class Dispatcher;

class AcquireReactor : public grpc::ServerUnaryReactor {
 public:
  AcquireReactor(Dispatcher* d, int64_t worker_id, absl::Time deadline,
                 v1::AcquireJobResponse* response)
      : dispatcher_(d),
        worker_id_(worker_id),
        deadline_(deadline),
        response_(response) {}
  void OnCancel() override;
  void OnDone() override { delete this; }

  Dispatcher* const dispatcher_;
  const int64_t worker_id_;
  const absl::Time deadline_;
  v1::AcquireJobResponse* const response_;
};

// Holds idle workers' AcquireJob calls and answers them as soon as a job
// they can run is queued (Notify), or empty at their deadline. One thread;
// an idle worker costs an open call, not a loop.
class Dispatcher {
 public:
  Dispatcher(Store* store, int64_t lease_us,
             std::function<void(const v1::Job&)> on_leased)
      : store_(store), lease_us_(lease_us), on_leased_(std::move(on_leased)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Dispatcher() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
    absl::MutexLock lock(&mu_);
    for (auto* list : {&fresh_, &waiters_}) {
      for (AcquireReactor* r : *list)
        r->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
      list->clear();
    }
  }

  // Hands r to the dispatcher's thread, which tries to lease it a job at
  // once and otherwise keeps it waiting. The caller is one of gRPC's
  // callback threads, which must not wait for the store.
  void Add(AcquireReactor* r) {
    absl::MutexLock lock(&mu_);
    if (stop_) {
      r->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
      return;
    }
    fresh_.push_back(r);
  }
  void Cancel(AcquireReactor* r) {
    absl::MutexLock lock(&mu_);
    for (auto* list : {&fresh_, &waiters_}) {
      for (auto it = list->begin(); it != list->end(); ++it) {
        if (*it == r) {
          list->erase(it);
          r->Finish(grpc::Status::CANCELLED);
          return;
        }
      }
    }
  }
  void Notify() {
    absl::MutexLock lock(&mu_);
    dirty_ = true;
  }

 private:
  // True when r was finished (with a job or an error).
  bool TryLease(AcquireReactor* r) {
    absl::StatusOr<std::optional<storage::Assignment>> a =
        store_->AcquireJob(r->worker_id_, lease_us_);
    if (!a.ok()) {
      r->Finish(ToGrpc(a.status()));
      return true;
    }
    if (!a->has_value()) return false;
    *r->response_->mutable_job() = (*a)->job;
    *r->response_->mutable_lease() = (*a)->lease;
    on_leased_((*a)->job);
    r->Finish(grpc::Status::OK);
    return true;
  }

  void Loop() {
    while (true) {
      std::vector<AcquireReactor*> batch;
      {
        absl::MutexLock lock(&mu_);
        absl::Time next = absl::Now() + absl::Seconds(1);
        for (AcquireReactor* r : waiters_) next = std::min(next, r->deadline_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return dirty_ || !fresh_.empty() || stop_;
        };
        mu_.AwaitWithDeadline(absl::Condition(&ready), next);
        if (stop_) return;
        const bool dirty = dirty_;
        dirty_ = false;
        const absl::Time now = absl::Now();
        for (auto it = waiters_.begin(); it != waiters_.end();) {
          if (dirty || (*it)->deadline_ <= now) {
            batch.push_back(*it);
            it = waiters_.erase(it);
          } else {
            ++it;
          }
        }
        batch.insert(batch.end(), fresh_.begin(), fresh_.end());
        fresh_.clear();
      }
      // Outside the lock: store calls, and Finish.
      const absl::Time now = absl::Now();
      Store::PriorityScope first(store_);  // ahead of the report writer
      std::vector<AcquireReactor*> keep;
      for (AcquireReactor* r : batch) {
        if (TryLease(r)) continue;
        if (r->deadline_ <= now) {
          r->Finish(grpc::Status::OK);  // no job this time
        } else {
          keep.push_back(r);
        }
      }
      absl::MutexLock lock(&mu_);
      waiters_.insert(waiters_.begin(), keep.begin(),
                      keep.end());  // keep FIFO order
    }
  }

  Store* const store_;
  const int64_t lease_us_;
  std::function<void(const v1::Job&)> on_leased_;
  absl::Mutex mu_;
  std::list<AcquireReactor*> waiters_ ABSL_GUARDED_BY(mu_);
  std::list<AcquireReactor*> fresh_ ABSL_GUARDED_BY(mu_);  // not yet tried
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

void AcquireReactor::OnCancel() { dispatcher_->Cancel(this); }

// --- the report streams (StreamReports) ---

class ReportReactor;

// One thread that stores what the report streams delivered: everything
// waiting is written in one transaction; a second sends each stream its
// acks, in order.
class ReportWriter {
 public:
  // A unary call waiting for its one report (ReportEpoch).
  struct Waiter {
    absl::Notification done;
    storage::ReportResult result;
  };
  struct Item {
    ReportReactor* stream;  // or null, and then `waiter` is set
    Waiter* waiter;
    v1::WorkerReport report;
  };
  // Stores a batch; returns each report's result, in order.
  using StoreFn =
      std::function<std::vector<storage::ReportResult>(std::vector<Item>&)>;

  explicit ReportWriter(StoreFn store) : store_(std::move(store)) {
    thread_ = std::thread([this] { Loop(); });
    acker_ = std::thread([this] { AckLoop(); });
  }
  ~ReportWriter() { Stop(); }

  void Submit(ReportReactor* stream, v1::WorkerReport&& report) {
    absl::MutexLock lock(&mu_);
    queue_.push_back({stream, nullptr, std::move(report)});
  }
  // Stores one report with whatever else is waiting; blocks until it is.
  storage::ReportResult StoreOne(v1::WorkerReport&& report) {
    Waiter waiter;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back({nullptr, &waiter, std::move(report)});
    }
    waiter.done.WaitForNotification();
    return std::move(waiter.result);
  }
  // After every stream is done (the server shut down).
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    thread_.join();
    {
      absl::MutexLock lock(&ack_mu_);
      ack_stop_ = true;
    }
    acker_.join();
  }

 private:
  // A stored batch on its way back: the acks are sent, and the reports
  // freed, by a second thread, so that the writer goes on to the next batch.
  struct Stored {
    std::vector<Item> batch;
    std::vector<storage::ReportResult> results;
  };
  void Loop();
  void AckLoop();

  StoreFn store_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  absl::Mutex ack_mu_;
  std::deque<Stored> stored_ ABSL_GUARDED_BY(ack_mu_);
  bool ack_stop_ ABSL_GUARDED_BY(ack_mu_) = false;
  std::thread acker_;
};

class ReportReactor
    : public grpc::ServerBidiReactor<v1::WorkerReport, v1::ReportAcks> {
 public:
  // Reports not yet acknowledged to the worker (with the writer, or acks
  // not yet sent) past which the stream is not read: a worker that writes
  // without reading its acks cannot make the coordinator hold more.
  static constexpr int kWindow = 1024;

  ReportReactor(ReportWriter* writer, const absl::Status& auth)
      : writer_(writer) {
    if (!auth.ok()) {
      finished_ = true;
      Finish(ToGrpc(auth));
      return;
    }
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    Act(Locked([&] {
      if (!ok) {
        reads_done_ = true;
        return;
      }
      if (failed_ || finished_) return;  // dying: the report is not acked
      ++pending_;
      writer_->Submit(this, std::move(incoming_));
      incoming_.Clear();
      if (Backlog() < kWindow) {
        read_now_ = true;
      } else {
        read_paused_ = true;
      }
    }));
  }

  // From the writer's ack thread: the results of this stream's next reports.
  void Acked(std::vector<v1::ReportAck>&& acks) {
    Act(Locked([&] {
      pending_ -= static_cast<int>(acks.size());
      if (failed_) return;
      for (v1::ReportAck& a : acks) *queued_.add_acks() = std::move(a);
    }));
  }

  void OnWriteDone(bool ok) override {
    Act(Locked([&] {
      writing_ = false;
      if (!ok) failed_ = true;
    }));
  }
  void OnCancel() override {
    Act(Locked([&] { failed_ = true; }));
  }
  void OnDone() override { delete this; }

 private:
  struct Next {
    bool read = false;
    bool write = false;
    std::optional<grpc::Status> finish;
  };

  // Changes state under the lock, then decides the next operations.
  template <typename F>
  Next Locked(F change) {
    absl::MutexLock lock(&mu_);
    change();
    Next n;
    if (finished_) return n;
    if (failed_) queued_.Clear();
    if (!writing_ && queued_.acks_size() > 0) {
      sending_ = std::move(queued_);
      queued_.Clear();
      writing_ = true;
      n.write = true;
    }
    if (read_paused_ && !failed_ && Backlog() < kWindow / 2) {
      read_paused_ = false;
      read_now_ = true;
    }
    if (read_now_ && !failed_) n.read = true;
    read_now_ = false;
    // Finish only when the writer holds nothing of this stream: after
    // Finish, OnDone deletes it.
    if (pending_ == 0 && !writing_ && !n.read && (failed_ || reads_done_)) {
      finished_ = true;
      n.finish = failed_ ? grpc::Status::CANCELLED : grpc::Status::OK;
    }
    return n;
  }
  int Backlog() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_ + queued_.acks_size() +
           (writing_ ? sending_.acks_size() : 0);
  }
  // Outside the lock; Finish last: `this` may be gone after it.
  void Act(const Next& n) {
    if (n.read) StartRead(&incoming_);
    if (n.write) StartWrite(&sending_);
    if (n.finish) Finish(*n.finish);
  }

  ReportWriter* const writer_;
  v1::WorkerReport incoming_;  // the read in flight
  v1::ReportAcks sending_;     // the write in flight
  absl::Mutex mu_;
  v1::ReportAcks queued_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // with the writer, not yet acked
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool read_now_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // cancelled or a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

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
    std::vector<storage::ReportResult> results = store_(batch);
    absl::MutexLock lock(&ack_mu_);
    stored_.push_back({std::move(batch), std::move(results)});
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
    std::vector<std::pair<ReportReactor*, std::vector<v1::ReportAck>>> acks;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (Waiter* w = batch[i].waiter) {
        w->result = results[i];
        w->done.Notify();
        continue;
      }
      ReportReactor* r = batch[i].stream;
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
      a.set_state(results[i].state);
    }
    for (auto& [stream, list] : acks) stream->Acked(std::move(list));
  }
}

}  // namespace

// --- the services ---

class CoordinatorImpl {
 public:
  CoordinatorImpl(const CoordinatorOptions& o, std::unique_ptr<Store> store,
                  Authenticator auth)
      : options_(o),
        store_(std::move(store)),
        auth_(std::move(auth)),
        dispatcher_(store_.get(), o.lease_ms * 1000,
                    [this](const v1::Job& j) { PublishJob(j); }),
        writer_([this](std::vector<ReportWriter::Item>& batch) {
          return StoreReports(batch);
        }),
        experiment_(this),
        worker_(this) {}

  // The report streams' batches: one transaction for all, in order.
  std::vector<storage::ReportResult> StoreReports(
      std::vector<ReportWriter::Item>& batch) {
    std::vector<const v1::WorkerReport*> reports;
    reports.reserve(batch.size());
    for (const ReportWriter::Item& it : batch) reports.push_back(&it.report);
    std::vector<storage::ReportResult> results = store_->StoreReports(reports);
    if (!hub_.Any()) return results;
    // Each job read once per batch, not once per report.
    std::map<int64_t, absl::StatusOr<v1::Job>> jobs;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!results[i].status.ok()) continue;
      const v1::WorkerReport& r = batch[i].report;
      if (r.has_epoch()) {
        const int64_t id = r.epoch().lease().job_id();
        auto it = jobs.find(id);
        if (it == jobs.end()) it = jobs.emplace(id, store_->GetJob(id)).first;
        if (it->second.ok()) PublishMetrics(r.epoch(), *it->second);
      } else if (r.has_finish()) {
        PublishJobId(r.finish().lease().job_id());
      }
    }
    return results;
  }

  // Stored epoch metrics: tell the sweep's watchers.
  void PublishMetrics(const v1::ReportEpochRequest& report,
                      const v1::Job& job) {
    for (const v1::EpochMetrics& m : report.metrics()) {
      v1::SweepUpdate u;
      v1::EpochMetrics* row = u.mutable_metrics();
      *row = m;
      row->set_job_id(job.id());
      row->set_method(job.method());
      row->set_value(job.value());
      row->set_seed(job.seed());
      hub_.Publish(job.sweep_id(), u);
    }
  }

  // A job changed: tell its sweep's watchers, and end their streams when
  // the sweep ended.
  void PublishJob(const v1::Job& job) {
    if (!hub_.Any()) return;
    v1::SweepUpdate u;
    *u.mutable_job() = job;
    hub_.Publish(job.sweep_id(), u);
    PublishSweepIfEnded(job.sweep_id());
  }
  void PublishJobId(int64_t job_id) {
    if (!hub_.Any()) return;
    absl::StatusOr<v1::Job> job = store_->GetJob(job_id);
    if (job.ok()) PublishJob(*job);
  }
  void PublishSweepIfEnded(int64_t sweep_id) {
    absl::StatusOr<v1::Sweep> sweep = store_->GetSweep(sweep_id);
    if (!sweep.ok() || !Ended(sweep->state())) return;
    v1::SweepUpdate u;
    *u.mutable_sweep() = *sweep;
    hub_.Publish(sweep_id, u);
  }

  void ReapLoop() {
    const auto period = std::chrono::milliseconds(
        std::max<int64_t>(50, options_.lease_ms / 10));
    absl::MutexLock lock(&reaper_mu_);
    while (!stop_reaper_) {
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reaper_mu_) {
        return stop_reaper_;
      };
      reaper_mu_.AwaitWithTimeout(absl::Condition(&stop),
                                  absl::FromChrono(period));
      if (stop_reaper_) break;
      reaper_mu_.Unlock();
      absl::StatusOr<storage::ExpireResult> r = store_->ExpireLeases();
      if (r.ok()) {
        if (!r->requeued.empty()) dispatcher_.Notify();
        for (int64_t id : r->requeued) PublishJobId(id);
        for (int64_t id : r->failed) PublishJobId(id);
      }
      reaper_mu_.Lock();
    }
  }

  class ExperimentImpl
      : public v1::ExperimentService::WithCallbackMethod_WatchSweep<
            v1::ExperimentService::Service> {
   public:
    explicit ExperimentImpl(CoordinatorImpl* c) : c_(c) {}

    grpc::Status SubmitSweep(grpc::ServerContext* ctx,
                             const v1::SubmitSweepRequest* req,
                             v1::Sweep* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWrite));
      absl::StatusOr<v1::Sweep> s = c_->store_->CreateSweep(req->spec());
      if (!s.ok()) return ToGrpc(s.status());
      *resp = *s;
      c_->dispatcher_.Notify();
      return grpc::Status::OK;
    }
    grpc::Status GetSweep(grpc::ServerContext* ctx,
                          const v1::GetSweepRequest* req,
                          v1::Sweep* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
      return Assign(c_->store_->GetSweep(req->sweep_id()), resp);
    }
    grpc::Status ListSweeps(grpc::ServerContext* ctx,
                            const v1::ListSweepsRequest* req,
                            v1::ListSweepsResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      if (req->limit() > 1000) {
        return grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("limit must be in [1, 1000], got ", req->limit()));
      }
      auto s = c_->store_->ListSweeps(static_cast<int>(req->limit()),
                                      req->active_only());
      if (!s.ok()) return ToGrpc(s.status());
      for (auto& sweep : *s) *resp->add_sweeps() = std::move(sweep);
      return grpc::Status::OK;
    }
    grpc::Status CancelSweep(grpc::ServerContext* ctx,
                             const v1::CancelSweepRequest* req,
                             v1::Sweep* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWrite));
      MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
      grpc::Status st = Assign(c_->store_->CancelSweep(req->sweep_id()), resp);
      if (st.ok() && c_->hub_.Any()) {
        for (int64_t id : resp->job_ids()) c_->PublishJobId(id);
      }
      return st;
    }
    grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                        v1::Job* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
      return Assign(c_->store_->GetJob(req->job_id()), resp);
    }
    grpc::Status ListJobs(grpc::ServerContext* ctx,
                          const v1::ListJobsRequest* req,
                          v1::ListJobsResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      if (req->limit() > 10000) {
        return grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("limit must be in [1, 10000], got ", req->limit()));
      }
      storage::JobFilter f;
      f.sweep_id = req->sweep_id();
      for (int s : req->states())
        f.states.push_back(static_cast<v1::JobState>(s));
      f.limit = req->limit() == 0 ? 1000 : static_cast<int>(req->limit());
      auto jobs = c_->store_->ListJobs(f);
      if (!jobs.ok()) return ToGrpc(jobs.status());
      for (auto& j : *jobs) *resp->add_jobs() = std::move(j);
      return grpc::Status::OK;
    }
    grpc::Status CancelJob(grpc::ServerContext* ctx,
                           const v1::CancelJobRequest* req,
                           v1::Job* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWrite));
      MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
      grpc::Status st = Assign(c_->store_->CancelJob(req->job_id()), resp);
      if (st.ok()) c_->PublishJob(*resp);
      return st;
    }
    grpc::Status RetryJob(grpc::ServerContext* ctx,
                          const v1::RetryJobRequest* req,
                          v1::Job* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWrite));
      MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
      grpc::Status st = Assign(c_->store_->RetryJob(req->job_id()), resp);
      if (st.ok()) {
        c_->dispatcher_.Notify();
        c_->PublishJob(*resp);
      }
      return st;
    }
    grpc::Status QueryMetrics(grpc::ServerContext* ctx,
                              const v1::QueryMetricsRequest* req,
                              v1::QueryMetricsResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      std::string token;
      auto rows = c_->store_->QueryMetrics(req->filter(), &token);
      if (!rows.ok()) return ToGrpc(rows.status());
      for (auto& r : *rows) *resp->add_rows() = std::move(r);
      resp->set_next_page_token(token);
      return grpc::Status::OK;
    }
    grpc::Status SummarizeSweep(grpc::ServerContext* ctx,
                                const v1::SummarizeSweepRequest* req,
                                v1::SummarizeSweepResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      MIXCAL_GRPC_CHECK(PositiveId("sweep_id", req->sweep_id()));
      auto rows =
          c_->store_->SummarizeSweep(req->sweep_id(), req->at(), req->split());
      if (!rows.ok()) return ToGrpc(rows.status());
      for (auto& r : *rows) *resp->add_rows() = std::move(r);
      return grpc::Status::OK;
    }
    grpc::Status GetReliability(grpc::ServerContext* ctx,
                                const v1::GetReliabilityRequest* req,
                                v1::GetReliabilityResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      MIXCAL_GRPC_CHECK(PositiveId("job_id", req->job_id()));
      auto m =
          c_->store_->GetReliability(req->job_id(), req->epoch(), req->split());
      if (!m.ok()) return ToGrpc(m.status());
      resp->set_epoch(m->epoch());
      resp->set_split(m->split());
      *resp->mutable_bins() = m->bins();
      resp->set_ece(m->ece());
      resp->set_mce(m->mce());
      resp->set_oe(m->oe());
      return grpc::Status::OK;
    }
    grpc::Status ListWorkers(grpc::ServerContext* ctx,
                             const v1::ListWorkersRequest*,
                             v1::ListWorkersResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      auto w = c_->store_->ListWorkers();
      if (!w.ok()) return ToGrpc(w.status());
      for (auto& x : *w) *resp->add_workers() = std::move(x);
      return grpc::Status::OK;
    }
    grpc::Status ListEvents(grpc::ServerContext* ctx,
                            const v1::ListEventsRequest* req,
                            v1::ListEventsResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kRead));
      if (req->limit() > 10000) {
        return grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("limit must be in [1, 10000], got ", req->limit()));
      }
      auto e = c_->store_->ListEvents(req->sweep_id(), req->job_id(),
                                      req->after_id(),
                                      static_cast<int>(req->limit()));
      if (!e.ok()) return ToGrpc(e.status());
      for (auto& x : *e) *resp->add_events() = std::move(x);
      return grpc::Status::OK;
    }

    grpc::ServerWriteReactor<v1::SweepUpdate>* WatchSweep(
        grpc::CallbackServerContext* ctx,
        const v1::WatchSweepRequest* req) override {
      auto* r = new WatchReactor(&c_->hub_, req->sweep_id());
      absl::Status auth = c_->auth_.Check(*ctx, Permission::kRead);
      if (auth.ok()) auth = PositiveId("sweep_id", req->sweep_id());
      absl::StatusOr<v1::Sweep> sweep =
          auth.ok() ? c_->store_->GetSweep(req->sweep_id())
                    : absl::StatusOr<v1::Sweep>(auth);
      if (!sweep.ok()) {
        r->FinishNow(ToGrpc(sweep.status()));
        return r;
      }
      // Subscribe before the snapshot: a change in between is sent twice at
      // worst, never lost.
      c_->hub_.Subscribe(req->sweep_id(), r);
      sweep = c_->store_->GetSweep(req->sweep_id());
      storage::JobFilter f;
      f.sweep_id = req->sweep_id();
      f.limit = 10000;
      auto jobs = c_->store_->ListJobs(f);
      if (!sweep.ok() || !jobs.ok()) {
        r->FinishNow(ToGrpc(sweep.ok() ? jobs.status() : sweep.status()));
        return r;
      }
      for (const v1::Job& j : *jobs) {
        v1::SweepUpdate u;
        *u.mutable_job() = j;
        r->Push(u);
      }
      v1::SweepUpdate u;
      *u.mutable_sweep() = *sweep;
      r->Push(u);  // ends the stream right away when the sweep already ended
      return r;
    }

   private:
    template <typename T>
    static grpc::Status Assign(absl::StatusOr<T> v, T* out) {
      if (!v.ok()) return ToGrpc(v.status());
      *out = *std::move(v);
      return grpc::Status::OK;
    }
    CoordinatorImpl* c_;
  };

  class WorkerImpl : public v1::WorkerService::WithCallbackMethod_AcquireJob<
                         v1::WorkerService::WithCallbackMethod_StreamReports<
                             v1::WorkerService::Service>> {
   public:
    explicit WorkerImpl(CoordinatorImpl* c) : c_(c) {}

    grpc::Status RegisterWorker(grpc::ServerContext* ctx,
                                const v1::RegisterWorkerRequest* req,
                                v1::RegisterWorkerResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWorker));
      v1::WorkerInfo info;
      info.set_host(req->host());
      info.set_device(req->device());
      info.set_device_name(req->device_name());
      info.set_memory_bytes(req->memory_bytes());
      *info.mutable_capabilities() = req->capabilities();
      info.set_name(req->name());
      auto id = c_->store_->RegisterWorker(info);
      if (!id.ok()) return ToGrpc(id.status());
      resp->set_worker_id(*id);
      resp->set_heartbeat_interval_ms(
          static_cast<uint32_t>(c_->options_.heartbeat_ms));
      resp->set_lease_ms(static_cast<uint32_t>(c_->options_.lease_ms));
      return grpc::Status::OK;
    }

    grpc::ServerUnaryReactor* AcquireJob(
        grpc::CallbackServerContext* ctx, const v1::AcquireJobRequest* req,
        v1::AcquireJobResponse* resp) override {
      const uint32_t wait = req->wait_ms() == 0 ? 10000 : req->wait_ms();
      auto* r = new AcquireReactor(
          &c_->dispatcher_, req->worker_id(),
          absl::Now() + absl::Milliseconds(std::min<uint32_t>(wait, 60000)),
          resp);
      absl::Status auth = c_->auth_.Check(*ctx, Permission::kWorker);
      if (auth.ok()) auth = PositiveId("worker_id", req->worker_id());
      if (auth.ok() && req->wait_ms() > 60000) {
        auth = absl::InvalidArgumentError(absl::StrCat(
            "wait_ms must be in [0, 60000], got ", req->wait_ms()));
      }
      if (!auth.ok()) {
        r->Finish(ToGrpc(auth));
        return r;
      }
      c_->dispatcher_.Add(r);
      return r;
    }

    grpc::Status Heartbeat(grpc::ServerContext* ctx,
                           const v1::HeartbeatRequest* req,
                           v1::HeartbeatResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWorker));
      std::vector<v1::Lease> leases(req->leases().begin(), req->leases().end());
      auto r = c_->store_->Heartbeat(req->worker_id(), leases,
                                     c_->options_.lease_ms * 1000);
      if (!r.ok()) return ToGrpc(r.status());
      for (auto& l : r->extended) *resp->add_extended() = l;
      for (auto& l : r->cancelled) *resp->add_cancelled() = l;
      for (auto& l : r->lost) *resp->add_lost() = l;
      return grpc::Status::OK;
    }
    grpc::Status ReportEpoch(grpc::ServerContext* ctx,
                             const v1::ReportEpochRequest* req,
                             v1::ReportEpochResponse*) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWorker));
      // Through the report writer, so that concurrent calls are stored
      // together, as streamed reports are.
      v1::WorkerReport report;
      *report.mutable_epoch() = *req;
      return ToGrpc(c_->writer_.StoreOne(std::move(report)).status);
    }
    grpc::ServerBidiReactor<v1::WorkerReport, v1::ReportAcks>* StreamReports(
        grpc::CallbackServerContext* ctx) override {
      return new ReportReactor(&c_->writer_,
                               c_->auth_.Check(*ctx, Permission::kWorker));
    }
    grpc::Status ReportCheckpoint(grpc::ServerContext* ctx,
                                  const v1::ReportCheckpointRequest* req,
                                  v1::ReportCheckpointResponse*) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWorker));
      return ToGrpc(c_->store_->RecordCheckpoint(req->lease(), req->epoch(),
                                                 req->path()));
    }
    grpc::Status FinishJob(grpc::ServerContext* ctx,
                           const v1::FinishJobRequest* req,
                           v1::FinishJobResponse* resp) override {
      MIXCAL_GRPC_CHECK(c_->auth_.Check(*ctx, Permission::kWorker));
      auto st =
          c_->store_->FinishJob(req->lease(), req->outcome(), req->error());
      if (!st.ok()) return ToGrpc(st.status());
      resp->set_state(*st);
      c_->PublishJobId(req->lease().job_id());
      return grpc::Status::OK;
    }

   private:
    CoordinatorImpl* c_;
  };

  CoordinatorOptions options_;
  std::unique_ptr<Store> store_;
  Authenticator auth_;
  Hub hub_;
  Dispatcher dispatcher_;
  ReportWriter writer_;  // outlives the server: streams end before it stops
  ExperimentImpl experiment_;
  WorkerImpl worker_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex reaper_mu_;
  bool stop_reaper_ ABSL_GUARDED_BY(reaper_mu_) = false;
  std::thread reaper_;
};

bool IsLoopback(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (!host.empty() && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const char* what) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat(what, " ", path, ": cannot read"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(
    const CoordinatorOptions& o) {
  if (o.lease_ms < 100 || o.lease_ms > 3600000) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease (--lease_seconds) must be in [0.1, 3600] s, got ",
                     o.lease_ms / 1000.0));
  }
  if (o.heartbeat_ms < 10 || o.heartbeat_ms * 2 > o.lease_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "heartbeat (--heartbeat_seconds) must be at least 0.01 s and at most "
        "half the lease (",
        o.lease_ms / 2000.0, " s), got ", o.heartbeat_ms / 1000.0, " s"));
  }
  const bool tls = !o.tls_cert_file.empty() || !o.tls_key_file.empty();
  if (tls && (o.tls_cert_file.empty() || o.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key");
  }
  if (!IsLoopback(o.listen) && !o.insecure && (!tls || o.tokens_file.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to listen on ", o.listen,
                     " without TLS and a tokens file; give --tls_cert, "
                     "--tls_key and --tokens_file, or "
                     "--insecure to accept the risk"));
  }
  Authenticator auth = Authenticator::Open();
  if (!o.tokens_file.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(auth, Authenticator::FromFile(o.tokens_file));
  }
  storage::StoreOptions so;
  so.path = o.db_path;
  so.clock = o.clock;
  MIXCAL_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(so));

  auto impl =
      std::make_unique<CoordinatorImpl>(o, std::move(store), std::move(auth));
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (tls) {
    MIXCAL_ASSIGN_OR_RETURN(std::string cert,
                            ReadFile(o.tls_cert_file, "TLS certificate"));
    MIXCAL_ASSIGN_OR_RETURN(std::string key,
                            ReadFile(o.tls_key_file, "TLS key"));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen, creds, &impl->port_);
  builder.RegisterService(&impl->experiment_);
  builder.RegisterService(&impl->worker_);
  builder.SetMaxReceiveMessageSize(o.max_message_bytes);
  // Workers ping their long-lived report streams every 20 s.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.SetMaxSendMessageSize(o.max_message_bytes * 4);
  impl->server_ = builder.BuildAndStart();
  if (impl->server_ == nullptr || impl->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen));
  }
  CoordinatorImpl* raw = impl.get();
  impl->reaper_ = std::thread([raw] { raw->ReapLoop(); });
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<CoordinatorImpl> impl)
    : impl_(std::move(impl)) {}

Coordinator::~Coordinator() { Shutdown(); }

int Coordinator::port() const { return impl_->port_; }

void Coordinator::Wait() { impl_->server_->Wait(); }

void Coordinator::Shutdown() {
  {
    absl::MutexLock lock(&impl_->reaper_mu_);
    if (impl_->stop_reaper_) return;
    impl_->stop_reaper_ = true;
  }
  impl_->reaper_.join();
  impl_->server_->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
  impl_->writer_.Stop();
}

}  // namespace mixcal::server
