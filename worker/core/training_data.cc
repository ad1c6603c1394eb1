#include "worker/core/training_data.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "calib/predictions.h"

namespace mixcal::core {
namespace {

constexpr uint64_t kNoiseInputSalt = 0x0e1u;

}  // namespace

absl::StatusOr<TrainingData> PrepareTrainingData(
    const calib::TrainConfig& config, const at::Device& device) {
  DataBundle data;
  if (config.dataset == calib::DatasetKind::kNpz) {
    MIXCAL_ASSIGN_OR_RETURN(data, ReadNpz(config.data_file));
  } else if (config.dataset == calib::DatasetKind::kImageFolder) {
    MIXCAL_ASSIGN_OR_RETURN(
        data, ReadImageFolder(config.data_file, config.image_size,
                              config.cache_dir));
  } else {
    MIXCAL_ASSIGN_OR_RETURN(data, LoadDataset(config.dataset, config.data_dir,
                                              config.synthetic, config.seed));
  }
  // A file's classes are known only now: check the subset against them.
  for (size_t i = 0; i < config.classes.size(); ++i) {
    if (config.classes[i] >= data.classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classes[", i, "] is ", config.classes[i], "; the data has classes 0..",
          data.classes - 1));
    }
  }
  if (data.tokens && config.augment == calib::Augment::kCropFlip) {
    return absl::InvalidArgumentError(
        "augment crop_flip applies to images; the data holds token ids");
  }
  at::Tensor held_out_test;  // test images of the classes left out
  if (!config.classes.empty())
    held_out_test = SelectClasses(&data, config.classes);
  if (config.label_noise > 0) {
    data.train.labels =
        ApplyLabelNoise(data.train.labels, data.classes, config.label_noise,
                        config.noise_kind, config.seed);
  }
  // A file's own validation split replaces the one held out of training.
  TrainValSplit split;
  if (data.val.size() > 0 && config.val_fraction > 0) {
    split = SplitTrainVal(data.train, 0, config.train_limit, config.seed);
    split.val = data.val;
  } else {
    split = SplitTrainVal(data.train, config.val_fraction, config.train_limit,
                          config.seed);
  }
  TensorDataset test = data.test;
  if (config.test_limit > 0 && config.test_limit < test.size()) {
    test = {test.images.slice(0, 0, config.test_limit),
            test.labels.slice(0, 0, config.test_limit)};
  }
  if (config.predictions != calib::PredictionsMode::kNone &&
      test.size() * data.classes > calib::kMaxPredictionValues) {
    return absl::InvalidArgumentError(absl::StrCat(
        "predictions: ", test.size(), " test examples x ", data.classes,
        " classes = ", test.size() * data.classes,
        " values to keep per epoch; at most ", calib::kMaxPredictionValues,
        " (4 MB as float16): set test_limit, or predictions none"));
  }
  TrainingData out;
  out.shape.tokens = data.tokens;
  out.shape.channels = data.channels;
  out.shape.height = data.height;
  out.shape.width = data.width;
  out.shape.length = data.length;
  out.shape.vocab = data.vocab;
  out.shape.classes = data.classes;
  EvalSets& eval = out.eval;
  if (config.ood_dataset == calib::kHeldOutClasses) {
    const int64_t n =
        std::min<int64_t>(config.ood_count, held_out_test.size(0));
    eval.ood_x = held_out_test.slice(0, 0, n).to(device);
  } else if (config.ood_dataset.empty() && data.ood.defined()) {
    const int64_t n = std::min<int64_t>(config.ood_count, data.ood.size(0));
    eval.ood_x = data.ood.slice(0, 0, n).to(device);
  } else if (!config.ood_dataset.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        calib::DatasetKind ood_kind,
        calib::ParseDataset(config.ood_dataset, "ood_dataset"));
    MIXCAL_ASSIGN_OR_RETURN(
        DataBundle ood,
        LoadDataset(ood_kind, config.ood_data_dir, {}, config.seed));
    if (data.tokens || ood.channels != data.channels ||
        ood.height != data.height || ood.width != data.width) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ood_dataset ", config.ood_dataset, " has ", ood.channels, "x",
          ood.height, "x", ood.width, " inputs; the training data has ",
          data.channels, "x", data.height, "x", data.width));
    }
    int64_t n = std::min<int64_t>(config.ood_count, ood.test.size());
    eval.ood_x = ood.test.images.slice(0, 0, n)
                     .to(data.train.images.scalar_type())
                     .to(device);
  }
  // Token ids are not normalised (a default Normalizer passes them on).
  if (!data.tokens) out.normalize = Normalizer::Fit(split.train.images);
  out.augment = config.augment == calib::Augment::kCropFlip ||
                (config.augment == calib::Augment::kAuto &&
                 (config.dataset == calib::DatasetKind::kCifar10 ||
                  config.dataset == calib::DatasetKind::kCifar100));

  out.train_x = split.train.images.to(device);
  out.train_y = split.train.labels.to(device);
  eval.val_x = split.val.images.to(device);
  eval.val_y = split.val.labels;
  eval.test_x = test.images.to(device);
  eval.test_y = test.labels;
  if (config.train_eval_count > 0) {
    int64_t n = std::min(config.train_eval_count, out.train_x.size(0));
    eval.train_eval_x = out.train_x.slice(0, 0, n);
    eval.train_eval_y = split.train.labels.slice(0, 0, n);
  }
  if (config.noise_eval_count > 0) {
    at::Generator gen =
        at::make_generator<at::CPUGeneratorImpl>(config.seed ^ kNoiseInputSalt);
    // Token ids: uniformly drawn ids of the vocabulary.
    eval.noise_x =
        data.tokens
            ? at::randint(data.vocab, out.shape.Batch(config.noise_eval_count),
                          gen, at::kLong)
                  .to(device)
            : at::randn(out.shape.Batch(config.noise_eval_count), gen,
                        at::kFloat)
                  .to(device);
  }
  return out;
}

}  // namespace mixcal::core
