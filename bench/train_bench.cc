// Training and evaluation throughput of the training core, one JSON line per
// configuration. Run through bench/train_bench.sh, which runs the PyTorch
// reference (train_bench.py) on the same work and prints the ratios.
//
//   mixcal-bench-train --model lenet --method mixup --train-limit 0 \
//                      --test-limit 10000 --epochs 3 --threads 2

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "worker/core/trainer.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixcal::core;
  using namespace mixcal::calib;
  TrainConfig c;
  c.dataset = DatasetKind::kFashionMnist;
  c.epochs = 3;
  c.threads = 2;
  c.val_fraction = 0;
  c.temperature_scaling = false;
  c.schedule = Schedule::kConstant;
  std::string model = "lenet", method = "baseline";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], v = argv[i + 1];
    bool ok = true;
    if (flag == "--model")
      model = v;
    else if (flag == "--method")
      method = v;
    else if (flag == "--train-limit")
      ok = absl::SimpleAtoi(v, &c.train_limit);
    else if (flag == "--test-limit")
      ok = absl::SimpleAtoi(v, &c.test_limit);
    else if (flag == "--epochs")
      ok = absl::SimpleAtoi(v, &c.epochs);
    else if (flag == "--threads")
      ok = absl::SimpleAtoi(v, &c.threads);
    else if (flag == "--data-dir")
      c.data_dir = v;
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "mixcal-bench-train: bad flag %s %s\n", flag.c_str(),
                   v.c_str());
      return 2;
    }
  }
  auto m = ParseModel(model);
  auto k = ParseMethod(method);
  if (!m.ok() || !k.ok()) {
    std::fprintf(stderr, "mixcal-bench-train: bad --model or --method\n");
    return 2;
  }
  c.model = *m;
  c.method = *k;
  c.alpha = 1.0;

  std::vector<double> train_sps, eval_sps, metric_share;
  TrainHooks hooks;
  hooks.on_epoch = [&](const EpochReport& r) {
    // The first epoch warms allocators and caches; it is not counted.
    if (r.epoch == 1 && c.epochs > 1) return absl::OkStatus();
    train_sps.push_back(r.samples_per_sec);
    eval_sps.push_back(r.eval_samples / r.eval_seconds);
    metric_share.push_back(r.metrics_seconds / r.eval_seconds);
    return absl::OkStatus();
  };
  absl::Status s = NewTorchTrainer()->Run(c, hooks);
  if (!s.ok()) {
    std::fprintf(stderr, "mixcal-bench-train: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"impl\":\"mixcal\",\"model\":\"%s\",\"method\":\"%s\",\"train_sps\":%."
      "1f,"
      "\"eval_sps\":%.1f,\"metrics_share\":%.5f}\n",
      model.c_str(), method.c_str(), Median(train_sps), Median(eval_sps),
      Median(metric_share));
  return 0;
}
