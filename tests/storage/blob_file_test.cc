// The predictions file beside the database (internal/blob_file.h): its
// hash, a full disk, and kept predictions' bytes written there once and
// read back bit for bit or as DataLoss.

#include "storage/internal/blob_file.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

class PredictionsFileTest : public StoreTest {};

TEST(BlobHashTest, AnySplitOfTheBytesHashesAlikeAndAnyChangeDiffers) {
  std::string bytes;
  for (int i = 0; i < 101; ++i) bytes.push_back(static_cast<char>(i * 37));
  const uint64_t whole = BlobHash(bytes);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    EXPECT_EQ(BlobHash(absl::string_view(bytes).substr(0, cut),
                       absl::string_view(bytes).substr(cut)),
              whole)
        << cut;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string changed = bytes;
    changed[i] ^= 1;
    EXPECT_NE(BlobHash(changed), whole) << i;
  }
  EXPECT_NE(BlobHash(bytes + std::string(1, '\0')), whole);  // zeros appended
}

// The file deleted while open (a clean-up by hand): the next append says
// so and starts a new file at the path, instead of writing into the
// deleted one, whose bytes would vanish with the process. What was in the
// old file reads as DataLoss.
TEST(BlobFileTest, AFileDeletedWhileOpenIsNoticedAtTheNextAppend) {
  const fs::path dir = ::mixcal::testing::FreshTestDir("blob_deleted");
  const std::string path = (dir / "mixcal.db.predictions").string();
  auto f = BlobFile::Open(DefaultEnv(), path);
  ASSERT_TRUE(f.ok()) << f.status();
  auto before = (*f)->Append(std::string(1000, 'a'), std::string(40, 'b'));
  ASSERT_TRUE(before.ok()) << before.status();
  fs::remove(path);
  ::testing::internal::CaptureStderr();
  auto after = (*f)->Append(std::string(500, 'c'), std::string(20, 'd'));
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(log.find(path), std::string::npos) << log;
  EXPECT_NE(log.find("deleted"), std::string::npos) << log;
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 520u);  // the new bytes are on disk
  auto read = (*f)->Read(*after, "job 2");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::string(500, 'c') + std::string(20, 'd'));
  EXPECT_EQ((*f)->Read(*before, "job 1").status().code(),
            absl::StatusCode::kDataLoss);
  f->reset();
  fs::remove_all(dir);
}

TEST(BlobFileTest, NoSpaceLeftIsStorageFullNamingTheFile) {
  // /dev/full refuses every write with ENOSPC, as a full disk does.
  auto f = BlobFile::Open(DefaultEnv(), "/dev/full");
  ASSERT_TRUE(f.ok()) << f.status();
  auto ref = (*f)->Append(std::string(1000, 'p'), std::string(40, 'l'));
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsStorageFull(ref.status())) << ref.status();
  EXPECT_NE(ref.status().message().find("/dev/full"), std::string::npos);
}

TEST_F(PredictionsFileTest, KeptPredictionsLiveInTheirOwnFileWrittenOnce) {
  store_->sweeps().CreateSweep(Spec("pred", 2)).IgnoreError();
  const int64_t w = Worker();
  std::vector<v1::ReportEpochRequest> sent;
  for (int j = 0; j < 2; ++j) {
    Assignment a = Acquire(w);
    v1::ReportEpochRequest r;
    *r.mutable_lease() = a.lease;
    *r.add_metrics() = Metrics(1, "test", 0.1);
    *r.add_predictions() = MakePredictions(1, 100, 0.7f, j);
    ASSERT_TRUE(store_->reports().ReportEpoch(r).ok());
    sent.push_back(r);
  }
  // The bytes went to "<db>.predictions" (owner-only), not into the rows.
  const std::string blobs = path_ + ".predictions";
  ASSERT_TRUE(fs::exists(blobs));
  const size_t one = sent[0].predictions(0).probabilities().size() +
                     sent[0].predictions(0).labels().size();
  EXPECT_EQ(fs::file_size(blobs), 2 * one);
  EXPECT_EQ(fs::status(blobs).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT SUM(length(probabilities) + "
                                 "length(labels)), COUNT(file_offset) FROM "
                                 "predictions",
                                 -1, &q, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(q, 0), 0);
    EXPECT_EQ(sqlite3_column_int64(q, 1), 2);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  // Bit for bit, also after reopening.
  store_.reset();
  store_ = OpenStore();
  for (int j = 0; j < 2; ++j) {
    auto got =
        store_->metrics().GetPredictions(sent[j].lease().job_id(), 0, "");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->probabilities(), sent[j].predictions(0).probabilities());
    EXPECT_EQ(got->labels(), sent[j].predictions(0).labels());
  }
  // A damaged byte, and a file cut short (a machine crash that lost the
  // tail): DataLoss naming the job, never wrong numbers.
  const int64_t second = sent[1].lease().job_id();
  {
    std::fstream f(blobs, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(one + 10));
    f.put('\x7f');
  }
  auto damaged = store_->metrics().GetPredictions(second, 0, "");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(damaged.status().message().find(absl::StrCat("job ", second)),
            std::string::npos)
      << damaged.status();
  EXPECT_TRUE(
      store_->metrics().GetPredictions(sent[0].lease().job_id(), 0, "").ok());
  fs::resize_file(blobs, one + 100);
  auto cut = store_->metrics().GetPredictions(second, 0, "");
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(cut.status().message().find("ends before"), std::string::npos)
      << cut.status();
  // Rows from before the file (schema < 17) keep their bytes in the row.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* u = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "UPDATE predictions SET probabilities = "
                                 "?1, labels = ?2, file_offset = NULL, "
                                 "file_bytes = NULL, file_hash = NULL "
                                 "WHERE job_id = ?3",
                                 -1, &u, nullptr),
              SQLITE_OK);
    const std::string& pr = sent[1].predictions(0).probabilities();
    const std::string& lb = sent[1].predictions(0).labels();
    sqlite3_bind_blob(u, 1, pr.data(), static_cast<int>(pr.size()),
                      SQLITE_STATIC);
    sqlite3_bind_blob(u, 2, lb.data(), static_cast<int>(lb.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(u, 3, second);
    ASSERT_EQ(sqlite3_step(u), SQLITE_DONE);
    sqlite3_finalize(u);
    sqlite3_close(db);
  }
  auto old = store_->metrics().GetPredictions(second, 0, "");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->probabilities(), sent[1].predictions(0).probabilities());
}

}  // namespace
}  // namespace mixcal::storage
