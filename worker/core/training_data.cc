#include "worker/core/training_data.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mixcal::core {
namespace {

constexpr uint64_t kNoiseInputSalt = 0x0e1u;

}  // namespace

absl::StatusOr<TrainingData> PrepareTrainingData(
    const calib::TrainConfig& config, const at::Device& device) {
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
  TrainingData out;
  out.channels = data.channels;
  out.height = data.height;
  out.width = data.width;
  out.classes = data.classes;
  EvalSets& eval = out.eval;
  if (config.ood_dataset == calib::kHeldOutClasses) {
    const int64_t n =
        std::min<int64_t>(config.ood_count, held_out_test.size(0));
    eval.ood_x = held_out_test.slice(0, 0, n).to(device);
  } else if (!config.ood_dataset.empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        calib::DatasetKind ood_kind,
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
    eval.ood_x = ood.test.images.slice(0, 0, n)
                     .to(data.train.images.scalar_type())
                     .to(device);
  }
  out.normalize = Normalizer::Fit(split.train.images);
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
    eval.noise_x = at::randn({config.noise_eval_count, data.channels,
                              data.height, data.width},
                             gen, at::kFloat)
                       .to(device);
  }
  return out;
}

}  // namespace mixcal::core
