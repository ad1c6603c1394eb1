// Your own model and data through the whole service, as a researcher on a
// laptop runs it: examples/own-model writes a TorchScript network and an
// .npz (Debian's PyTorch 1.13 through /usr/bin/python3), `mixcal submit`
// uploads both, a worker fetches them by SHA-256 and trains them.

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/harness.h"

namespace mixcal::testing {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

// The CLI run in `cwd`.
Result Mixcal(const std::string& args, int port, const fs::path& cwd) {
  const std::string err_file =
      "/tmp/mixcal_own_e2e_err_" + std::to_string(getpid());
  const std::string cmd = "cd " + cwd.string() +
                          " && MIXCAL_ADDRESS=127.0.0.1:" +
                          std::to_string(port) + " " + MIXCAL_BIN + " " + args +
                          " 2>" + err_file;
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = Slurp(err_file);
  std::remove(err_file.c_str());
  return r;
}

void Example(const fs::path& dir, const std::string& script,
             const std::string& args, const std::string& out) {
  const std::string cmd = "/usr/bin/python3 " MIXCAL_EXAMPLES_DIR "/" + script +
                          " " + args + " --out " + (dir / out).string() +
                          " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

bool Ended(const v1::Sweep& s) {
  return s.state() == v1::SWEEP_SUCCEEDED || s.state() == v1::SWEEP_FAILED ||
         s.state() == v1::SWEEP_CANCELLED;
}

// The laptop: a directory of its own, away from the workers'.
fs::path Laptop(const Cluster& c) {
  fs::path d = c.dir() / "laptop";
  fs::create_directories(d);
  return d;
}

// test ECE by (job, epoch).
std::map<std::pair<int64_t, uint32_t>, double> Ece(Cluster& c, int64_t sweep) {
  std::map<std::pair<int64_t, uint32_t>, double> out;
  for (const v1::EpochMetrics& m : c.Metrics(sweep, "test"))
    out[{m.job_id(), m.epoch()}] = m.ece();
  return out;
}

TEST(OwnModelEndToEndTest, ARemoteClientsModelAndDataTrainWithEveryEpochStored) {
  Cluster c("own_remote");
  ASSERT_TRUE(c.StartCoordinator());
  const fs::path laptop = Laptop(c);
  Example(laptop, "make_model.py", "--kind cnn --channels 3 --classes 4 --width 8",
          "net.pt");
  Example(laptop, "make_data.py", "--images 300 --size 12 --channels 3",
          "data.npz");
  std::ofstream(laptop / "spec.json") << R"({
  "name": "own-model", "modelFile": "net.pt", "data": {"dataFile": "data.npz"},
  "training": {"epochs": 2, "batchSize": 32},
  "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.4]}],
  "seeds": [0, 1], "evaluation": {"predictions": "final"}})";
  const fs::path cache = c.dir() / "worker-cache";
  c.StartWorker({"--cache_dir=" + cache.string()});
  Result r = Mixcal("submit spec.json --wait", c.port(), laptop);
  ASSERT_EQ(r.code, 0) << r.out << r.err << Slurp(c.WorkerLog(0));
  EXPECT_NE(r.err.find("uploaded: model net.pt"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("sweep 1 succeeded"), std::string::npos) << r.out;
  const v1::Sweep sweep = c.GetSweep(1);
  ASSERT_EQ(sweep.job_ids_size(), 4);
  std::map<int64_t, std::set<uint32_t>> epochs;
  for (const v1::EpochMetrics& m : c.Metrics(1, "test")) {
    EXPECT_TRUE(epochs[m.job_id()].insert(m.epoch()).second);
    EXPECT_EQ(m.count(), 150u);  // the .npz's 150 test images
  }
  for (int64_t job : sweep.job_ids())
    EXPECT_EQ(epochs[job], (std::set<uint32_t>{1, 2})) << "job " << job;

  // The job names the file by hash; the worker keeps it under that name.
  const v1::Job job = c.GetJob(sweep.job_ids(0));
  const std::string hash = job.config().model_file();
  ASSERT_EQ(hash.size(), 64u);
  EXPECT_TRUE(fs::exists(cache / hash));
  // What the data turned out to be, with the training split's statistics.
  EXPECT_NE(job.data().find("\"inputs\": \"3x12x12 images\", \"classes\": 4"),
            std::string::npos)
      << job.data();
  EXPECT_NE(job.data().find("\"normalization\": {\"mean\": ["),
            std::string::npos)
      << job.data();

  // The same file submitted again is stored once; `mixcal models` lists it.
  Result again = Mixcal("submit spec.json --name again", c.port(), laptop);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("already stored: model"), std::string::npos)
      << again.err;
  Result models = Mixcal("models --format json", c.port(), laptop);
  ASSERT_EQ(models.code, 0) << models.err;
  EXPECT_EQ(models.out.find(hash), models.out.rfind(hash)) << models.out;
  EXPECT_NE(models.out.find("\"first_sweep_id\":\"1\""), std::string::npos)
      << models.out;

