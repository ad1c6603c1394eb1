#ifndef MIXCAL_SERVER_PARSE_ERRORS_H_
#define MIXCAL_SERVER_PARSE_ERRORS_H_

// Requests that cannot be parsed: gRPC answers them INTERNAL with an empty
// message before any handler (or token check) runs, and protobuf logs a line
// for every string field that is not UTF-8. These turn such answers into
// INVALID_ARGUMENT naming the field (or saying the body is not a message of
// the method's type), and keep protobuf's per-request log lines out of the
// coordinator's log (an unauthenticated client could otherwise write a line
// per call).

#include <memory>

#include "grpcpp/support/server_interceptor.h"

namespace mixcal::server {

// Routes protobuf's log through mixcal: UTF-8 parse errors are noted for the
// reply instead of printed; anything else is printed, rate-limited. Once per
// process; later calls do nothing.
void InstallProtobufLogHandler();

// Rewrites gRPC's parse-failure status (INTERNAL, empty message) of every
// method into INVALID_ARGUMENT.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewParseErrorInterceptorFactory();

}  // namespace mixcal::server

#endif  // MIXCAL_SERVER_PARSE_ERRORS_H_
