#include "worker/core/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "worker/core/data.h"
#include "worker/core/evaluate.h"
#include "worker/core/models.h"
#include "worker/core/execution.h"
#include "worker/core/training_method.h"
#include "absl/types/span.h"
#include "base/program.h"
#include "base/status_macros.h"
#include "calib/calibrators.h"
#include "calib/predictions.h"
#include "worker/core/calibrators.h"

namespace mixcal::core {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kNoiseInputSalt = 0x0e1u;
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

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void SetLearningRate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const calib::TrainConfig& c, std::vector<at::Tensor> params) {
  if (c.optimizer == calib::OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::Adam>(
        std::move(params),
        torch::optim::AdamOptions(c.lr).weight_decay(c.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      std::move(params), torch::optim::SGDOptions(c.lr)
                             .momentum(c.momentum)
                             .nesterov(c.nesterov)
                             .weight_decay(c.weight_decay));
}

double LearningRateAt(const calib::TrainConfig& c, const std::vector<int>& milestones,
                      int epoch /* 1-based */) {
  switch (c.schedule) {
    case calib::Schedule::kConstant:
      return c.lr;
    case calib::Schedule::kStep: {
      double lr = c.lr;
      for (int m : milestones)
        if (epoch > m) lr *= c.lr_gamma;
      return lr;
    }
    case calib::Schedule::kCosine:
      return 0.5 * c.lr * (1 + std::cos(M_PI * (epoch - 1) / c.epochs));
  }
  return c.lr;
}

// What a checkpoint must match to be resumed by a configuration.
std::string Fingerprint(const calib::TrainConfig& c, const DataBundle& d) {
  std::string subset;
  if (!c.classes.empty())
    subset = absl::StrCat(";subset=", absl::StrJoin(c.classes, ","));
  return absl::StrCat("model=", Name(c.model), ";dataset=", Name(c.dataset),
                      ";shape=", d.channels, "x", d.height, "x", d.width,
                      ";classes=", d.classes, ";method=", Name(c.method), ";optimizer=", Name(c.optimizer),
                      ";seed=", c.seed, ";batch=", c.batch_size,
                      subset);
}

void SetGradsToNone(torch::nn::Module& model) {
  for (at::Tensor& p : model.parameters()) p.mutable_grad().reset();
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
      std::string what = e.what_without_backtrace();
      if (what.find("out of memory") != std::string::npos) {
        return absl::ResourceExhaustedError(
            absl::StrCat("out of memory: ", what));
      }
      return absl::InternalError(absl::StrCat("LibTorch error: ", what));
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of host memory");
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("training error: ", e.what()));
    }
  }

 private:
  absl::Status RunImpl(const calib::TrainConfig& config, const TrainHooks& hooks);
};

// Logits of `images` (raw, on the device) in evaluation batches, on the CPU.
at::Tensor EvalLogits(ClassifierImpl& model, const Normalizer& normalize,
                      const at::Tensor& images, int batch, bool autocast,
                      bool channels_last) {
  std::vector<at::Tensor> parts;
  const int64_t n = images.size(0);
  CudaAutocast guard(autocast);
  for (int64_t i = 0; i < n; i += batch) {
    at::Tensor x = normalize(ToModelLayout(
        images.slice(0, i, std::min(n, i + batch)), channels_last));
    parts.push_back(model.forward(x).to(at::kFloat));
  }
  if (parts.empty()) return at::empty({0, 0});
  return at::cat(parts).to(at::kCPU);
}

// The validation and test probabilities the torch-free calibrators work
// on, computed once an epoch for all of them.
struct CalibratorInputs {
  std::vector<float> val, test;
  std::vector<int32_t> val_labels;
};