  // Kept predictions of the user model come back: 150 x 4 probabilities.
  Result kept = Mixcal(absl::StrCat("predictions ", sweep.job_ids(0),
                                    " --out kept.npz"),
                       c.port(), laptop);
  ASSERT_EQ(kept.code, 0) << kept.err;
  const std::string check = "/usr/bin/python3 -c \"import numpy as np; "
                            "k = np.load('" + (laptop / "kept.npz").string() +
                            "'); d = np.load('" + (laptop / "data.npz").string() +
                            "'); assert k['probabilities'].shape == (150, 4); "
                            "assert (k['labels'] == d['y_test']).all(); "
                            "assert abs(k['probabilities'].astype(float).sum(1) "
                            "- 1).max() < 1e-2\"";
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
}

TEST(OwnModelEndToEndTest, AKilledWorkersUserModelResumesToTheSameNumbers) {
  Cluster c("own_resume");
  ASSERT_TRUE(c.StartCoordinator(/*lease_s=*/1.5, /*heartbeat_s=*/0.2));
  const fs::path laptop = Laptop(c);
  Example(laptop, "make_model.py", "--kind cnn --channels 3 --classes 4 --width 8",
          "net.pt");
  Example(laptop, "make_data.py", "--images 3000 --size 12 --channels 3",
          "data.npz");
  const std::string flags =
      " --model-file net.pt --data-file data.npz --methods mixup:0.4 "
      "--epochs 6 --device cpu";
  // The reference: uninterrupted.
  c.StartWorker();
  ASSERT_EQ(Mixcal("submit --name straight --wait" + flags, c.port(), laptop).code,
            0);
  // The same job, its worker killed (-9) after a checkpoint.
  Result r = Mixcal("submit --name killed" + flags, c.port(), laptop);
  ASSERT_EQ(r.code, 0) << r.err;
  const int64_t job = c.GetSweep(2).job_ids(0);
  ASSERT_TRUE(WaitFor([&] { return c.GetJob(job).checkpoint_epoch() >= 2; }, 120))
      << Slurp(c.WorkerLog(0));
  c.KillWorker(0);
  ASSERT_LT(c.GetJob(job).last_epoch(), 6u) << "finished before the kill";
  c.StartWorker();
  ASSERT_TRUE(WaitFor([&] { return Ended(c.GetSweep(2)); }, 180))
      << Slurp(c.WorkerLog(1));
  EXPECT_EQ(c.GetJob(job).state(), v1::SUCCEEDED) << c.GetJob(job).error();
  EXPECT_EQ(c.GetJob(job).attempt(), 2u);
  const auto straight = Ece(c, 1), killed = Ece(c, 2);
  ASSERT_EQ(straight.size(), 6u);
  ASSERT_EQ(killed.size(), 6u);
  const int64_t first = c.GetSweep(1).job_ids(0);
  for (uint32_t e = 1; e <= 6; ++e)
    EXPECT_EQ(straight.at({first, e}), killed.at({job, e})) << "epoch " << e;
}

TEST(OwnModelEndToEndTest, ATextSweepMixesTokenIdsInEmbeddingSpace) {
  Cluster c("own_text");
  ASSERT_TRUE(c.StartCoordinator());
  const fs::path laptop = Laptop(c);
  Example(laptop, "make_model.py", "--kind text --vocab 300 --classes 3",
          "text.pt");
  Example(laptop, "make_data.py",
          "--text --count 600 --length 16 --vocab 300 --classes 3", "text.npz");
  c.StartWorker();
  Result r = Mixcal(
      "submit --name text --model-file text.pt --data-file text.npz --methods "
      "baseline,mixup:0.4,manifold_mixup:1 --epochs 2 --device cpu --wait",
      c.port(), laptop);
  ASSERT_EQ(r.code, 0) << r.out << r.err << Slurp(c.WorkerLog(0));
  EXPECT_EQ(c.GetSweep(1).state(), v1::SWEEP_SUCCEEDED);
  EXPECT_EQ(c.Metrics(1, "test").size(), 3u * 2);
  EXPECT_EQ(c.Metrics(1, "ood").size(), 3u * 2);  // the .npz's x_ood
  // CutMix on token ids: the job's one-line reason.
  Result cut = Mixcal(
      "submit --name cut --model-file text.pt --data-file text.npz --methods "
      "cutmix:1 --epochs 1 --device cpu --wait",
      c.port(), laptop);
  const v1::Job job = c.GetJob(c.GetSweep(2).job_ids(0));
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_NE(job.error().find("cutmix pastes image boxes"), std::string::npos)
      << job.error();
}

