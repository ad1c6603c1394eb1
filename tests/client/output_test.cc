// How the CLI prints messages as JSON, and what it does when protobuf's
// converter refuses one.

#include "client/output.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "google/protobuf/duration.pb.h"
#include "gtest/gtest.h"
#include "mixcal/v1/jobs.pb.h"

namespace mixcal::client {
namespace {

// A Duration past its documented range (+-315,576,000,000 s): protobuf's
// JSON converter refuses it. No mixcal message is refused in practice; this
// stands in for whatever a newer protobuf might refuse.
google::protobuf::Duration Unprintable() {
  google::protobuf::Duration d;
  d.set_seconds(315'576'000'001);
  return d;
}

TEST(ToJsonTest, UsesProtoFieldNamesAndPrintsEveryField) {
  v1::Job job;
  job.set_id(7);
  job.set_method("mixup");
  absl::StatusOr<std::string> json = ToJson(job);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_NE(json->find("\"id\":\"7\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"sweep_id\":\"0\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"last_epoch\":0"), std::string::npos) << *json;
}

TEST(ToJsonTest, ReturnsTheConvertersError) {
  absl::StatusOr<std::string> json = ToJson(Unprintable());
  ASSERT_FALSE(json.ok());
  EXPECT_FALSE(json.status().message().empty());
}

TEST(JsonArrayTest, JoinsMessagesAndFailsOnTheFirstUnprintableOne) {
  std::vector<v1::Job> jobs(2);
  jobs[0].set_id(1);
  jobs[1].set_id(2);
  absl::StatusOr<std::string> json = JsonArray(jobs);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->front(), '[');
  EXPECT_NE(json->find("},\n {"), std::string::npos) << *json;
  EXPECT_EQ(json->back(), ']');

  std::vector<google::protobuf::Duration> durations(2);
  durations[1] = Unprintable();
  EXPECT_FALSE(JsonArray(durations).ok());
}

TEST(PrintJsonTest, PrintsTheTextOrTheErrorWithExitCodeOne) {
  std::ostringstream out, err;
  EXPECT_EQ(PrintJson(ToJson(v1::Job()), out, err), kOk);
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_EQ(err.str(), "");

  std::ostringstream bad_out, bad_err;
  EXPECT_EQ(PrintJson(ToJson(Unprintable()), bad_out, bad_err), kServerError);
  EXPECT_EQ(bad_out.str(), "");
  EXPECT_EQ(bad_err.str().rfind(
                "mixcal: cannot write google.protobuf.Duration as JSON: ", 0),
            0u)
      << bad_err.str();
}

TEST(PrintTableTest, ControlCharactersInCellsAreShownNotObeyed) {
  std::ostringstream out;
  PrintTable(out, {"id", "error"},
             {{"1", std::string("boom\x1b[2J\a\0tail", 14)}, {"2", "line\nbreak"}});
  const std::string text = out.str();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\a'), std::string::npos) << text;
  EXPECT_EQ(text.find(std::string(1, '\0')), std::string::npos) << text;
  EXPECT_NE(text.find("boom\\x1b[2J\\x07\\x00tail"), std::string::npos) << text;
  EXPECT_NE(text.find("line\\x0abreak"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
}

}  // namespace
}  // namespace mixcal::client
