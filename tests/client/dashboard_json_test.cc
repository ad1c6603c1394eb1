// The JSON `mixcal dashboard` serves, byte for byte: the browser script
// (client/dashboard_assets.cc) reads these names, and a change here is a
// change there.

#include "client/dashboard_json.h"

#include <cmath>

#include "gtest/gtest.h"

namespace mixcal::client {
namespace {

TEST(DashboardJsonTest, WriterKeepsOrderAndEscapesForAPage) {
  EXPECT_EQ(JsonObject().str(), "{}");
  EXPECT_EQ(JsonObject()
                .Int("n", uint64_t{18446744073709551615u})
                .String("s", "a\"\\<b>&\t")
                .Number("x", 0.1)
                .Number("nan", NAN)
                .Bool("ok", false)
                .Raw("list", JsonList().Add("1").Add("2").str())
                .str(),
            R"({"n":18446744073709551615,"s":"a\"\\\u003cb\u003e\u0026\t",)"
            R"("x":0.1,"nan":null,"ok":false,"list":[1,2]})");
  EXPECT_EQ(JsonList(",\n").Add("{}").Add("{}").str(), "[{},\n{}]");
  EXPECT_EQ(JsonList().str(), "[]");
  EXPECT_EQ(ErrorJson("no such page"), R"({"error":"no such page"})");
}

TEST(DashboardJsonTest, JobCarriesItsLabelStateAndEpochsDefault) {
  v1::Job j;
  j.set_id(7);
  j.set_sweep_id(2);
  j.set_method("mixup");
  j.set_value(0.4);
  j.set_seed(18446744073709551615u);
  j.set_state(v1::RUNNING);
  j.set_last_epoch(3);
  j.set_attempt(1);
  j.set_max_attempts(3);
  j.set_worker_id(5);
  j.set_error("bad \"<input>\" &\n\x01");
  j.set_started_at_us(100);
  EXPECT_EQ(JobJson(j),
            R"({"id":7,"sweep_id":2,"method":"mixup","value":0.4,)"
            R"("label":"mixup 0.4","seed":18446744073709551615,)"
            R"("state":"running","epoch":3,"epochs":10,"attempt":1,)"
            R"("max_attempts":3,"worker":5,)"
            R"("error":"bad \"\u003cinput\u003e\" \u0026\n\u0001",)"
            R"("started_at_us":100,"finished_at_us":0})");
}

TEST(DashboardJsonTest, SweepCarriesItsCountsAndEpochsPerJob) {
  v1::Sweep s;
  s.set_id(1);
  s.set_name("a");
  s.set_state(v1::SWEEP_ACTIVE);
  s.add_job_ids(1);
  s.add_job_ids(2);
  s.mutable_spec()->mutable_training()->set_epochs(4);
  s.mutable_spec()->mutable_data()->set_dataset("synthetic");
  s.mutable_spec()->set_model("mlp");
  s.mutable_counts()->set_running(2);
  s.mutable_counts()->set_epochs_done(3);
  EXPECT_EQ(SweepJson(s),
            R"({"id":1,"name":"a","state":"active","created_at_us":0,)"
            R"("jobs":2,"epochs_per_job":4,"dataset":"synthetic",)"
            R"("model":"mlp","submitter":"","counts":{"queued":0,)"
            R"("running":2,"succeeded":0,"failed":0,"cancelled":0,)"
            R"("epochs_done":3}})");
}

TEST(DashboardJsonTest, WorkerHeartbeatAgeIsNullBeforeTheFirst) {
  v1::WorkerInfo w;
  w.set_id(4);
  w.set_state(v1::WORKER_ACTIVE);
  w.set_host("h");
  w.set_last_heartbeat_us(1'000'000);
  const std::string head =
      R"({"id":4,"name":"","host":"h","device":"","device_name":"",)"
      R"("state":"idle","reason":"","placement":"",)"
      R"("current_job":0,"heartbeat_ago_s":)";
  EXPECT_EQ(WorkerJson(w, 3'500'000), head + "2.5}");
  // Never heard from in over a minute: gone, in words.
  w.set_last_heartbeat_us(0);
  const std::string gone =
      R"({"id":4,"name":"","host":"h","device":"","device_name":"",)"
      R"x("state":"gone (silent)","reason":"","placement":"",)x"
      R"("current_job":0,"heartbeat_ago_s":)";
  EXPECT_EQ(WorkerJson(w, 3'500'000'000), gone + "null}");
}

TEST(DashboardJsonTest, LatestRowHasNineDigitsAndNullForNaN) {
  v1::EpochMetrics m;
  m.set_job_id(7);
  m.set_epoch(2);
  m.set_accuracy(0.875);
  m.set_ece(1.0 / 3);
  m.set_oe(NAN);
  m.set_samples_per_sec(12345.6789);
  EXPECT_EQ(LatestJson(m),
            R"({"job_id":7,"epoch":2,"accuracy":0.875,"ece":0.333333333,)"
            R"("oe":null,"samples_per_sec":12345.6789})");
}

}  // namespace
}  // namespace mixcal::client