TEST(OwnModelEndToEndTest, EachBadFileGetsItsOneLineAndStoresNothingWrong) {
  Cluster c("own_bad");
  ASSERT_TRUE(c.StartCoordinator(2.0, 0.25, {"--max_upload_mb=1"}));
  const fs::path laptop = Laptop(c);
  Example(laptop, "make_model.py", "--kind cnn --channels 3 --classes 7 --width 4",
          "seven.pt");
  Example(laptop, "make_model.py", "--kind cnn --channels 3 --classes 4 --width 4",
          "net.pt");
  Example(laptop, "make_data.py", "--images 100 --size 12 --channels 3",
          "data.npz");
  std::ofstream(laptop / "broken.pt") << "PK\x03\x04 not really a zip";
  c.StartWorker({"--data_root=" + (c.dir() / "shared").string()});

  // A wrong output shape: the first job fails with the reason, the
  // sweep's other jobs at once with it, without training.
  Result r = Mixcal(
      "submit --name seven --model-file seven.pt --data-file data.npz "
      "--methods baseline,mixup:0.4 --seeds 3 --epochs 1 --device cpu --wait",
      c.port(), laptop);
  v1::Sweep seven = c.GetSweep(1);
  EXPECT_EQ(seven.state(), v1::SWEEP_FAILED);
  int attempted = 0;
  for (int64_t id : seven.job_ids()) {
    const v1::Job j = c.GetJob(id);
    EXPECT_EQ(j.state(), v1::FAILED);
    EXPECT_NE(j.error().find("gives CPUFloatType [2, 7]; the data has 4 classes"),
              std::string::npos)
        << j.error();
    EXPECT_EQ(j.error().find('\n'), std::string::npos);
    attempted += j.attempt() > 0;
  }
  EXPECT_EQ(attempted, 1);
  EXPECT_TRUE(c.Metrics(1, "test").empty());

  // A file that is not TorchScript at all.
  Mixcal("submit --name broken --model-file broken.pt --data-file data.npz "
         "--methods baseline --epochs 1 --device cpu --wait",
         c.port(), laptop);
  const v1::Job broken = c.GetJob(c.GetSweep(2).job_ids(0));
  EXPECT_EQ(broken.state(), v1::FAILED);
  EXPECT_NE(broken.error().find("not a TorchScript file"), std::string::npos)
      << broken.error();

  // Labels out of range in the uploaded data.
  ASSERT_EQ(std::system(("/usr/bin/python3 -c \"import numpy as np; "
                         "d = dict(np.load('" + (laptop / "data.npz").string() +
                         "')); d['y_test'][3] = 9; np.savez('" +
                         (laptop / "labels.npz").string() + "', **d)\"")
                            .c_str()),
            0);
  Mixcal("submit --name labels --model-file net.pt --data-file labels.npz "
         "--methods baseline --epochs 1 --device cpu --wait",
         c.port(), laptop);
  const v1::Job labels = c.GetJob(c.GetSweep(3).job_ids(0));
  EXPECT_NE(labels.error().find("y_test[3] is 9; labels must be 0..3"),
            std::string::npos)
      << labels.error();

  // A path on the workers outside their --data_root.
  Mixcal("submit --name outside --model-file net.pt --data-path /etc/passwd "
         "--methods baseline --epochs 1 --device cpu --wait",
         c.port(), laptop);
  const v1::Job outside = c.GetJob(c.GetSweep(4).job_ids(0));
  EXPECT_EQ(outside.state(), v1::FAILED);
  EXPECT_NE(outside.error().find("/etc/passwd is outside this worker's "
                                 "--data_root"),
            std::string::npos)
      << outside.error();

  // Over the coordinator's --max_upload_mb: refused, nothing stored, no sweep.
  std::ofstream(laptop / "big.pt") << std::string(2 << 20, 'x');
  Result big = Mixcal("submit --name big --model-file big.pt --data-file "
                      "data.npz --methods baseline --epochs 1",
                      c.port(), laptop);
  EXPECT_NE(big.code, 0);
  EXPECT_NE(big.err.find("1 MiB"), std::string::npos) << big.err;
  EXPECT_EQ(c.GetSweep(5).id(), 0);

  // A hash no upload made; a declared hash the bytes do not have.
  Result unknown = Mixcal(
      "submit --name unknown --model-file " + std::string(64, 'a') +
          " --data-file data.npz --methods baseline --epochs 1",
      c.port(), laptop);
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.err.find("no file with this SHA-256 was uploaded"),
            std::string::npos)
      << unknown.err;
  grpc::ClientContext ctx;
  v1::StoredFile stored;
  auto writer = c.api().UploadFile(&ctx, &stored);
  v1::FileChunk chunk;
  chunk.set_kind("model");
  chunk.set_name("lie.pt");
  chunk.set_size(5);
  chunk.set_sha256(std::string(64, 'b'));
  chunk.set_data("hello");
  writer->Write(chunk);
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("sha256"), std::string::npos)
      << st.error_message();
  Result listed = Mixcal("models", c.port(), laptop);
  EXPECT_EQ(listed.out.find("lie.pt"), std::string::npos) << listed.out;
  EXPECT_EQ(listed.out.find("big.pt"), std::string::npos) << listed.out;
}

}  // namespace
}  // namespace mixcal::testing
