#ifndef MIXCAL_WORKER_CORE_TRAINER_H_
#define MIXCAL_WORKER_CORE_TRAINER_H_

// The training core's public API: run one configured training and hear about
// every epoch. Torch-free: includers do not pay LibTorch's compile cost.
//
//   std::unique_ptr<Trainer> trainer = NewTorchTrainer();
//   TrainHooks hooks;
//   hooks.on_epoch = [](const EpochReport& r) { ...; return absl::OkStatus();
//   }; absl::Status s = trainer->Run(config, hooks);

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "calib/config.h"
#include "calib/metric_table.h"
#include "calib/metrics.h"
#include "worker/core/input_shape.h"

namespace mixcal::core {

// Metrics of one evaluation split after one epoch.
//   "test"     the test set, raw
//   "test_ts"  the test set after temperature scaling (temperature set)
//   "train"    a fixed subset of the training set (train_eval_count)
//   "noise"    Gaussian-noise inputs (has_labels false; auroc set)
//   "ood"      a second dataset's test inputs (has_labels false; auroc set)
// `values` holds the metrics of calib's table (calib/metric_table.h) by
// name; each split also carries the epoch's training metrics (train_loss,
// train_accuracy, lr, samples_per_sec). Splits without labels carry only
// mean_confidence, mean_entropy, auroc, fpr95, aupr and those, and no bins.
struct SplitMetrics {
  std::string split;
  bool has_labels = true;
  int64_t count = 0;
  calib::MetricValues values;
  std::string estimators;
  // A calibrated split's fitted parameters, JSON.
  std::string calibration;
  std::vector<calib::ReliabilityBin> bins;
};

// A split's kept probabilities (calib/predictions.h encoding).
struct KeptPredictions {
  std::string split;
  int64_t count = 0;
  int classes = 0;
  std::string probabilities;  // count x classes float16, little-endian
  std::string labels;         // count int32, little-endian
  // count float32, little-endian: log p(label), for NLL kept exactly.
  std::string label_log_probs;
};

struct EpochReport {
  int epoch = 0;               // 1-based
  double train_loss = 0;       // mean of the method's loss over the epoch
  double train_accuracy = 0;   // mixup: lambda*acc(y) + (1-lambda)*acc(y[pi])
  double lr = 0;               // the learning rate used during this epoch
  double samples_per_sec = 0;  // training examples per second of training
  double train_seconds = 0;
  double eval_seconds = 0;     // the whole evaluation (forward + metrics)
  double metrics_seconds = 0;  // the metric computation inside it
  int64_t eval_samples = 0;    // examples evaluated (all splits)
  std::vector<SplitMetrics> splits;
  // The test split's probabilities when config.predictions keeps this epoch.
  std::vector<KeptPredictions> predictions;
  // What the run's data turned out to be, JSON: {"inputs": "1x28x28 images",
  // "classes": 10, "train": N, "val": N, "test": N, "normalization":
  // {"mean": [...], "std": [...]}} (mean and std per channel of the
  // training split, in the images' own scale; absent for token ids).
  std::string data;
};

struct TrainHooks {
  // Called after every epoch. A non-OK status stops training and is returned
  // from Run.
  std::function<absl::Status(const EpochReport&)> on_epoch;
  // Called after a checkpoint file for `epoch` was written completely.
  std::function<void(int epoch, const std::string& path)> on_checkpoint;
  // Checked between batches; when it becomes true Run returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // Called with config.model_file and the data's inputs before the file is
  // loaded into this process: the worker checks an untrusted file in a
  // child process first (CheckScriptModel). A non-OK status ends the run.
  // Unset: the file is checked in this process.
  std::function<absl::Status(const std::string& model_file,
                             const InputShape& shape)>
      check_model_file;
};

// Drives one training run. Implementations never throw: every failure is a
// Status (InvalidArgument for a bad config, NotFound/DataLoss for missing or
// malformed data, ResourceExhausted for out-of-memory, Internal for a
// non-finite loss, Cancelled when hooks.cancel was set, Unavailable when the
// worker's own environment failed: its checkpoint directory cannot be
// created or written; another worker may well run the job).
class Trainer {
 public:
  virtual ~Trainer() = default;
  virtual absl::Status Run(const calib::TrainConfig& config,
                           const TrainHooks& hooks) = 0;
};

// The LibTorch trainer. On CPU the same config (seed included) gives the same
// numbers, and resuming from a checkpoint gives the numbers of an
// uninterrupted run.
std::unique_ptr<Trainer> NewTorchTrainer();

// Loads a TorchScript file and checks it against `shape` the way a job
// would use it: it loads (InvalidArgument "model_file NAME: not a
// TorchScript file ..." otherwise), forward() of a batch of two gives
// [2, classes] floating logits, and the optional methods of the convention
// (docs/own-model.md), where defined, give logits the same way. Run in a
// child process by the worker, since a hostile file may crash the loader
// itself.
absl::Status CheckScriptModel(const std::string& path, const InputShape& shape);

// Whether Run failed because of what every job of a sweep shares: its
// model file or its data file (loading or checking them), so that the
// sweep's other jobs would fail alike.
bool IsSharedCause(const absl::Status& status);

// Whether the linked LibTorch can train on CUDA (built with CUDA and a device
// present).
bool CudaAvailable();
// How many CUDA devices it sees (0 without CUDA).
int CudaDeviceCount();

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_TRAINER_H_
