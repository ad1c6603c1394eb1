#include "client/dashboard_http.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/dashboard_json.h"

namespace mixcal::client {

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 502;
    default:
      return 500;
  }
}

std::string FailureMessage(const absl::Status& status,
                           const std::string& coordinator_address) {
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::StrCat("cannot reach the coordinator at ", coordinator_address,
                        " (", status.message(), ")");
  }
  return std::string(status.message());
}

void ReplyFailure(httplib::Response& res, const absl::Status& status,
                  const std::string& coordinator_address) {
  res.status = HttpStatus(status.code());
  res.set_content(ErrorJson(FailureMessage(status, coordinator_address)) + "\n",
                  kJsonContentType);
}

void ReplyBadRequest(httplib::Response& res, const std::string& message) {
  res.status = 400;
  res.set_content(ErrorJson(message) + "\n", kJsonContentType);
}

int64_t PathId(const httplib::Request& req) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(req.matches[1].str(), &id)) return 0;
  return id;
}

bool IntParam(const httplib::Request& req, const std::string& name, int64_t min,
              int64_t max, int64_t* out, std::string* error) {
  const std::string v = req.get_param_value(name.c_str());
  if (!absl::SimpleAtoi(v, out) || *out < min || *out > max) {
    *error = absl::StrCat(name, " must be a number in [", min, ", ", max,
                          "], got \"", v.substr(0, 40), "\"");
    return false;
  }
  return true;
}

}  // namespace mixcal::client
