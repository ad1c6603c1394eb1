// mixcal models | data [upload FILE]: the files sweeps can use without
// the workers having them on disk, stored once on the coordinator by their
// SHA-256 (storage/file_book.h).

#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/output.h"
#include "mixcal/v1/files.pb.h"
#include "spec/sha256.h"

namespace mixcal::client {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

std::string Size(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 20))
    return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  if (bytes >= 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrCat(bytes, " B");
}

// The file's size and SHA-256, read once before it is sent.
bool Hash(const std::string& path, uint64_t* size, std::string* sha,
          std::ostream& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "mixcal: cannot read " << path << "\n";
    return false;
  }
  spec::Sha256 hash;
  std::string buffer(kChunk, '\0');
  *size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<size_t>(in.gcount());
    hash.Update({buffer.data(), n});
    *size += n;
  }
  if (in.bad()) {
    err << "mixcal: cannot read " << path << "\n";
    return false;
  }
  *sha = hash.HexDigest();
  return true;
}

}  // namespace

int UploadFile(const std::string& kind, const std::string& path, Session& s,
               std::ostream& err, v1::StoredFile* stored_out) {
  uint64_t size = 0;
  std::string sha;
  if (!Hash(path, &size, &sha, err)) return kUsage;
  std::ifstream in(path, std::ios::binary);
  grpc::ClientContext ctx;
  s.Prepare(ctx, /*deadline=*/false);  // a large file takes its time
  v1::StoredFile stored;
  std::unique_ptr<grpc::ClientWriter<v1::FileChunk>> writer =
      s.api().UploadFile(&ctx, &stored);
  std::string buffer(kChunk, '\0');
  bool first = true;
  uint64_t sent = 0;
  while (first || sent < size) {
    v1::FileChunk chunk;
    if (first) {
      chunk.set_kind(kind);
      const size_t slash = path.find_last_of('/');
      chunk.set_name(slash == std::string::npos ? path
                                                : path.substr(slash + 1));
      chunk.set_size(size);
      chunk.set_sha256(sha);
      first = false;
    }
    in.read(buffer.data(), static_cast<std::streamsize>(
                               std::min<uint64_t>(kChunk, size - sent)));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    sent += static_cast<uint64_t>(in.gcount());
    // A refused upload ends the stream early: Finish says why.
    if (!writer->Write(chunk)) break;
    if (in.gcount() == 0) break;  // the file shrank while it was read
  }
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return s.Fail(st);
  *stored_out = stored;
  return kOk;
}

namespace {

int Upload(const std::string& kind, const std::string& path, Session& s,
           std::ostream& out, std::ostream& err, const std::string& format) {
  v1::StoredFile stored;
  if (int rc = UploadFile(kind, path, s, err, &stored); rc != kOk) return rc;
  if (format == "json") return PrintJson(ToJson(stored), out, err);
  out << (stored.existed() ? "already stored: " : "stored: ") << kind << " "
      << stored.sha256() << " (" << Size(stored.size()) << ", " << stored.name()
      << ")\n";
  return kOk;
}

int List(const std::string& kind, Session& s, std::ostream& out,
         std::ostream& err, const std::string& format) {
  grpc::ClientContext ctx;
  s.Prepare(ctx);
  v1::ListFilesRequest req;
  req.set_kind(kind);
  v1::ListFilesResponse resp;
  grpc::Status st = s.api().ListFiles(&ctx, req, &resp);
  if (!st.ok()) return s.Fail(st);
  if (format == "json") return PrintJson(JsonArray(resp.files()), out, err);
  std::vector<std::vector<std::string>> rows;
  for (const v1::StoredFile& f : resp.files()) {
    rows.push_back({f.sha256(), Size(f.size()), f.name(),
                    f.submitter().empty() ? "-" : f.submitter(),
                    f.first_sweep_id() > 0 ? absl::StrCat(f.first_sweep_id())
                                           : "-",
                    Ago(f.stored_at_us())});
  }
  PrintTable(out, {"sha256", "size", "name", "by", "first sweep", "stored"},
             rows);
  return kOk;
}

}  // namespace

int FilesCmd(const std::string& kind, const Parsed& p, Session& s,
             std::ostream& out, std::ostream& err, bool) {
  const std::string format = p.Get("format");
  if (p.positional.empty()) return List(kind, s, out, err, format);
  if (p.positional[0] != "upload" || p.positional.size() != 2) {
    err << "mixcal: usage: mixcal " << (kind == "model" ? "models" : "data")
        << " [upload FILE]\n";
    return kUsage;
  }
  return Upload(kind, p.positional[1], s, out, err, format);
}

}  // namespace mixcal::client