// The metrics of the test split under calibrator `cal` fitted on the
// validation split (its split name and fitted parameters set).
SplitMetrics CalibratedMetrics(calib::Calibrator cal,
                               const at::Tensor& val_logits,
                               const at::Tensor& val_y,
                               const at::Tensor& test_logits,
                               const at::Tensor& test_y, double temperature,
                               int bins,
                               std::optional<CalibratorInputs>* inputs) {
  const std::string split(calib::SplitOf(cal));
  if (cal == calib::Calibrator::kVector || cal == calib::Calibrator::kMatrix ||
      cal == calib::Calibrator::kDirichlet) {
    const ScalingFit fit = FitScaling(cal, val_logits, val_y, temperature);
    SplitMetrics m = LabelledMetrics(split, ApplyScaling(fit, test_logits),
                                     test_y, bins);
    m.calibration = DescribeScaling(fit);
    return m;
  }
  // The torch-free ones work on probabilities.
  // In float32, the model's own precision (1.0 ms an epoch on the
  // quickstart's setting where a float64 softmax rounded to float32 took
  // 1.5 ms).
  auto probs = [](const at::Tensor& z) {
    at::Tensor p = at::softmax(z.to(at::kCPU, at::kFloat), 1).contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  };
  auto labels = [](const at::Tensor& y) {
    at::Tensor i = y.to(at::kCPU, at::kInt).contiguous();
    return std::vector<int32_t>(i.data_ptr<int32_t>(),
                                i.data_ptr<int32_t>() + i.numel());
  };
  const int k = static_cast<int>(test_logits.size(1));
  if (!inputs->has_value())
    inputs->emplace(CalibratorInputs{probs(val_logits), probs(test_logits), labels(val_y)});
  const std::vector<float>& pv = (*inputs)->val;
  const std::vector<float>& pt = (*inputs)->test;
  const std::vector<int32_t>& yv = (*inputs)->val_labels;
  std::vector<float> out;
  std::string described;
  if (cal == calib::Calibrator::kHistogram) {
    const calib::HistogramBinning h = calib::FitHistogramBinning(pv, yv, k, bins);
    out = calib::Apply(h, pt);
    described = calib::Describe(h);
  } else if (cal == calib::Calibrator::kIsotonic) {
    const calib::IsotonicCalibration iso = calib::FitIsotonic(pv, yv, k);
    out = calib::Apply(iso, pt);
    described = calib::Describe(iso);
  } else if (cal == calib::Calibrator::kBeta) {
    const calib::BetaTopLabel beta = calib::FitBetaTopLabel(pv, yv, k);
    out = calib::Apply(beta, pt, k);
    described = calib::Describe(beta);
  } else {
    const calib::PlattTopLabel platt = calib::FitPlattTopLabel(pv, yv, k);
    out = calib::Apply(platt, pt, k);
    described = calib::Describe(platt);
  }
  // As logits: log p (softmax of it gives p back; 0 becomes a tiny floor).
  at::Tensor p = at::from_blob(out.data(), {test_logits.size(0), k}, at::kFloat)
                     .to(at::kDouble);
  SplitMetrics m = LabelledMetrics(split, at::log(at::clamp_min(p, 1e-12)),
                                   test_y, bins);
  m.calibration = std::move(described);
  return m;
}

