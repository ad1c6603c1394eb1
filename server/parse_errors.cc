#include "server/parse_errors.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
// SetLogHandler and LogLevel: protobuf 3.21 has no other way to take over
// its log. They are declared in stubs/logging.h, an implementation header
// that the public message_lite.h includes; we include the public one.
// (Protobuf 22 and later log through Abseil: this becomes an absl::LogSink.)
#include "google/protobuf/message_lite.h"
#include "server/grpc_status.h"

namespace mixcal::server {
namespace {

// The field of the last UTF-8 parse error on this thread: gRPC parses a
// request and sends its failure status on the same thread, so the
// interceptor below finds it here.
thread_local std::string last_bad_utf8_field;

void OnProtobufLog(google::protobuf::LogLevel, const char* filename,
                   int line, const std::string& message) {
  // "String field 'mixcal.v1.SweepSpec.name' contains invalid UTF-8 data
  // when parsing a protocol buffer. ..."
  static const std::string kField = "String field '";
  if (absl::StrContains(message, "invalid UTF-8") &&
      absl::StrContains(message, "parsing")) {
    const size_t start = message.find(kField);
    if (start != std::string::npos) {
      const size_t from = start + kField.size();
      const size_t end = message.find('\'', from);
      if (end != std::string::npos)
        last_bad_utf8_field = message.substr(from, end - from);
    }
    return;
  }
  NoteServerError(absl::InternalError(
      absl::StrCat("protobuf (", filename, ":", line, "): ", message)));
}

// "mixcal.v1.SweepSpec.name" -> "name"; nested fields keep the message:
// "SweepSpec.name".
std::string ShortField(const std::string& full) {
  absl::string_view f = full;
  if (absl::StartsWith(f, "mixcal.v1.")) f.remove_prefix(10);
  return std::string(f);
}

class ParseErrorInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      // gRPC's own answer to a body it could not parse: INTERNAL (UNIMPLEMENTED
      // from a callback method) without a message, which handlers never give.
      if (s.error_message().empty() &&
          (s.error_code() == grpc::StatusCode::INTERNAL ||
           (s.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
            Known(method_)))) {
        std::string field;
        field.swap(last_bad_utf8_field);
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            field.empty()
                ? absl::StrCat("the request to ", method_,
                               " is not a valid message of its type "
                               "(malformed protobuf)")
                : absl::StrCat(ShortField(field),
                               ": is not valid UTF-8 (every string must be)")));
      }
    }
    methods->Proceed();
  }

 private:
  // Whether "/package.Service/Method" is a method of mixcal's API (a call to
  // an unknown method is UNIMPLEMENTED and stays so).
  static bool Known(const std::string& path) {
    if (path.size() < 2 || path[0] != '/') return false;
    std::string name = path.substr(1);
    std::replace(name.begin(), name.end(), '/', '.');
    return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
               name) != nullptr;
  }

  // The call's own (it outlives the interceptor), not a copy: an
  // interceptor is made for every call, and this is read only when one
  // fails to parse.
  const char* method_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new ParseErrorInterceptor(info);
  }
};

}  // namespace

void InstallProtobufLogHandler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&OnProtobufLog); });
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewParseErrorInterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace mixcal::server
