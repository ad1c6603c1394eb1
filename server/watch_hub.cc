#include "server/watch_hub.h"

#include <malloc.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace mixcal::server {

// One WatchSweep stream. Writes one update at a time from its queue; the
// opening snapshot is pushed by the hub's thread, and the stream is not
// finished while that is pending, so the hub never holds a deleted reactor.
using Update = std::shared_ptr<const v1::SweepUpdate>;

// An update held once for every watcher, with the memory it takes.
struct Shared {
  Update update;
  size_t bytes = 0;
};
Shared Share(v1::SweepUpdate u) {
  Shared s;
  s.bytes = u.SpaceUsedLong();
  s.update = std::make_shared<const v1::SweepUpdate>(std::move(u));
  return s;
}

class WatchReactor : public grpc::ServerWriteReactor<v1::SweepUpdate> {
 public:
  WatchReactor(WatchHub* hub, int64_t sweep_id, std::string caller)
      : hub_(hub), sweep_id_(sweep_id), caller_(std::move(caller)) {}

  void Push(const Shared& s) {
    const v1::SweepUpdate& u = *s.update;
    absl::MutexLock lock(&mu_);
    if (finished_ || overflowed_) return;
    // The sweep's end is the stream's last word: anything published after
    // it (a late duplicate from another thread) is dropped, except while
    // the opening snapshot is still being queued.
    if (end_after_ && !snapshot_pending_) return;
    queued_bytes_ += s.bytes;
    if (queued_bytes_ > hub_->max_queued_bytes_) {
      // The client does not read: drop what it has not read and end it.
      overflowed_ = true;
      queue_.clear();
      queued_bytes_ = 0;
      if (!writing_) FinishLocked(OverflowStatus(hub_->max_queued_bytes_));
      return;
    }
    queue_.push_back(s);
    if (u.has_sweep() && Ended(u.sweep().state())) end_after_ = true;
    if (!writing_ && !snapshot_pending_) Next();
  }

  void MarkSnapshotPending() {
    absl::MutexLock lock(&mu_);
    snapshot_pending_ = true;
  }
  bool Cancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_ || finished_;
  }
  // The snapshot is queued (or failed with `s`): writing may start.
  void SnapshotDone(const absl::Status& s) {
    absl::MutexLock lock(&mu_);
    snapshot_pending_ = false;
    if (!s.ok()) {
      FinishLocked(ToGrpc(s));
      return;
    }
    if (cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (!writing_) Next();
  }
  void FinishNow(const grpc::Status& s) {
    absl::MutexLock lock(&mu_);
    FinishLocked(s);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (overflowed_) {
      FinishLocked(OverflowStatus(hub_->max_queued_bytes_));
      return;
    }
    if (!ok) cancelled_ = true;  // the client is gone
    if (cancelled_) {
      if (!snapshot_pending_) FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_ && !snapshot_pending_) FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    hub_->Unsubscribe(sweep_id_, this);
    WatchHub* hub = hub_;
    const std::string caller = caller_;
    const bool counted = counted_;
    delete this;
    if (counted) hub->Closed(caller);
  }
  // Counted in the hub's per-caller numbers (Closed when done).
  void MarkCounted() { counted_ = true; }

 private:
  static grpc::Status OverflowStatus(size_t limit) {
    return grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("this watcher fell behind by more than ", limit,
                     " bytes of unread updates; watch again to resync"));
  }
  void FinishLocked(const grpc::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }
  void Next() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (queue_.empty()) {
      if (end_after_) FinishLocked(grpc::Status::OK);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= std::min(queued_bytes_, current_.bytes);
    writing_ = true;
    StartWrite(current_.update.get());
  }

  WatchHub* const hub_;
  const int64_t sweep_id_;
  const std::string caller_;
  bool counted_ = false;  // set before the stream can end
  absl::Mutex mu_;
  std::deque<Shared> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Shared current_ ABSL_GUARDED_BY(mu_);  // being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_after_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  bool snapshot_pending_ ABSL_GUARDED_BY(mu_) = false;
};

WatchHub::WatchHub(storage::Store* store, size_t max_queued_bytes,
                   int max_per_caller)
    : store_(store),
      max_queued_bytes_(max_queued_bytes),
      max_per_caller_(max_per_caller) {
  thread_ = std::thread([this] { SnapshotLoop(); });
}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Stop() {
  {
    absl::MutexLock lock(&snap_mu_);
    if (stop_) return;
    stop_ = true;
  }
  thread_.join();
  std::deque<Pending> left;
  {
    absl::MutexLock lock(&snap_mu_);
    left.swap(pending_);
  }
  for (const Pending& p : left) {
    p.reactor->SnapshotDone(absl::UnavailableError("shutting down"));
  }
}

grpc::ServerWriteReactor<v1::SweepUpdate>* WatchHub::Watch(
    int64_t sweep_id, const absl::Status& auth, const std::string& caller) {
  auto* r = new WatchReactor(this, sweep_id, caller);
  absl::Status s = auth;
  if (s.ok()) s = PositiveId("sweep_id", sweep_id);
  if (s.ok()) {
    absl::MutexLock lock(&open_mu_);
    int& mine = open_[caller];
    if (mine >= max_per_caller_) {
      s = absl::ResourceExhaustedError(absl::StrCat(
          "too many open watchers: ", caller, " holds ", mine,
          ", the most one caller may (--max_watchers_per_caller); close one "
          "first"));
      if (mine == 0) open_.erase(caller);
    } else {
      ++mine;
      ++open_total_;
      r->MarkCounted();
    }
  }
  if (!s.ok()) {
    r->FinishNow(ToGrpc(s));
    return r;
  }
  r->MarkSnapshotPending();
  absl::MutexLock lock(&snap_mu_);
  if (stop_) {
    r->SnapshotDone(absl::UnavailableError("shutting down"));
    return r;
  }
  pending_.push_back({sweep_id, r});
  return r;
}

