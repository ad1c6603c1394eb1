// mixcal predictions JOB [--epoch N] [--split S] --out FILE.npz|FILE.csv:
// a job's kept predictions (GetPredictions, in chunks) written for NumPy
// (np.load: probabilities float16 [count, classes], labels int32 [count])
// or as CSV.

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calib/predictions.h"
#include "client/commands.h"
#include "client/output.h"

namespace mixcal::client {
namespace {

void Put16(std::string* s, uint32_t v) {
  s->push_back(static_cast<char>(v & 0xff));
  s->push_back(static_cast<char>((v >> 8) & 0xff));
}
void Put32(std::string* s, uint32_t v) {
  Put16(s, v & 0xffff);
  Put16(s, v >> 16);
}

// One .npy file (format 1.0): the header dict padded so data starts at a
// multiple of 64 bytes.
std::string Npy(const std::string& descr, const std::string& shape,
                const std::string& data) {
  std::string dict = absl::StrCat("{'descr': '", descr,
                                  "', 'fortran_order': False, 'shape': ", shape,
                                  ", }");
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  Put16(&out, static_cast<uint32_t>(dict.size()));
  return out + dict + data;
}

// A zip archive of stored (uncompressed) files: what np.load reads as .npz.
std::string Zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  for (const auto& [name, data] : files) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(data.data()),
              static_cast<uInt>(data.size())));
    const uint32_t offset = static_cast<uint32_t>(out.size());
    auto header = [&](std::string* s, bool central_entry) {
      Put32(s, central_entry ? 0x02014b50 : 0x04034b50);
      if (central_entry) Put16(s, 20);  // made by
      Put16(s, 20);                     // needed: 2.0
      Put16(s, 0);                      // flags
      Put16(s, 0);                      // stored
      Put16(s, 0);                      // time
      Put16(s, 0x21);                   // date: 1980-01-01
      Put32(s, crc);
      Put32(s, static_cast<uint32_t>(data.size()));
      Put32(s, static_cast<uint32_t>(data.size()));
      Put16(s, static_cast<uint32_t>(name.size()));
      Put16(s, 0);  // extra
      if (central_entry) {
        Put16(s, 0);  // comment
        Put16(s, 0);  // disk
        Put16(s, 0);  // internal attributes
        Put32(s, 0);  // external attributes
        Put32(s, offset);
      }
      *s += name;
    };
    header(&out, false);
    out += data;
    header(&central, true);
  }
  const uint32_t central_offset = static_cast<uint32_t>(out.size());
  out += central;
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, static_cast<uint32_t>(files.size()));
  Put16(&out, static_cast<uint32_t>(files.size()));
  Put32(&out, static_cast<uint32_t>(central.size()));
  Put32(&out, central_offset);
  Put16(&out, 0);
  return out;
}

}  // namespace

int PredictionsCmd(const Parsed& p, Session& s, std::ostream& out,
                   std::ostream& err, bool) {
  int64_t job;
  if (!ParseId("JOB", p.positional[0], &job, err)) return kUsage;
  uint32_t epoch = 0;
  if (p.Has("epoch") &&
      (!absl::SimpleAtoi(p.Get("epoch"), &epoch) || epoch == 0)) {
    err << "mixcal: --epoch must be a positive number, got \"" << p.Get("epoch")
        << "\"\n";
    return kUsage;
  }
  const std::string path = p.Get("out");
  const bool npz = absl::EndsWith(path, ".npz");
  if (!npz && !absl::EndsWith(path, ".csv")) {
    err << "mixcal: --out must name a .npz or .csv file, got \"" << path
        << "\"\n";
    return kUsage;
  }
  v1::GetPredictionsRequest req;
  req.set_job_id(job);
  req.set_epoch(epoch);
  req.set_split(p.Get("split", "test"));
  grpc::ClientContext ctx;
  s.Prepare(ctx, /*deadline=*/false);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  auto reader = s.api().GetPredictions(&ctx, req);
  v1::Predictions all, chunk;
  bool first = true;
  while (reader->Read(&chunk)) {
    if (first) {
      all = chunk;
      first = false;
      continue;
    }
    if (chunk.first_row() * 4 != all.labels().size()) {
      ctx.TryCancel();
      err << "mixcal: predictions arrived out of order (row "
          << chunk.first_row() << " after " << all.labels().size() / 4 << ")\n";
      reader->Finish().ok();
      return kServerError;
    }
    all.mutable_probabilities()->append(chunk.probabilities());
    all.mutable_labels()->append(chunk.labels());
    all.mutable_label_log_probs()->append(chunk.label_log_probs());
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return s.Fail(st);
  absl::StatusOr<std::vector<float>> probs =
      calib::DecodeProbabilities(all.probabilities(), all.count(),
                                 static_cast<int>(all.classes()));
  absl::StatusOr<std::vector<int32_t>> labels = calib::DecodeLabels(
      all.labels(), all.count(), static_cast<int>(all.classes()));
  if (!probs.ok() || !labels.ok()) {
    err << "mixcal: the predictions of job " << job << " are damaged: "
        << (probs.ok() ? labels.status() : probs.status()).message() << "\n";
    return kServerError;
  }
  // Each label's float32 log-probability, when the worker kept them: what
  // NLL needs where float16 probabilities round to 0.
  const bool log_probs =
      all.label_log_probs().size() == 4 * static_cast<size_t>(all.count());
  auto log_p = [&](uint32_t i) {
    float v;
    std::memcpy(&v, all.label_log_probs().data() + 4 * i, 4);
    return v;
  };
  std::string text;
  if (npz) {
    std::vector<std::pair<std::string, std::string>> arrays = {
        {"probabilities.npy",
         Npy("<f2", absl::StrCat("(", all.count(), ", ", all.classes(), ")"),
             all.probabilities())},
        {"labels.npy",
         Npy("<i4", absl::StrCat("(", all.count(), ",)"), all.labels())}};
    if (log_probs) {
      arrays.push_back(
          {"label_log_probs.npy",
           Npy("<f4", absl::StrCat("(", all.count(), ",)"),
               all.label_log_probs())});
    }
    text = Zip(arrays);
  } else {
    text = "row,label";
    if (log_probs) text += ",log_p_label";
    for (uint32_t k = 0; k < all.classes(); ++k) absl::StrAppend(&text, ",p", k);
    text += "\n";
    for (uint32_t i = 0; i < all.count(); ++i) {
      absl::StrAppend(&text, i, ",", (*labels)[i]);
      if (log_probs) absl::StrAppend(&text, ",", absl::StrFormat("%.9g", log_p(i)));
      for (uint32_t k = 0; k < all.classes(); ++k)
        absl::StrAppend(&text, ",", absl::StrFormat("%.6g", (*probs)[i * all.classes() + k]));
      text += "\n";
    }
  }
  if (!WriteOutputFile(path, text, p.Get("format", "text"), out, err))
    return kServerError;
  if (p.Get("format", "text") == "text") {
    out << "job " << job << ", epoch " << all.epoch() << ", split "
        << all.split() << ": " << all.count() << " examples x "
        << all.classes() << " classes\n";
  }
  return kOk;
}

}  // namespace mixcal::client
