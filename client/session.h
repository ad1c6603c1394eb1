#ifndef MIXCAL_CLIENT_SESSION_H_
#define MIXCAL_CLIENT_SESSION_H_

// One command's connection to the coordinator: address, token and TLS CA
// from the flags or the environment, deadlines and the token on each call,
// and how a failed call is reported.

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "client/args.h"
#include "grpcpp/grpcpp.h"
#include "mixcal/v1/experiment.grpc.pb.h"

namespace mixcal::client {

class Session {
 public:
  // Address from --address, else $MIXCAL_ADDRESS (127.0.0.1:7707); the
  // token from --token, --token-file, $MIXCAL_TOKEN or $MIXCAL_TOKEN_FILE,
  // in that order; --tls-ca (else $MIXCAL_TLS_CA) turns TLS on.
  Session(const Parsed& p, std::ostream& err);
  // Builds the channel; false (the error printed) when the CA or the token
  // file cannot be read.
  bool Connect();
  // A 60 s deadline (unless `deadline` is false: streams) and the token.
  void Prepare(grpc::ClientContext& ctx, bool deadline = true);
  // Prints the error, saying how to start a coordinator when none answers;
  // returns kServerError.
  int Fail(const grpc::Status& s);
  v1::ExperimentService::Stub& api() { return *stub_; }
  // HOST:PORT of the coordinator.
  const std::string& address() const { return address_; }
  // One unary call with the deadline and the token:
  //   s.Call(&v1::ExperimentService::Stub::GetSweep, req, &sweep);
  template <typename Req, typename Resp>
  grpc::Status Call(grpc::Status (v1::ExperimentService::Stub::*rpc)(
                        grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    Prepare(ctx);
    return (stub_.get()->*rpc)(&ctx, req, resp);
  }
  // Every page of QueryMetrics for `req`, each handed to `page` in order;
  // the first failed call's status.
  grpc::Status ForEachMetricsPage(
      v1::QueryMetricsRequest req,
      const std::function<void(const v1::QueryMetricsResponse&)>& page);
  // Every event ListEvents has for `req` (its sweep and job), oldest first,
  // page after page (after_id), each handed to `event`; the first failed
  // call's status.
  grpc::Status ForEachEvent(v1::ListEventsRequest req,
                            const std::function<void(v1::Event&)>& event);

 private:
  std::ostream& err_;
  std::string address_, token_, token_file_, tls_ca_;
  bool insecure_ = false;  // --insecure: a token may go in plaintext
  std::unique_ptr<v1::ExperimentService::Stub> stub_;
};

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_SESSION_H_
