// Files over the wire (storage/file_book.h): a submitter uploads a model in
// chunks, a worker fetches the same bytes by hash; uploads whose bytes do
// not match what they declare are refused and leave nothing.

#include <string>
#include <vector>

#include "spec/sha256.h"
#include "storage/file_book.h"
#include "tests/server/api_fixture.h"

namespace mixcal::server {
namespace {

class FilesTest : public ApiTest {
 protected:
  // Sends `chunks` as they are; the upload's status and answer.
  grpc::Status Upload(const std::vector<v1::FileChunk>& chunks,
                      v1::StoredFile* stored) {
    grpc::ClientContext ctx;
    auto writer = api_->UploadFile(&ctx, stored);
    for (const v1::FileChunk& c : chunks)
      if (!writer->Write(c)) break;
    writer->WritesDone();
    return writer->Finish();
  }
  // `bytes` in chunks of `chunk` bytes, declared truthfully unless told.
  std::vector<v1::FileChunk> Chunks(const std::string& bytes, size_t chunk,
                                    const std::string& sha = "",
                                    uint64_t size = 0) {
    std::vector<v1::FileChunk> out;
    for (size_t at = 0; at < bytes.size() || out.empty(); at += chunk) {
      v1::FileChunk& c = out.emplace_back();
      if (at == 0) {
        c.set_kind("model");
        c.set_name("wrn-16-4.pt");
        c.set_size(size ? size : bytes.size());
        c.set_sha256(sha.empty() ? spec::Sha256Hex(bytes) : sha);
      }
      c.set_data(bytes.substr(at, chunk));
    }
    return out;
  }
  std::vector<v1::StoredFile> Listed() {
    grpc::ClientContext ctx;
    v1::ListFilesRequest r;
    v1::ListFilesResponse resp;
    EXPECT_TRUE(api_->ListFiles(&ctx, r, &resp).ok());
    return {resp.files().begin(), resp.files().end()};
  }
};

TEST_F(FilesTest, AnUploadInChunksIsFetchedByHashByteForByte) {
  Start(false);
  std::string bytes(3 * (1 << 20) + 12345, '\0');
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  v1::StoredFile stored;
  ASSERT_TRUE(Upload(Chunks(bytes, 1 << 20), &stored).ok());
  EXPECT_EQ(stored.sha256(), spec::Sha256Hex(bytes));
  EXPECT_EQ(stored.size(), bytes.size());
  EXPECT_EQ(stored.name(), "wrn-16-4.pt");
  EXPECT_FALSE(stored.existed());
  // Again: stored once.
  v1::StoredFile again;
  ASSERT_TRUE(Upload(Chunks(bytes, 100000), &again).ok());
  EXPECT_TRUE(again.existed());
  ASSERT_EQ(Listed().size(), 1u);

  grpc::ClientContext ctx;
  v1::FetchFileRequest r;
  r.set_sha256(stored.sha256());
  auto reader = workers_->FetchFile(&ctx, r);
  v1::FileChunk chunk;
  std::string fetched;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    if (chunks++ == 0) {
      EXPECT_EQ(chunk.sha256(), stored.sha256());
      EXPECT_EQ(chunk.size(), bytes.size());
      EXPECT_EQ(chunk.kind(), "model");
    }
    EXPECT_LE(chunk.data().size(), size_t{1} << 20);
    fetched += chunk.data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(fetched, bytes);
  EXPECT_EQ(chunks, 4);
}

TEST_F(FilesTest,
       BytesThatDoNotMatchTheirDeclarationAreRefusedAndLeaveNothing) {
  Start(false);
  const std::string bytes(5000, 'm');
  v1::StoredFile stored;
  // A hash of other bytes (a damaged upload).
  grpc::Status st =
      Upload(Chunks(bytes, 1000, spec::Sha256Hex("other")), &stored);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("sha256: the bytes received hash to"),
            std::string::npos)
      << st.error_message();
  // Fewer bytes than declared, and more.
  st = Upload(Chunks(bytes, 1000, "", 6000), &stored);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("declared as 6000 bytes, and 5000 arrived"),
            std::string::npos)
      << st.error_message();
  st = Upload(Chunks(bytes, 1000, "", 4000), &stored);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Over the coordinator's limit, before any byte is kept.
  st = Upload(Chunks(bytes, 1000, "", uint64_t{1} << 40), &stored);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("size must be in [1, 536870912] bytes"),
            std::string::npos)
      << st.error_message();
  // No kind; a later chunk that tries to redeclare.
  std::vector<v1::FileChunk> c = Chunks(bytes, 1000);
  c[0].set_kind("weights");
  st = Upload(c, &stored);
  EXPECT_NE(st.error_message().find("kind must be model or data"),
            std::string::npos);
  c = Chunks(bytes, 1000);
  c[2].set_sha256(spec::Sha256Hex(bytes));
  st = Upload(c, &stored);
  EXPECT_NE(st.error_message().find("only the first chunk"), std::string::npos);
  EXPECT_TRUE(Listed().empty());
  // Nothing of the refused uploads stays on disk.
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(dir_ / "mixcal.db.files", ec)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
  grpc::ClientContext ctx;
  v1::FetchFileRequest r;
  r.set_sha256(spec::Sha256Hex(bytes));
  auto reader = workers_->FetchFile(&ctx, r);
  v1::FileChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace mixcal::server
