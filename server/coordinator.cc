#include "server/coordinator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/address.h"
#include "base/file.h"
#include "base/file_lock.h"
#include "base/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "server/auth.h"
#include "server/autoscaler.h"
#include "server/launcher.h"
#include "server/backends.h"
#include "server/dispatcher.h"
#include "server/experiment_service.h"
#include "server/lease_reaper.h"
#include "server/listener_watch.h"
#include "server/backups.h"
#include "server/parse_errors.h"
#include "server/report_writer.h"
#include "server/watch_hub.h"
#include "server/worker_service.h"
#include "storage/store.h"

namespace mixcal::server {

using storage::Store;

// The coordinator's parts, built in dependency order and destroyed in
// reverse: the store outlives everything that uses it.
class CoordinatorImpl {
 public:
  CoordinatorImpl(const CoordinatorOptions& o, std::unique_ptr<Store> store,
                  Authenticator auth)
      : options_(o),
        clock_(o.clock != nullptr ? o.clock : SystemClock()),
        store_(std::move(store)),
        auth_(std::move(auth)),
        hub_(store_.get(), o.watch_buffer_bytes, o.max_watchers_per_caller),
        dispatcher_(store_.get(), o.lease_ms * 1000, clock_,
                    [this](const v1::Job& j) { hub_.PublishJob(j); }),
        writer_(store_.get(), &hub_, &dispatcher_),
        reaper_(store_.get(), &hub_, &dispatcher_,
                absl::Milliseconds(std::max<int64_t>(50, o.lease_ms / 10)),
                clock_, o.lease_ms * 1000),
        backups_({o.db_path, o.backup_dir, o.backup_every, o.backup_keep}),
        experiment_(Deps()),
        worker_(Deps()) {}

  Backends Deps() {
    return Backends{store_.get(),
                    &auth_,
                    &dispatcher_,
                    &writer_,
                    &hub_,
                    options_.lease_ms,
                    options_.heartbeat_ms,
                    options_.max_unfinished_jobs_per_submitter,
                    options_.max_active_sweeps_per_submitter,
                    options_.max_upload_bytes,
                    &backups_};
  }