absl::Status CheckCancel(const TrainHooks& hooks, int epoch, int64_t batch) {
  if (hooks.cancel != nullptr &&
      hooks.cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError(
        absl::StrCat("cancelled at epoch ", epoch, ", batch ", batch));
  }
  return absl::OkStatus();
}

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

  const bool cuda = config.device != "cpu";
  if (cuda && !CudaAvailable()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", config.device,
        " requested, but this LibTorch has no CUDA or no GPU is visible"));
  }
  const torch::Device device(config.device);

  // --- data ---
  MIXCAL_ASSIGN_OR_RETURN(DataBundle data,
                          LoadDataset(config.dataset, config.data_dir,
                                      config.synthetic, config.seed));
  at::Tensor held_out_test;  // test images of the classes left out
  if (!config.classes.empty())
    held_out_test = SelectClasses(&data, config.classes);
  if (config.label_noise > 0) {
    data.train.labels =
        ApplyLabelNoise(data.train.labels, data.classes, config.label_noise,
                        config.noise_kind, config.seed);
  }
  TrainValSplit split = SplitTrainVal(data.train, config.val_fraction,
                                      config.train_limit, config.seed);
  TensorDataset test = data.test;
  if (config.test_limit > 0 && config.test_limit < test.size()) {
    test = {test.images.slice(0, 0, config.test_limit),
            test.labels.slice(0, 0, config.test_limit)};
  }
  at::Tensor ood_images;
  if (config.ood_dataset == calib::kHeldOutClasses) {
    const int64_t n = std::min<int64_t>(config.ood_count, held_out_test.size(0));
    ood_images = held_out_test.slice(0, 0, n).to(device);
  } else if (!config.ood_dataset.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(calib::DatasetKind ood_kind,
                            calib::ParseDataset(config.ood_dataset, "ood_dataset"));
    MIXCAL_ASSIGN_OR_RETURN(
        DataBundle ood,
        LoadDataset(ood_kind, config.ood_data_dir, {}, config.seed));
    if (ood.channels != data.channels || ood.height != data.height ||
        ood.width != data.width) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ood_dataset ", config.ood_dataset, " has ", ood.channels, "x",
          ood.height, "x", ood.width, " inputs; the training data has ",
          data.channels, "x", data.height, "x", data.width));
    }
    int64_t n = std::min<int64_t>(config.ood_count, ood.test.size());
    ood_images = ood.test.images.slice(0, 0, n)
                     .to(data.train.images.scalar_type())
                     .to(device);
  }
  const Normalizer normalize = Normalizer::Fit(split.train.images);
  const bool augment = config.augment == calib::Augment::kCropFlip ||
                       (config.augment == calib::Augment::kAuto &&
                        (config.dataset == calib::DatasetKind::kCifar10 ||
                         config.dataset == calib::DatasetKind::kCifar100));

  at::Tensor train_x = split.train.images.to(device);
  at::Tensor train_y = split.train.labels.to(device);
  at::Tensor val_x = split.val.images.to(device);
  at::Tensor val_y = split.val.labels;
  at::Tensor test_x = test.images.to(device);
  at::Tensor test_y = test.labels;
  const int64_t n_train = train_x.size(0);
  at::Tensor train_eval_x, train_eval_y;
  if (config.train_eval_count > 0) {
    int64_t n = std::min(config.train_eval_count, n_train);
    train_eval_x = train_x.slice(0, 0, n);
    train_eval_y = split.train.labels.slice(0, 0, n);
  }
  at::Tensor noise_x;  // already normalised: N(0, 1) is the training mean/std
  if (config.noise_eval_count > 0) {
    at::Generator gen =
        at::make_generator<at::CPUGeneratorImpl>(config.seed ^ kNoiseInputSalt);
    noise_x = at::randn({config.noise_eval_count, data.channels, data.height,
                         data.width},
                        gen, at::kFloat)
                  .to(device);
  }

  // --- model and optimiser ---
  at::manual_seed(config.seed);
  MIXCAL_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                          MakeModel(config.model, data.channels, data.height,
                                    data.width, data.classes));
  std::unique_ptr<TrainingMethod> method = MakeTrainingMethod(config);
  MIXCAL_RETURN_IF_ERROR(method->CheckModel(*model, calib::Name(config.model)));
  model->to(device);
  const bool channels_last = config.model != calib::ModelKind::kMlp;
  if (channels_last) ConvertToChannelsLast(*model);
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      MakeOptimizer(config, model->parameters());
  const std::string fingerprint = Fingerprint(config, data);

  int start_epoch = 1;
  if (!config.resume_from.empty()) {
    std::error_code ec;
    if (!fs::exists(config.resume_from, ec)) {
      return absl::NotFoundError(
          absl::StrCat("resume_from ", config.resume_from, ": no such file"));
    }
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(config.resume_from, device);
    } catch (const c10::Error& e) {
      return absl::DataLossError(absl::StrCat(
          "resume_from ", config.resume_from, ": not a mixcal checkpoint (",
          e.what_without_backtrace(), ")"));
    }
    c10::IValue stored_fp, stored_epoch;
    archive.read("fingerprint", stored_fp);
    archive.read("epoch", stored_epoch);
    if (stored_fp.toStringRef() != fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("resume_from ", config.resume_from,
                       " was written by a different run (",
                       stored_fp.toStringRef(), "), not ", fingerprint));
    }
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    model->load(model_archive);
    optimizer->load(optimizer_archive);
    start_epoch = static_cast<int>(stored_epoch.toInt()) + 1;
  }

  const std::vector<int> milestones = EffectiveMilestones(config);
  const int64_t batch = config.batch_size;
  for (int epoch = start_epoch; epoch <= config.epochs; ++epoch) {
    EpochReport report;
    report.epoch = epoch;
    report.lr = LearningRateAt(config, milestones, epoch);
    SetLearningRate(*optimizer, report.lr);

    const uint64_t epoch_seed = EpochSeed(config.seed, epoch);
    at::manual_seed(epoch_seed);
    if (cuda) torch::cuda::manual_seed_all(epoch_seed);
    std::mt19937_64 lambda_rng(epoch_seed ^ kLambdaSalt);
    at::Generator shuffle_gen =
        at::make_generator<at::CPUGeneratorImpl>(epoch_seed ^ kShuffleSalt);
    at::Tensor order = at::randperm(n_train, shuffle_gen, at::kLong).to(device);

    // --- train ---
    model->train();
    at::Tensor loss_sum =
        at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    at::Tensor correct_sum =
        at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    int64_t batches = 0;
    StepContext step_ctx;
    step_ctx.mix_rng = &lambda_rng;
    step_ctx.device = device;
    step_ctx.autocast = cuda;
    auto train_start = Clock::now();
    for (int64_t i = 0; i < n_train; i += batch, ++batches) {
      MIXCAL_RETURN_IF_ERROR(CheckCancel(hooks, epoch, batches));
      at::Tensor idx = order.slice(0, i, std::min(n_train, i + batch));
      at::Tensor x = train_x.index_select(0, idx);
      at::Tensor y = train_y.index_select(0, idx);
      if (augment) x = RandomCropFlip(x, 4);
      x = normalize(ToModelLayout(x, channels_last));

      StepResult step = method->Step(*model, {x, y}, step_ctx);
      SetGradsToNone(*model);
      step.loss.backward();
      optimizer->step();
      {
        torch::NoGradGuard ng;
        loss_sum += step.loss.detach().to(at::kDouble) *
                    static_cast<double>(y.size(0));
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
    if (cuda) torch::cuda::synchronize();
    report.train_seconds = Seconds(train_start);
    report.train_loss = loss_sum.item<double>() / static_cast<double>(n_train);
    if (!std::isfinite(report.train_loss)) {
      return absl::InternalError(absl::StrFormat(
          "training diverged: mean loss is %f in epoch %d (try a lower lr)",
          report.train_loss, epoch));
    }
    report.train_accuracy =
        correct_sum.item<double>() / static_cast<double>(n_train);
    report.samples_per_sec = n_train / std::max(report.train_seconds, 1e-9);

    // --- evaluate ---
    MIXCAL_RETURN_IF_ERROR(CheckCancel(hooks, epoch, batches));
    auto eval_start = Clock::now();
    double metrics_seconds = 0;
    {
      c10::InferenceMode inference;
      model->eval();
      const int eb = config.eval_batch_size;
      at::Tensor test_logits =
          EvalLogits(*model, normalize, test_x, eb, cuda, channels_last);
      report.eval_samples += test_x.size(0);
      auto m0 = Clock::now();
      report.splits.push_back(
          LabelledMetrics("test", test_logits, test_y, config.ece_bins));
      if (calib::KeepsPredictions(config, epoch)) {
        const at::Tensor probs =
            at::softmax(test_logits.to(at::kFloat), 1).contiguous();
        const at::Tensor labels = test_y.to(at::kInt).contiguous();
        KeptPredictions kept;
        kept.split = "test";
        kept.count = probs.size(0);
        kept.classes = static_cast<int>(probs.size(1));
        kept.probabilities = calib::EncodeProbabilities(absl::MakeConstSpan(
            probs.data_ptr<float>(), static_cast<size_t>(probs.numel())));
        kept.labels = calib::EncodeLabels(absl::MakeConstSpan(
            labels.data_ptr<int32_t>(), static_cast<size_t>(labels.numel())));
        report.predictions.push_back(std::move(kept));
      }
      at::Tensor test_conf;  // for the OOD AUROCs only
      if (noise_x.defined() || ood_images.defined())
        test_conf = TopConfidence(test_logits);
      metrics_seconds += Seconds(m0);
      if ((config.temperature_scaling || !config.calibrators.empty()) &&
          val_x.size(0) > 0) {
        at::Tensor val_logits =
            EvalLogits(*model, normalize, val_x, eb, cuda, channels_last);
        report.eval_samples += val_x.size(0);
        auto m1 = Clock::now();
        double t = FitTemperature(val_logits, val_y);
        if (config.temperature_scaling) {
          SplitMetrics ts = LabelledMetrics("test_ts", test_logits, test_y,
                                            config.ece_bins, t);
          ts.values.Set("temperature", t);
          ts.calibration = absl::StrFormat(
              "{\"calibrator\":\"temperature\",\"T\":%.9g}", t);
          report.splits.push_back(std::move(ts));
        }
        std::optional<CalibratorInputs> inputs;
        for (calib::Calibrator cal : config.calibrators) {
          report.splits.push_back(CalibratedMetrics(cal, val_logits, val_y,
                                                    test_logits, test_y, t,
                                                    config.ece_bins, &inputs));
        }
        metrics_seconds += Seconds(m1);
      }
      if (train_eval_x.defined()) {
        at::Tensor logits = EvalLogits(*model, normalize, train_eval_x, eb,
                                       cuda, channels_last);
        report.eval_samples += train_eval_x.size(0);
        auto m2 = Clock::now();
        report.splits.push_back(
            LabelledMetrics("train", logits, train_eval_y, config.ece_bins));
        metrics_seconds += Seconds(m2);
      }
      if (noise_x.defined()) {
        // noise_x is already in normalised space: forward it directly.
        std::vector<at::Tensor> parts;
        {
          CudaAutocast guard(cuda);
          for (int64_t i = 0; i < noise_x.size(0); i += eb)
            parts.push_back(model
                                ->forward(ToModelLayout(
                                    noise_x.slice(0, i, i + eb), channels_last))
                                .to(at::kFloat));
        }
        at::Tensor logits = at::cat(parts).to(at::kCPU);
        report.eval_samples += noise_x.size(0);
        auto m3 = Clock::now();
        report.splits.push_back(UnlabelledMetrics("noise", logits, test_conf));
        metrics_seconds += Seconds(m3);
      }
      if (ood_images.defined()) {
        at::Tensor logits =
            EvalLogits(*model, normalize, ood_images, eb, cuda, channels_last);
        report.eval_samples += ood_images.size(0);
        auto m4 = Clock::now();
        report.splits.push_back(UnlabelledMetrics("ood", logits, test_conf));
        metrics_seconds += Seconds(m4);
      }
    }
    report.eval_seconds = Seconds(eval_start);
    report.metrics_seconds = metrics_seconds;
    // Every split's row carries the epoch's training metrics.
    for (SplitMetrics& m : report.splits) {
      m.values.Set("train_loss", report.train_loss);
      m.values.Set("train_accuracy", report.train_accuracy);
      m.values.Set("lr", report.lr);
      m.values.Set("samples_per_sec", report.samples_per_sec);
    }

    // Report first, checkpoint second: a checkpoint at epoch e means every
    // epoch up to e was delivered, so resuming from it never skips one.
    if (hooks.on_epoch) MIXCAL_RETURN_IF_ERROR(hooks.on_epoch(report));
    if (config.checkpoint_every > 0 && epoch % config.checkpoint_every == 0) {
      std::error_code ec;
      fs::create_directories(config.checkpoint_dir, ec);
      // The checkpoint directory is the worker's, not the job's: its
      // failures are Unavailable, so that the job goes to another worker.
      if (ec) {
        return absl::UnavailableError(absl::StrCat(
            "checkpoint_dir ", config.checkpoint_dir, ": ", ec.message()));
      }
      const std::string path =
          (fs::path(config.checkpoint_dir) /
           absl::StrFormat("checkpoint-epoch-%05d.pt", epoch))
              .string();
      torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
      model->save(model_archive);
      optimizer->save(optimizer_archive);
      archive.write("model", model_archive);
      archive.write("optimizer", optimizer_archive);
      archive.write("epoch", c10::IValue(static_cast<int64_t>(epoch)));
      archive.write("fingerprint", c10::IValue(fingerprint));
      // Written aside and renamed, so a crash never leaves half a checkpoint
      // under the final name.
      const std::string tmp = path + ".tmp";
      try {
        archive.save_to(tmp);
      } catch (const c10::Error& e) {
        fs::remove(tmp, ec);
        return absl::UnavailableError(absl::StrCat(
            "checkpoint ", tmp, ": cannot write (", e.what_without_backtrace(),
            ")"));
      }
      fs::rename(tmp, path, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("checkpoint ", path, ": ", ec.message()));
      }
      if (hooks.on_checkpoint) hooks.on_checkpoint(epoch, path);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<Trainer> NewTorchTrainer() {
  return std::make_unique<TorchTrainer>();
}

bool CudaAvailable() {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
}

}  // namespace mixcal::core
