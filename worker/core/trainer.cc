#include "worker/core/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/program.h"
#include "base/status_macros.h"
#include "worker/core/checkpoint.h"
#include "worker/core/device_name.h"
#include "worker/core/evaluation_pass.h"
#include "worker/core/execution.h"
#include "worker/core/network.h"
#include "worker/core/optimizer.h"
#include "worker/core/train_epoch.h"
#include "worker/core/training_data.h"
#include "worker/core/training_method.h"

namespace mixcal::core {
namespace {

constexpr char kSharedCause[] = "type.mixcal.dev/shared-cause";

absl::Status Shared(absl::Status s) {
  if (!s.ok()) s.SetPayload(kSharedCause, absl::Cord("1"));
  return s;
}

std::string JoinNumbers(const std::vector<double>& v) {
  return absl::StrJoin(v, ", ", [](std::string* out, double x) {
    absl::StrAppend(out, absl::StrFormat("%.6g", x));
  });
}

// EpochReport::data.
std::string DescribeData(const TrainingData& d) {
  std::string out = absl::StrCat(
      "{\"inputs\": \"", d.shape.Describe(), "\", \"classes\": ",
      d.shape.classes, ", \"train\": ", d.train_x.size(0), ", \"val\": ",
      d.eval.val_x.defined() ? d.eval.val_x.size(0) : 0, ", \"test\": ",
      d.eval.test_x.size(0));
  if (d.shape.tokens) {
    absl::StrAppend(&out, ", \"vocab\": ", d.shape.vocab);
  } else {
    absl::StrAppend(&out, ", \"normalization\": {\"mean\": [",
                    JoinNumbers(d.normalize.mean()), "], \"std\": [",
                    JoinNumbers(d.normalize.stddev()), "]}");
  }
  return out + "}";
}

class TorchTrainer : public Trainer {
 public:
  absl::Status Run(const calib::TrainConfig& config,
                   const TrainHooks& hooks) override {
    // Evaluation batches' buffers stay in the heap (base/program.h).
    KeepFreedMemory();
    try {
      return RunImpl(config, hooks);
    } catch (const c10::OutOfMemoryError& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("out of memory: ", e.what_without_backtrace()));
    } catch (const c10::Error& e) {
      return TorchErrorStatus(e.what_without_backtrace());
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of host memory");
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("training error: ", e.what()));
    }
  }

 private:
  absl::Status RunImpl(const calib::TrainConfig& config,
                       const TrainHooks& hooks);
};

// A run: the data, the model and its training method, the optimizer (from
// a checkpoint when resuming), then per epoch training (train_epoch.h),
// evaluation (evaluation_pass.h), the report and the checkpoint.
absl::Status TorchTrainer::RunImpl(const calib::TrainConfig& config,
                                   const TrainHooks& hooks) {
  MIXCAL_RETURN_IF_ERROR(Validate(config));

  // Threads: 0 means OMP_NUM_THREADS when set, else every core.
  if (config.threads > 0) {
    at::set_num_threads(config.threads);
  } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    at::set_num_threads(
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }

  Execution exec;
  exec.cuda = config.device != "cpu";
  if (exec.cuda && !CudaAvailable()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", config.device,
        " requested, but this LibTorch has no CUDA or no GPU is visible"));
  }
  exec.device = torch::Device(config.device);
  absl::StatusOr<TrainingData> prepared =
      PrepareTrainingData(config, exec.device);
  if (!prepared.ok()) {
    const bool file = config.dataset == calib::DatasetKind::kNpz ||
                      config.dataset == calib::DatasetKind::kImageFolder;
    return file ? Shared(prepared.status()) : prepared.status();
  }
  const TrainingData& data = *prepared;

  // --- model, method and optimiser ---
  at::manual_seed(config.seed);
  if (!config.model_file.empty()) {
    MIXCAL_RETURN_IF_ERROR(
        Shared(hooks.check_model_file
                   ? hooks.check_model_file(config.model_file, data.shape)
                   : CheckScriptModel(config.model_file, data.shape)));
  }
  absl::StatusOr<std::unique_ptr<Network>> made = MakeNetwork(config, data.shape);
  if (!made.ok()) return Shared(made.status());
  std::unique_ptr<Network> model = *std::move(made);
  std::unique_ptr<TrainingMethod> method = MakeTrainingMethod(config);
  MIXCAL_RETURN_IF_ERROR(method->CheckModel(*model, data.shape));
  model->To(exec.device);
  exec.channels_last = model->ChannelsLast();
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      MakeOptimizer(config, model->Parameters());
  const std::string fingerprint = Fingerprint(config, data.shape);

  int start_epoch = 1;
  if (!config.resume_from.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(const int done,
                            LoadCheckpoint(config.resume_from, fingerprint,
                                           exec.device, *model, *optimizer));
    start_epoch = done + 1;
  }

  const std::string data_note = DescribeData(data);
  const std::vector<int> milestones = EffectiveMilestones(config);
  for (int epoch = start_epoch; epoch <= config.epochs; ++epoch) {
    EpochReport report;
    report.epoch = epoch;
    report.data = data_note;
    report.lr = LearningRateAt(config, milestones, epoch);
    SetLearningRate(*optimizer, report.lr);
    MIXCAL_RETURN_IF_ERROR(TrainEpoch(config, epoch, exec, data, *method,
                                      *model, *optimizer, hooks, &report));
    EvaluateEpoch(config, epoch, exec, data.normalize, data.eval, *model,
                  &report);

    // Report first, checkpoint second: a checkpoint at epoch e means every
    // epoch up to e was delivered, so resuming from it never skips one.
    if (hooks.on_epoch) MIXCAL_RETURN_IF_ERROR(hooks.on_epoch(report));
    if (config.checkpoint_every > 0 && epoch % config.checkpoint_every == 0) {
      MIXCAL_ASSIGN_OR_RETURN(const std::string path,
                              SaveCheckpoint(config.checkpoint_dir, epoch,
                                             fingerprint, *model, *optimizer));
      if (hooks.on_checkpoint) hooks.on_checkpoint(epoch, path);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<Trainer> NewTorchTrainer() {
  return std::make_unique<TorchTrainer>();
}

bool IsSharedCause(const absl::Status& status) {
  return status.GetPayload(kSharedCause).has_value();
}

bool CudaAvailable() {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
}

int CudaDeviceCount() {
  return CudaAvailable() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

}  // namespace mixcal::core
