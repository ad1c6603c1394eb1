#include "worker/core/train_epoch.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "worker/core/execution.h"

namespace mixcal::core {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kLambdaSalt = 0x1a3bdau;
constexpr uint64_t kShuffleSalt = 0x5f1u;

// The training stream of an epoch depends only on (seed, epoch): this is the
// RNG state a checkpoint implies, so resuming at an epoch boundary replays
// exactly what an uninterrupted run would have drawn.
uint64_t EpochSeed(uint64_t seed, int epoch) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

absl::Status CheckCancel(const TrainHooks& hooks, int epoch, int64_t batch) {
  if (hooks.cancel != nullptr &&
      hooks.cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError(
        absl::StrCat("cancelled at epoch ", epoch, ", batch ", batch));
  }
  return absl::OkStatus();
}

void SetGradsToNone(const std::vector<at::Tensor>& parameters) {
  for (const at::Tensor& p : parameters) p.mutable_grad().reset();
}

}  // namespace

absl::Status TrainEpoch(const calib::TrainConfig& config, int epoch,
                        const Execution& setup, const TrainingData& data,
                        TrainingMethod& method, Network& model,
                        torch::optim::Optimizer& optimizer,
                        const TrainHooks& hooks, EpochReport* report) {
  const uint64_t epoch_seed = EpochSeed(config.seed, epoch);
  at::manual_seed(epoch_seed);
  if (setup.cuda) torch::cuda::manual_seed_all(epoch_seed);
  std::mt19937_64 lambda_rng(epoch_seed ^ kLambdaSalt);
  at::Generator shuffle_gen =
      at::make_generator<at::CPUGeneratorImpl>(epoch_seed ^ kShuffleSalt);
  const int64_t n_train = data.train_x.size(0);
  at::Tensor order =
      at::randperm(n_train, shuffle_gen, at::kLong).to(setup.device);

  model.SetTraining(true);
  const std::vector<at::Tensor> parameters = model.Parameters();
  const auto sum_options =
      at::TensorOptions().dtype(at::kDouble).device(setup.device);
  at::Tensor loss_sum = at::zeros({}, sum_options);
  at::Tensor correct_sum = at::zeros({}, sum_options);
  StepContext ctx;
  ctx.mix_rng = &lambda_rng;
  ctx.device = setup.device;
  ctx.autocast = setup.cuda;
  const int64_t batch = config.batch_size;
  int64_t batches = 0;
  auto train_start = Clock::now();
  for (int64_t i = 0; i < n_train; i += batch, ++batches) {
    MIXCAL_RETURN_IF_ERROR(CheckCancel(hooks, epoch, batches));
    at::Tensor idx = order.slice(0, i, std::min(n_train, i + batch));
    at::Tensor x = data.train_x.index_select(0, idx);
    at::Tensor y = data.train_y.index_select(0, idx);
    if (data.augment) x = RandomCropFlip(x, 4);
    x = data.normalize(ToModelLayout(x, setup.channels_last));

    StepResult step = method.Step(model, {x, y}, ctx);
    SetGradsToNone(parameters);
    step.loss.backward();
    optimizer.step();
    {
      torch::NoGradGuard ng;
      loss_sum +=
          step.loss.detach().to(at::kDouble) * static_cast<double>(y.size(0));
      correct_sum += step.correct;
    }
    // A non-finite loss will not recover: stop the run rather than train on.
    if ((batches % 50) == 0 && !std::isfinite(step.loss.item<double>())) {
      return absl::InternalError(
          absl::StrFormat("training diverged: loss is %f at epoch %d, batch "
                          "%d (try a lower lr)",
                          step.loss.item<double>(), epoch, batches));
    }
  }
  if (setup.cuda) torch::cuda::synchronize();
  report->train_seconds =
      std::chrono::duration<double>(Clock::now() - train_start).count();
  report->train_loss = loss_sum.item<double>() / static_cast<double>(n_train);
  if (!std::isfinite(report->train_loss)) {
    return absl::InternalError(absl::StrFormat(
        "training diverged: mean loss is %f in epoch %d (try a lower lr)",
        report->train_loss, epoch));
  }
  report->train_accuracy =
      correct_sum.item<double>() / static_cast<double>(n_train);
  report->samples_per_sec = n_train / std::max(report->train_seconds, 1e-9);
  return CheckCancel(hooks, epoch, batches);
}

}  // namespace mixcal::core