  // Builds and starts the gRPC server on `address` (port 0: a free one, put
  // in port_).
  absl::Status Serve(const std::string& address) {
    const CoordinatorOptions& o = options_;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, creds_, &port);
    builder.RegisterService(&experiment_);
    builder.RegisterService(&worker_);
    builder.SetMaxReceiveMessageSize(o.max_message_bytes);
    // Workers ping their long-lived report streams every 20 s.
    builder.AddChannelArgument(
        GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    builder.SetMaxSendMessageSize(o.max_message_bytes * 4);
    // Limits for hostile or broken clients (docs/coordinator.md): handshakes
    // that never finish, headers without end, bursts of calls.
    builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                               o.handshake_timeout_ms);
    builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 << 10);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000);
    // A port another process listens on is refused, not shared: with
    // SO_REUSEPORT (gRPC's default on Linux) a second coordinator would
    // take every other connection.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    grpc::ResourceQuota quota("mixcal-coordinator");
    quota.SetMaxThreads(o.max_threads);
    builder.SetResourceQuota(quota);
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(NewParseErrorInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (server == nullptr || port == 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", address,
          " (another program may be using the port: give another --listen)"));
    }
    absl::MutexLock lock(&server_mu_);
    server_ = std::move(server);
    port_ = port;
    return absl::OkStatus();
  }

  // The listener stopped accepting (server/listener_watch.h): the old
  // server goes (its calls end; workers and watchers reconnect) and a new
  // one serves the same port.
  void Restart() {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stopped_) return;
    }
    std::fprintf(stderr,
                 "mixcal-coordinator: connections wait on port %d and nobody "
                 "accepts them (gRPC stops accepting after running out of "
                 "open files); serving anew on the same port\n",
                 port_);
    std::unique_ptr<grpc::Server> old;
    {
      absl::MutexLock lock(&server_mu_);
      old = std::move(server_);
    }
    old->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    old->Wait();
    old.reset();
    const std::string host =
        options_.listen.substr(0, options_.listen.rfind(':'));
    absl::Status s = Serve(absl::StrCat(host, ":", port_));
    if (!s.ok()) {
      std::fprintf(stderr, "mixcal-coordinator: %s; stopping\n",
                   std::string(s.message()).c_str());
      absl::MutexLock lock(&stop_mu_);
      serve_failed_ = true;
    }
  }

  CoordinatorOptions options_;
  Clock* const clock_;
  // Held until everything below is gone (members go in reverse order).
  std::optional<FileLock> db_lock_;
  std::unique_ptr<Store> store_;
  Authenticator auth_;
  WatchHub hub_;
  Dispatcher dispatcher_;
  ReportWriter writer_;  // outlives the server: streams end before it stops
  LeaseReaper reaper_;
  Backups backups_;
  ExperimentService experiment_;
  WorkerService worker_;
  std::shared_ptr<grpc::ServerCredentials> creds_;
  absl::Mutex server_mu_;
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(server_mu_);
  int port_ = 0;
  std::unique_ptr<ListenerWatch> watch_;
  std::unique_ptr<Launcher> launcher_;
  std::unique_ptr<Autoscaler> autoscaler_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  // Shutdown has finished (Wait() returns then, not before: the caller may
  // destroy the coordinator at once).
  bool shut_down_ ABSL_GUARDED_BY(stop_mu_) = false;
  // A restart could not listen again: Wait() returns.
  bool serve_failed_ ABSL_GUARDED_BY(stop_mu_) = false;
};

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(
    const CoordinatorOptions& o) {
  if (o.lease_ms < 100 || o.lease_ms > 3600000) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease (--lease_seconds) must be in [0.1, 3600] s, got ",
                     o.lease_ms / 1000.0));
  }
  if (o.handshake_timeout_ms < 100 || o.max_threads < 8) {
    return absl::InvalidArgumentError(
        "handshake timeout must be at least 100 ms and max_threads at least 8");
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
    if (!auth.warning().empty()) {
      std::fprintf(stderr, "mixcal-coordinator: warning: %s\n",
                   auth.warning().c_str());
    }
  }
  // One coordinator per database: a second one would lease the same jobs
  // to other workers and expire the first one's leases.
  std::optional<FileLock> db_lock;
  if (o.db_path != ":memory:") {
    absl::StatusOr<FileLock> lock = FileLock::Acquire(o.db_path + ".lock");
    if (absl::IsFailedPrecondition(lock.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "another mixcal-coordinator serves ", o.db_path, " (", o.db_path,
          ".lock is held): stop it first, or give another --db"));
    }
    if (!lock.ok()) return lock.status();
    db_lock.emplace(*std::move(lock));
  }
  storage::StoreOptions so;
  so.path = o.db_path;
  so.clock = o.clock;
  so.check_integrity = o.check_integrity;
  MIXCAL_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(so));

  // A grace period after start-up: the workers of running jobs could not
  // heartbeat while the coordinator was down, and a restart must not cost
  // them their leases (and their unacknowledged reports) before they are
  // back. A lease, and at least 10 s: a short lease (2 s) left no room for
  // a worker whose channel was between reconnect attempts.
  const int64_t grace_ms = std::max<int64_t>(o.lease_ms, 10000);
  bool full_at_start = false;
  {
    Clock* clock = o.clock != nullptr ? o.clock : SystemClock();
    absl::StatusOr<int64_t> extended =
        store->queue().ExtendRunningLeases(clock->NowMicros() + grace_ms * 1000);
    if (storage::IsStorageFull(extended.status())) {
      // Read-only until space is freed: reads are served, writes refused
      // (RESOURCE_EXHAUSTED), and the lease reaper extends the running
      // leases before it judges any.
      full_at_start = true;
      std::fprintf(stderr,
                   "mixcal-coordinator: %s; serving reads only until space is "
                   "freed\n",
                   std::string(extended.status().message()).c_str());
    } else if (!extended.ok()) {
      return extended.status();
    } else if (*extended > 0) {
      std::fprintf(stderr,
                   "mixcal-coordinator: %lld running job(s): their workers "
                   "have %.1f s to reconnect\n",
                   static_cast<long long>(*extended), grace_ms / 1000.0);
    }
  }
  auto impl =
      std::make_unique<CoordinatorImpl>(o, std::move(store), std::move(auth));
  impl->db_lock_ = std::move(db_lock);
  if (full_at_start) impl->reaper_.MarkFull();
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
  // Unparseable requests: INVALID_ARGUMENT naming the field, no log line
  // each (server/parse_errors.h).
  InstallProtobufLogHandler();
  impl->creds_ = creds;
  MIXCAL_RETURN_IF_ERROR(impl->Serve(o.listen));
  impl->watch_ = std::make_unique<ListenerWatch>(
      impl->port_, [p = impl.get()] { p->Restart(); });
  impl->watch_->Start();
  impl->reaper_.Start();
  impl->backups_.Start();
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<CoordinatorImpl> impl)
    : impl_(std::move(impl)) {}

Coordinator::~Coordinator() { Shutdown(); }

int Coordinator::port() const { return impl_->port_; }

void Coordinator::StartLauncher(std::unique_ptr<Launcher> launcher,
                                const AutoscalerOptions& options) {
  if (impl_->autoscaler_ != nullptr) return;
  impl_->launcher_ = std::move(launcher);
  impl_->autoscaler_ = std::make_unique<Autoscaler>(
      impl_->store_.get(), impl_->launcher_.get(), impl_->clock_, options);
  impl_->autoscaler_->Start();
}

void Coordinator::Wait() {
  absl::MutexLock lock(&impl_->stop_mu_);
  impl_->stop_mu_.Await(absl::Condition(
      +[](CoordinatorImpl* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->stop_mu_) {
        return c->shut_down_ || c->serve_failed_;
      },
      impl_.get()));
}

void Coordinator::Shutdown() {
  {
    absl::MutexLock lock(&impl_->stop_mu_);
    if (impl_->stopped_) {
      // Another thread shuts down: return when it has finished.
      impl_->stop_mu_.Await(absl::Condition(&impl_->shut_down_));
      return;
    }
    impl_->stopped_ = true;
  }
  if (impl_->watch_ != nullptr) impl_->watch_->Stop();  // no restart now
  if (impl_->autoscaler_ != nullptr) impl_->autoscaler_->Stop();
  impl_->reaper_.Stop();
  impl_->backups_.Stop();
  impl_->hub_.Stop();  // pending snapshots end, so no stream waits on it
  {
    absl::MutexLock lock(&impl_->server_mu_);
    if (impl_->server_ != nullptr) {
      impl_->server_->Shutdown(std::chrono::system_clock::now() +
                               std::chrono::seconds(2));
    }
  }
  impl_->writer_.Stop();
  absl::MutexLock lock(&impl_->stop_mu_);
  impl_->shut_down_ = true;
}

}  // namespace mixcal::server