void WatchHub::SnapshotLoop() {
  while (true) {
    Pending p;
    {
      absl::MutexLock lock(&snap_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(snap_mu_) {
        return !pending_.empty() || stop_;
      };
      snap_mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      p = pending_.front();
      pending_.pop_front();
    }
    Snapshot(p);
  }
}

void WatchHub::Snapshot(const Pending& p) {
  WatchReactor* r = p.reactor;
  if (r->Cancelled()) {
    r->SnapshotDone(absl::OkStatus());
    return;
  }
  absl::StatusOr<v1::Sweep> sweep = store_->sweeps().GetSweep(p.sweep_id);
  if (!sweep.ok()) {
    r->SnapshotDone(sweep.status());
    return;
  }
  // Subscribe before the snapshot: a change in between is sent twice at
  // worst, never lost.
  Subscribe(p.sweep_id, r);
  sweep = store_->sweeps().GetSweep(p.sweep_id);
  storage::JobFilter f;
  f.sweep_id = p.sweep_id;
  f.limit = kMaxSnapshotJobs;
  absl::StatusOr<std::vector<v1::Job>> jobs = store_->sweeps().ListJobs(f);
  if (!sweep.ok() || !jobs.ok()) {
    r->SnapshotDone(sweep.ok() ? jobs.status() : sweep.status());
    return;
  }
  for (v1::Job& j : *jobs) {
    v1::SweepUpdate u;
    *u.mutable_job() = std::move(j);
    r->Push(Share(std::move(u)));
  }
  v1::SweepUpdate u;
  *u.mutable_sweep() = *std::move(sweep);
  // Ends the stream right away when the sweep already ended.
  r->Push(Share(std::move(u)));
  r->SnapshotDone(absl::OkStatus());
}

int WatchHub::Open() {
  absl::MutexLock lock(&open_mu_);
  return open_total_;
}

void WatchHub::Closed(const std::string& caller) {
  bool none = false;
  {
    absl::MutexLock lock(&open_mu_);
    auto it = open_.find(caller);
    if (it != open_.end() && --it->second <= 0) open_.erase(it);
    none = --open_total_ == 0;
  }
  // What the watchers' queues held stays in malloc's free lists otherwise
  // (hundreds of MB after a burst of stalled watchers).
  if (none) ::malloc_trim(0);
}

void WatchHub::Subscribe(int64_t sweep_id, WatchReactor* w) {
  absl::MutexLock lock(&mu_);
  watchers_.emplace(sweep_id, w);
}

void WatchHub::Unsubscribe(int64_t sweep_id, WatchReactor* w) {
  absl::MutexLock lock(&mu_);
  auto [lo, hi] = watchers_.equal_range(sweep_id);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == w) {
      watchers_.erase(it);
      return;
    }
  }
}

bool WatchHub::Any() {
  absl::MutexLock lock(&mu_);
  return !watchers_.empty();
}

void WatchHub::Publish(int64_t sweep_id, const v1::SweepUpdate& u) {
  absl::MutexLock lock(&mu_);
  auto [lo, hi] = watchers_.equal_range(sweep_id);
  if (lo == hi) return;
  const Shared shared = Share(u);  // one copy for all of them
  for (auto it = lo; it != hi; ++it) it->second->Push(shared);
}

void WatchHub::PublishMetrics(const v1::ReportEpochRequest& report,
                              const v1::Job& job) {
  for (const v1::EpochMetrics& m : report.metrics()) {
    v1::SweepUpdate u;
    v1::EpochMetrics* row = u.mutable_metrics();
    *row = m;
    row->set_job_id(job.id());
    row->set_method(job.method());
    row->set_value(job.value());
    row->set_seed(job.seed());
    Publish(job.sweep_id(), u);
  }
}

void WatchHub::PublishJob(const v1::Job& job) {
  if (!Any()) return;
  v1::SweepUpdate u;
  *u.mutable_job() = job;
  Publish(job.sweep_id(), u);
  PublishSweepIfEnded(job.sweep_id());
}

void WatchHub::PublishJobId(int64_t job_id) {
  if (!Any()) return;
  absl::StatusOr<v1::Job> job = store_->sweeps().GetJob(job_id);
  if (job.ok()) PublishJob(*job);
}

void WatchHub::PublishSweepJobs(int64_t sweep_id) {
  if (!Any()) return;
  storage::JobFilter f;
  f.sweep_id = sweep_id;
  f.limit = kMaxSnapshotJobs;
  absl::StatusOr<std::vector<v1::Job>> jobs = store_->sweeps().ListJobs(f);
  if (!jobs.ok()) return;
  for (v1::Job& j : *jobs) {
    v1::SweepUpdate u;
    *u.mutable_job() = std::move(j);
    Publish(sweep_id, u);
  }
  PublishSweepIfEnded(sweep_id);
}

void WatchHub::PublishSweepIfEnded(int64_t sweep_id) {
  absl::StatusOr<v1::Sweep> sweep = store_->sweeps().GetSweep(sweep_id);
  if (!sweep.ok() || !Ended(sweep->state())) return;
  v1::SweepUpdate u;
  *u.mutable_sweep() = *std::move(sweep);
  Publish(sweep_id, u);
}

}  // namespace mixcal::server
