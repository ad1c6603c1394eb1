#include "client/session.h"

#include <chrono>
#include <utility>

#include "base/address.h"
#include "absl/strings/ascii.h"
#include "base/file.h"

namespace mixcal::client {

Session::Session(const Parsed& p, std::ostream& err) : err_(err) {
  address_ = p.Get("address", Env("MIXCAL_ADDRESS", "127.0.0.1:7707"));
  token_ = p.Get("token");
  if (token_.empty()) token_file_ = p.Get("token-file");
  if (token_.empty() && token_file_.empty()) token_ = Env("MIXCAL_TOKEN", "");
  if (token_.empty() && token_file_.empty())
    token_file_ = Env("MIXCAL_TOKEN_FILE", "");
  tls_ca_ = p.Get("tls-ca", Env("MIXCAL_TLS_CA", ""));
  insecure_ = p.switches.count("insecure") > 0;
}

bool Session::Connect() {
  if (!token_file_.empty()) {
    absl::StatusOr<std::string> t =
        ReadFile(token_file_, "--token-file / MIXCAL_TOKEN_FILE");
    if (!t.ok()) {
      err_ << "mixcal: " << t.status().message() << "\n";
      return false;
    }
    token_ = std::string(absl::StripAsciiWhitespace(*t));
    if (token_.empty()) {
      err_ << "mixcal: token file " << token_file_ << " is empty\n";
      return false;
    }
  }
  if (!token_.empty() && tls_ca_.empty() && !insecure_ &&
      !IsLoopback(address_)) {
    err_ << "mixcal: refusing to send the token in plaintext to " << address_
         << ", which is not this machine: give --tls-ca CA.pem (the "
            "coordinator's TLS), or --insecure to send it anyway\n";
    return false;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (!tls_ca_.empty()) {
    absl::StatusOr<std::string> ca =
        ReadFile(tls_ca_, "--tls-ca / MIXCAL_TLS_CA");
    if (!ca.ok()) {
      err_ << "mixcal: " << ca.status().message() << "\n";
      return false;
    }
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = *std::move(ca);
    creds = grpc::SslCredentials(o);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // A coordinator that comes back is found within ~2 s (the dashboard keeps
  // one channel for hours; gRPC's default backoff grows to 2 minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  stub_ = v1::ExperimentService::NewStub(
      grpc::CreateCustomChannel(address_, creds, args));
  return true;
}

void Session::Prepare(grpc::ClientContext& ctx, bool deadline) {
  if (deadline)
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(60));
  if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
}

int Session::Fail(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    const std::string& m = s.error_message();
    if (!tls_ca_.empty() &&
        (m.find("andshake") != std::string::npos ||
         m.find("SSL") != std::string::npos ||
         m.find("ssl") != std::string::npos ||
         m.find("ertificate") != std::string::npos ||
         m.find("Peer name") != std::string::npos)) {
      err_ << "mixcal: the TLS handshake with " << address_
           << " failed (" << m
           << "): the coordinator may serve plaintext (then drop --tls-ca / "
              "MIXCAL_TLS_CA), or its certificate is not signed by "
           << tls_ca_ << " or not for this host name\n";
    } else if (tls_ca_.empty() && PortAccepts(address_)) {
      err_ << "mixcal: " << address_
           << " accepts connections but does not speak plaintext gRPC ("
           << m
           << "): the coordinator probably serves TLS; give --tls-ca CA.pem "
              "or set MIXCAL_TLS_CA\n";
    } else {
      err_ << "mixcal: cannot reach the coordinator at " << address_ << " ("
           << m
           << "); start it with mixcal-coordinator, or set --address / "
              "MIXCAL_ADDRESS\n";
    }
  } else {
    err_ << "mixcal: " << s.error_message() << "\n";
  }
  return kServerError;
}

grpc::Status Session::ForEachMetricsPage(
    v1::QueryMetricsRequest req,
    const std::function<void(const v1::QueryMetricsResponse&)>& page) {
  do {
    grpc::ClientContext ctx;
    Prepare(ctx);
    v1::QueryMetricsResponse resp;
    grpc::Status st = stub_->QueryMetrics(&ctx, req, &resp);
    if (!st.ok()) return st;
    page(resp);
    req.mutable_filter()->set_page_token(resp.next_page_token());
  } while (!req.filter().page_token().empty());
  return grpc::Status::OK;
}

grpc::Status Session::ForEachEvent(
    v1::ListEventsRequest req, const std::function<void(v1::Event&)>& event) {
  req.set_limit(10000);  // the most one page holds
  while (true) {
    v1::ListEventsResponse page;
    grpc::Status st = Call(&v1::ExperimentService::Stub::ListEvents, req, &page);
    if (!st.ok()) return st;
    for (v1::Event& e : *page.mutable_events()) event(e);
    if (page.events_size() < static_cast<int>(req.limit()))
      return grpc::Status::OK;
    req.set_after_id(page.events(page.events_size() - 1).id());
  }
}
}  // namespace mixcal::client
