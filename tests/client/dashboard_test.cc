// The dashboard's HTTP side against an in-process coordinator: what it
// serves, its access rules, and what a page gets when the coordinator is
// down. (The pages in a real browser: tests/dashboard/browser_test.js.)

#include "client/dashboard.h"

#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/coordinator.h"
#include "tests/scratch_dir.h"

namespace mixcal::client {
namespace {

namespace fs = std::filesystem;

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("dash");
    server::CoordinatorOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = (dir_ / "mixcal.db").string();
    auto c = server::Coordinator::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(*c);
    args_.values["address"] = absl::StrCat("127.0.0.1:", coordinator_->port());
    session_ = std::make_unique<Session>(args_, log_);
    ASSERT_TRUE(session_->Connect());
  }
  void TearDown() override {
    dashboard_.reset();
    coordinator_.reset();
    fs::remove_all(dir_);
  }
  void StartDashboard(DashboardOptions o) {
    auto d = Dashboard::Start(*session_, o, log_);
    ASSERT_TRUE(d.ok()) << d.status();
    dashboard_ = std::move(*d);
    client_ =
        std::make_unique<httplib::Client>("127.0.0.1", dashboard_->port());
  }

  fs::path dir_;
  std::unique_ptr<server::Coordinator> coordinator_;
  Parsed args_;
  std::ostringstream log_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<Dashboard> dashboard_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(DashboardTest, APortAnotherDashboardHoldsIsRefusedNotShared) {
  DashboardOptions o;
  o.listen = "127.0.0.1:0";
  StartDashboard(o);
  DashboardOptions again;
  again.listen = absl::StrCat("127.0.0.1:", dashboard_->port());
  auto second = Dashboard::Start(*session_, again, log_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot listen on"),
            std::string::npos)
      << second.status();
}

TEST_F(DashboardTest, ServesPagesAssetsAndJsonFromTheCoordinator) {
  DashboardOptions o;
  o.listen = "127.0.0.1:0";
  StartDashboard(o);
  auto page = client_->Get("/sweep/3");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("/static/app.js"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy")
                .find("default-src 'self'"),
            std::string::npos);
  auto js = client_->Get("/static/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->get_header_value("Content-Type"),
            "application/javascript; charset=utf-8");
  // Served as is: compressing with cpp-httplib's Brotli setting cost more
  // than the transfer.
  auto big = client_->Get("/api/sweeps", {{"Accept-Encoding", "gzip, br"}});
  ASSERT_TRUE(big);
  EXPECT_EQ(big->get_header_value("Content-Encoding"), "");
  auto sweeps = client_->Get("/api/sweeps");
  ASSERT_TRUE(sweeps);
  EXPECT_EQ(sweeps->status, 200);
  EXPECT_EQ(sweeps->body, "[]\n");
  // A bad parameter names itself; an unknown sweep is 404.
  auto bad = client_->Get("/plot/curves.svg?sweep=abc");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("sweep must be a number"), std::string::npos)
      << bad->body;
  auto missing = client_->Get("/api/sweep/42");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("no sweep 42"), std::string::npos)
      << missing->body;
}

TEST_F(DashboardTest, LoopbackAnswersOnlyToItsOwnHostNames) {
  DashboardOptions o;
  o.listen = "127.0.0.1:0";
  StartDashboard(o);
  auto r = client_->Get("/api/sweeps", {{"Host", "attacker.example:80"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  r = client_->Get("/api/sweeps",
                   {{"Host", absl::StrCat("localhost:", dashboard_->port())}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(DashboardTest, OffLoopbackNeedsATokenOrAnExplicitInsecureFlag) {
  DashboardOptions o;
  o.listen = "0.0.0.0:0";
  auto refused = Dashboard::Start(*session_, o, log_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--dashboard-token-file"),
            std::string::npos);
  o.token = "0123456789abcdef-secret";
  StartDashboard(o);
  auto r = client_->Get("/api/sweeps");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = client_->Get("/api/sweeps?token=wrong-token-0123456789");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // The token once in the address: a cookie, and a redirect without it.
  r = client_->Get("/api/sweeps?token=0123456789abcdef-secret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 302);
  const std::string cookie = r->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  r = client_->Get("/api/sweeps",
                   {{"Cookie", "mixcal_dashboard=0123456789abcdef-secret"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = client_->Get("/api/sweeps",
                   {{"Authorization", "Bearer 0123456789abcdef-secret"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(DashboardTest, ACoordinatorThatIsDownIsNamedWithItsAddress) {
  DashboardOptions o;
  o.listen = "127.0.0.1:0";
  StartDashboard(o);
  coordinator_.reset();
  auto r = client_->Get("/api/sweeps");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("cannot reach the coordinator at 127.0.0.1:"),
            std::string::npos)
      << r->body;
}

}  // namespace
}  // namespace mixcal::client
