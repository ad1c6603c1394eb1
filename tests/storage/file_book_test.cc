// The file book on a real file store: uploads checked against their
// declaration, stored once, and found again by hash.

#include "spec/sha256.h"
#include "storage/file_book.h"

#include <filesystem>

#include "tests/storage/store_fixture.h"

namespace mixcal::storage {
namespace {

namespace fs = std::filesystem;

class FileBookTest : public StoreTest {
 protected:
  v1::FileChunk First(const std::string& bytes,
                      const std::string& kind = "data") {
    v1::FileChunk c;
    c.set_kind(kind);
    c.set_name("train.npz");
    c.set_size(bytes.size());
    c.set_sha256(spec::Sha256Hex(bytes));
    return c;
  }
  absl::StatusOr<v1::StoredFile> Put(const std::string& bytes,
                                     uint64_t limit = kDefaultMaxFileBytes) {
    auto up = store_->files().BeginUpload(First(bytes), "alice", limit);
    if (!up.ok()) return up.status();
    if (absl::Status s = (*up)->Append(bytes); !s.ok()) return s;
    return (*up)->Finish();
  }
};

TEST_F(FileBookTest, Sha256IsTheStandardOne) {
  // FIPS 180-2's "abc" and the empty string.
  EXPECT_EQ(spec::Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(spec::Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(FileBookTest, AFileIsStoredOnceAndFoundByItsHash) {
  auto first = Put("some arrays");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->existed());
  EXPECT_EQ(first->submitter(), "alice");
  auto again = Put("some arrays");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->existed());
  auto found = store_->files().Find(first->sha256());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->first.size(), 11u);
  EXPECT_EQ(found->second, path_ + ".files/" + first->sha256());
  EXPECT_EQ(fs::status(found->second).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto listed = store_->files().ListFiles("data");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  EXPECT_TRUE(store_->files().ListFiles("model")->empty());
  EXPECT_FALSE(store_->files().ListFiles("weights").ok());
  // Its bytes gone from the disk: DataLoss naming it, not a short read.
  fs::remove(found->second);
  auto lost = store_->files().Find(first->sha256());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(lost.status().message().find(first->sha256()), std::string::npos);
  EXPECT_EQ(store_->files().Find(spec::Sha256Hex("never")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FileBookTest, AnUploadThatIsRefusedOrAbandonedLeavesNothing) {
  EXPECT_EQ(Put(std::string(2000, 'x'), 1000).status().code(),
            absl::StatusCode::kInvalidArgument);
  {
    auto up = store_->files().BeginUpload(First("abcdef"), "", 1000);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->Append("abc").ok());
    // Abandoned: the client went away.
  }
  {
    auto up = store_->files().BeginUpload(First("abcdef"), "", 1000);
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE((*up)->Append("abcdeF").ok());
    auto done = (*up)->Finish();
    EXPECT_EQ(done.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(done.status().message().find("sha256"), std::string::npos);
  }
  v1::FileChunk bad = First("abc");
  bad.set_sha256("ABC");
  EXPECT_FALSE(store_->files().BeginUpload(bad, "", 1000).ok());
  EXPECT_TRUE(store_->files().ListFiles("")->empty());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path_ + ".files", ec))
    ADD_FAILURE() << "left behind: " << e.path();
}

TEST(FileBookMemoryTest, AStoreInMemoryKeepsNoFiles) {
  auto store = Store::Open({.path = ":memory:"});
  ASSERT_TRUE(store.ok());
  v1::FileChunk c;
  c.set_kind("model");
  c.set_size(1);
  c.set_sha256(spec::Sha256Hex("x"));
  EXPECT_EQ((*store)->files().BeginUpload(c, "", 10).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mixcal::storage
