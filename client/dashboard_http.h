#ifndef MIXCAL_CLIENT_DASHBOARD_HTTP_H_
#define MIXCAL_CLIENT_DASHBOARD_HTTP_H_

// What every handler of `mixcal dashboard` shares (client/dashboard_routes.h
// and client/dashboard_stream.h): the JSON content type, the HTTP status of
// an absl::Status, failures as {"error": ...}, and the ids and integer
// parameters of a request.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace mixcal::client {

// Content types with a parameter: cpp-httplib compresses only the bare
// types, with Brotli at its slowest setting, which took 0.5 s for a
// 1,000-job table (a local dashboard gains nothing from it).
inline constexpr char kJsonContentType[] = "application/json; charset=utf-8";

// 400 for InvalidArgument and OutOfRange, 401, 403, 404, 409 for
// FailedPrecondition, 502 when the coordinator is unreachable or late, 500
// otherwise.
int HttpStatus(absl::StatusCode code);

// The message a page shows for `status`: when the coordinator cannot be
// reached it names `coordinator_address`.
std::string FailureMessage(const absl::Status& status,
                           const std::string& coordinator_address);

// Answers `status` (not OK) as {"error": FailureMessage(...)} with
// HttpStatus(code).
void ReplyFailure(httplib::Response& res, const absl::Status& status,
                  const std::string& coordinator_address);
// Answers 400 {"error": message}.
void ReplyBadRequest(httplib::Response& res, const std::string& message);

// The id a route's pattern matched as (\d+); 0 when out of range (the
// coordinator refuses it, naming the field).
int64_t PathId(const httplib::Request& req);

// The integer query parameter `name` in [min, max]; false, with `*error`
// naming the parameter and the range, when it is missing or not so.
bool IntParam(const httplib::Request& req, const std::string& name, int64_t min,
              int64_t max, int64_t* out, std::string* error);

}  // namespace mixcal::client

#endif  // MIXCAL_CLIENT_DASHBOARD_HTTP_H_
