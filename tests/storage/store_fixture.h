#ifndef MIXCAL_TESTS_STORAGE_STORE_FIXTURE_H_
#define MIXCAL_TESTS_STORAGE_STORE_FIXTURE_H_

// What the store's tests share: a store on a real SQLite file in a fresh
// directory, time moved by hand (ManualClock), the predictions file opened
// through a FullDiskEnv (a full disk on demand), and the helpers that make
// sweeps, reports and workers. A component's tests derive their own suite
// from StoreTest:
//
//   class JobQueueTest : public StoreTest {};
//   TEST_F(JobQueueTest, DeviceClassMatches) { ... Acquire(Worker()) ... }

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "calib/predictions.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/scratch_dir.h"
#include "tests/storage/fault_env.h"

namespace mixcal::storage {

inline constexpr int64_t kLease = 30'000'000;  // 30 s

// Two methods (baseline; mixup at 0.2) times `seeds` seeds, `epochs` (3)
// epochs a job, the test split's predictions kept at every epoch.
inline v1::SweepSpec Spec(const std::string& name, int seeds = 2,
                          int epochs = 3) {
  v1::SweepSpec s;
  s.set_name(name);
  s.mutable_data()->set_dataset("synthetic");
  s.set_model("mlp");
  s.mutable_training()->set_epochs(epochs);
  s.mutable_evaluation()->set_predictions("every_n");
  s.mutable_evaluation()->set_predictions_every(1);
  s.add_methods()->set_name("baseline");
  v1::MethodSpec* m = s.add_methods();
  m->set_name("mixup");
  m->add_values(0.2);
  for (int i = 0; i < seeds; ++i) s.add_seeds(i);
  return s;
}

// One split's metrics at `epoch`: 100 examples, all in the last of 15 bins.
inline v1::EpochMetrics Metrics(uint32_t epoch, const std::string& split,
                                double ece) {
  v1::EpochMetrics m;
  m.set_epoch(epoch);
  m.set_split(split);
  m.set_count(100);
  m.set_accuracy(0.9);
  m.set_ece(ece);
  m.set_nll(0.3);
  for (int b = 0; b < 15; ++b) {
    v1::ReliabilityBin* bin = m.add_bins();
    bin->set_count(b == 14 ? 100 : 0);
    bin->set_confidence_sum(b == 14 ? 97.0 : 0);
    bin->set_correct(b == 14 ? 90 : 0);
  }
  return m;
}

// Kept predictions for a report: `rows` examples of 3 classes; row i puts
// `confident` on class (i + shift) % 3 and the rest evenly; labels i % 3.
inline v1::Predictions MakePredictions(uint32_t epoch, int rows,
                                       float confident, int shift) {
  std::vector<float> p;
  std::vector<int32_t> y;
  for (int i = 0; i < rows; ++i) {
    for (int k = 0; k < 3; ++k)
      p.push_back(k == (i + shift) % 3 ? confident : (1 - confident) / 2);
    y.push_back(i % 3);
  }
  v1::Predictions out;
  out.set_epoch(epoch);
  out.set_split("test");
  out.set_count(static_cast<uint32_t>(rows));
  out.set_classes(3);
  out.set_probabilities(calib::EncodeProbabilities(p));
  out.set_labels(calib::EncodeLabels(y));
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::mixcal::testing::FreshTestDir("store");
    path_ = (dir_ / "mixcal.db").string();
    store_ = OpenStore();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Store> OpenStore(int migrate_to = 0) {
    StoreOptions o;
    o.path = path_;
    o.clock = &clock_;
    o.env = &env_;
    o.migrate_to = migrate_to;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  int64_t Worker(const std::string& device = "cpu") {
    v1::WorkerInfo w;
    w.set_host("host-a");
    w.set_device(device);
    absl::StatusOr<int64_t> id = store_->queue().RegisterWorker(w);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  Assignment Acquire(int64_t worker) {
    absl::StatusOr<std::optional<Assignment>> a =
        store_->queue().AcquireJob(worker, kLease);
    EXPECT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->has_value());
    return **a;
  }
  // Stores the test split's metrics of epochs `from`..`through` (what a job
  // needs stored before it may succeed).
  void StoreEpochs(const v1::Lease& lease, uint32_t through,
                   uint32_t from = 1) {
    for (uint32_t e = from; e <= through; ++e) {
      absl::Status s =
          store_->reports().ReportEpoch(lease, {Metrics(e, "test", 0.1)});
      EXPECT_TRUE(s.ok()) << s;
    }
  }
  // All pages.
  int CountRows(const std::string& split) {
    v1::MetricsFilter f;
    f.set_split(split);
    f.set_page_size(10000);
    int n = 0;
    do {
      std::string token;
      auto rows = store_->metrics().QueryMetrics(f, &token);
      if (!rows.ok()) return -1;
      n += static_cast<int>(rows->size());
      f.set_page_token(token);
    } while (!f.page_token().empty());
    return n;
  }

  std::filesystem::path dir_;
  std::string path_;
  ManualClock clock_;
  FullDiskEnv env_;  // declared before store_: outlives it
  std::unique_ptr<Store> store_;
};

}  // namespace mixcal::storage

#endif  // MIXCAL_TESTS_STORAGE_STORE_FIXTURE_H_
