#include "calib/config.h"

#include "base/utf8.h"
#include "calib/predictions.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mixcal::calib {
namespace {

template <typename E>
using NameTable = std::vector<std::pair<E, absl::string_view>>;

const NameTable<DatasetKind>& Datasets() {
  static const auto* t =
      new NameTable<DatasetKind>{{DatasetKind::kFashionMnist, "fashion-mnist"},
                                 {DatasetKind::kMnist, "mnist"},
                                 {DatasetKind::kCifar10, "cifar10"},
                                 {DatasetKind::kCifar100, "cifar100"},
                                 {DatasetKind::kSynthetic, "synthetic"},
                                 {DatasetKind::kNpz, "npz"},
                                 {DatasetKind::kImageFolder, "image-folder"}};
  return *t;
}
const NameTable<ModelKind>& Models() {
  static const auto* t =
      new NameTable<ModelKind>{{ModelKind::kMlp, "mlp"},
                               {ModelKind::kLenet, "lenet"},
                               {ModelKind::kResnet18, "resnet18"},
                               {ModelKind::kVgg16, "vgg16"},
                               {ModelKind::kTorchScript, "torchscript"}};
  return *t;
}
const NameTable<MethodKind>& Methods() {
  static const auto* t = new NameTable<MethodKind>{
      {MethodKind::kBaseline, "baseline"},
      {MethodKind::kMixup, "mixup"},
      {MethodKind::kFeatureMixup, "feature_mixup"},
      {MethodKind::kLabelSmoothing, "label_smoothing"},
      {MethodKind::kErl, "erl"},
      {MethodKind::kFocal, "focal"},
      {MethodKind::kCutmix, "cutmix"},
      {MethodKind::kRegmixup, "regmixup"},
      {MethodKind::kMmce, "mmce"},
      {MethodKind::kManifoldMixup, "manifold_mixup"}};
  return *t;
}
const NameTable<Calibrator>& Calibrators() {
  static const auto* t = new NameTable<Calibrator>{
      {Calibrator::kVector, "vector"},       {Calibrator::kMatrix, "matrix"},
      {Calibrator::kDirichlet, "dirichlet"}, {Calibrator::kHistogram, "histogram"},
      {Calibrator::kIsotonic, "isotonic"},   {Calibrator::kPlatt, "platt"},
      {Calibrator::kBeta, "beta"}};
  return *t;
}
const NameTable<FocalSchedule>& FocalSchedules() {
  static const auto* t = new NameTable<FocalSchedule>{
      {FocalSchedule::kFixed, "fixed"}, {FocalSchedule::kFlsd53, "flsd53"}};
  return *t;
}
const NameTable<LabelPolicy>& LabelPolicies() {
  static const auto* t = new NameTable<LabelPolicy>{
      {LabelPolicy::kDominant, "dominant"}, {LabelPolicy::kFirst, "first"}};
  return *t;
}
const NameTable<SmoothingMode>& SmoothingModes() {
  static const auto* t = new NameTable<SmoothingMode>{
      {SmoothingMode::kUniform, "uniform"}, {SmoothingMode::kOthers, "others"}};
  return *t;
}
const NameTable<NoiseKind>& NoiseKinds() {
  static const auto* t = new NameTable<NoiseKind>{
      {NoiseKind::kPair, "pair"}, {NoiseKind::kSymmetric, "symmetric"}};
  return *t;
}
const NameTable<Schedule>& Schedules() {
  static const auto* t =
      new NameTable<Schedule>{{Schedule::kConstant, "constant"},
                              {Schedule::kStep, "step"},
                              {Schedule::kCosine, "cosine"}};
  return *t;
}
const NameTable<OptimizerKind>& Optimizers() {
  static const auto* t = new NameTable<OptimizerKind>{
      {OptimizerKind::kSgd, "sgd"}, {OptimizerKind::kAdam, "adam"}};
  return *t;
}
const NameTable<Augment>& Augments() {
  static const auto* t =
      new NameTable<Augment>{{Augment::kAuto, "auto"},
                             {Augment::kNone, "none"},
                             {Augment::kCropFlip, "crop_flip"}};
  return *t;
}
const NameTable<PredictionsMode>& PredictionsModes() {
  static const auto* t = new NameTable<PredictionsMode>{
      {PredictionsMode::kNone, "none"},
      {PredictionsMode::kFinal, "final"},
      {PredictionsMode::kEveryN, "every_n"}};
  return *t;
}

template <typename E>
absl::string_view NameIn(const NameTable<E>& table, E v) {
  for (const auto& [e, name] : table)
    if (e == v) return name;
  return "?";
}

template <typename E>
std::string AllNames(const NameTable<E>& table) {
  std::vector<absl::string_view> names;
  for (const auto& entry : table) names.push_back(entry.second);
  return absl::StrJoin(names, "|");
}

template <typename E>
absl::StatusOr<E> ParseIn(const NameTable<E>& table, absl::string_view s,
                          absl::string_view field) {
  std::string lower = absl::AsciiStrToLower(s);
  for (const auto& [e, name] : table)
    if (lower == name) return e;
  return absl::InvalidArgumentError(absl::StrCat(
      field, " must be one of ", AllNames(table), ", got \"", Echo(s), "\""));
}

// Range checks that build the project's one error form.
absl::Status InRange(absl::string_view field, double v, double lo, double hi) {
  if (std::isfinite(v) && v >= lo && v <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be in [", lo, ", ", hi, "], got ", v));
}
absl::Status InHalfOpen(absl::string_view field, double v, double lo,
                        double hi) {
  if (std::isfinite(v) && v >= lo && v < hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be in [", lo, ", ", hi, "), got ", v));
}
absl::Status InOpenClosed(absl::string_view field, double v, double lo,
                          double hi) {
  if (std::isfinite(v) && v > lo && v <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be in (", lo, ", ", hi, "], got ", v));
}

absl::Status ValidateDevice(const std::string& device) {
  if (device == "cpu" || device == "cuda") return absl::OkStatus();
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
      device.size() <= 8 &&
      std::all_of(device.begin() + 5, device.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device must be cpu, cuda or cuda:N (N in [0, 999]), got \"",
                   device, "\""));
}

}  // namespace

absl::string_view Name(DatasetKind v) { return NameIn(Datasets(), v); }
absl::string_view Name(ModelKind v) { return NameIn(Models(), v); }
absl::string_view Name(MethodKind v) { return NameIn(Methods(), v); }
absl::string_view Name(LabelPolicy v) { return NameIn(LabelPolicies(), v); }
absl::string_view Name(SmoothingMode v) { return NameIn(SmoothingModes(), v); }
absl::string_view Name(NoiseKind v) { return NameIn(NoiseKinds(), v); }
absl::string_view Name(Schedule v) { return NameIn(Schedules(), v); }
absl::string_view Name(Augment v) { return NameIn(Augments(), v); }
absl::string_view Name(FocalSchedule v) { return NameIn(FocalSchedules(), v); }
absl::string_view Name(Calibrator v) { return NameIn(Calibrators(), v); }
absl::StatusOr<Calibrator> ParseCalibrator(absl::string_view s,
                                           absl::string_view field) {
  return ParseIn(Calibrators(), s, field);
}
absl::string_view SplitOf(Calibrator v) {
  switch (v) {
    case Calibrator::kVector:
      return "test_vs";
    case Calibrator::kMatrix:
      return "test_ms";
    case Calibrator::kDirichlet:
      return "test_dir";
    case Calibrator::kHistogram:
      return "test_hist";
    case Calibrator::kIsotonic:
      return "test_iso";
    case Calibrator::kPlatt:
      return "test_platt";
    case Calibrator::kBeta:
      return "test_beta";
  }
  return "";
}
absl::StatusOr<FocalSchedule> ParseFocalSchedule(absl::string_view s,
                                                 absl::string_view field) {
  return ParseIn(FocalSchedules(), s, field);
}
absl::string_view Name(PredictionsMode v) {
  return NameIn(PredictionsModes(), v);
}
absl::string_view Name(OptimizerKind v) { return NameIn(Optimizers(), v); }

absl::StatusOr<DatasetKind> ParseDataset(absl::string_view s,
                                         absl::string_view field) {
  return ParseIn(Datasets(), s, field);
}
absl::StatusOr<ModelKind> ParseModel(absl::string_view s,
                                     absl::string_view field) {
  return ParseIn(Models(), s, field);
}
absl::StatusOr<MethodKind> ParseMethod(absl::string_view s,
                                       absl::string_view field) {
  std::string lower = absl::AsciiStrToLower(s);
  if (lower == "ls" || lower == "label-smoothing")
    return MethodKind::kLabelSmoothing;
  if (lower == "feature-mixup" || lower == "fmixup")
    return MethodKind::kFeatureMixup;
  return ParseIn(Methods(), lower, field);
}
absl::StatusOr<LabelPolicy> ParseLabelPolicy(absl::string_view s,
                                             absl::string_view field) {
  return ParseIn(LabelPolicies(), s, field);
}
absl::StatusOr<SmoothingMode> ParseSmoothingMode(absl::string_view s,
                                                 absl::string_view field) {
  return ParseIn(SmoothingModes(), s, field);
}
absl::StatusOr<NoiseKind> ParseNoiseKind(absl::string_view s,
                                         absl::string_view field) {
  return ParseIn(NoiseKinds(), s, field);
}
absl::StatusOr<Schedule> ParseSchedule(absl::string_view s,
                                       absl::string_view field) {
  return ParseIn(Schedules(), s, field);
}
absl::StatusOr<OptimizerKind> ParseOptimizer(absl::string_view s,
                                             absl::string_view field) {
  return ParseIn(Optimizers(), s, field);
}
absl::StatusOr<Augment> ParseAugment(absl::string_view s,
                                     absl::string_view field) {
  return ParseIn(Augments(), s, field);
}
absl::StatusOr<PredictionsMode> ParsePredictionsMode(absl::string_view s,
                                                     absl::string_view field) {
  return ParseIn(PredictionsModes(), s, field);
}

bool KeepsPredictions(const TrainConfig& c, int epoch) {
  switch (c.predictions) {
    case PredictionsMode::kNone:
      return false;
    case PredictionsMode::kFinal:
      return epoch == c.epochs;
    case PredictionsMode::kEveryN:
      return epoch == c.epochs ||
             (c.predictions_every > 0 && epoch % c.predictions_every == 0);
  }
  return false;
}

std::string DatasetNames() { return AllNames(Datasets()); }
std::string ModelNames() { return AllNames(Models()); }
std::string MethodNames() { return AllNames(Methods()); }

absl::string_view HyperparameterName(MethodKind m) {
  switch (m) {
    case MethodKind::kMixup:
    case MethodKind::kFeatureMixup:
      return "alpha";
    case MethodKind::kLabelSmoothing:
      return "epsilon";
    case MethodKind::kErl:
      return "beta";
    case MethodKind::kFocal:
      return "gamma";
    case MethodKind::kCutmix:
    case MethodKind::kRegmixup:
    case MethodKind::kManifoldMixup:
      return "alpha";
    case MethodKind::kMmce:
      return "lambda";
    case MethodKind::kBaseline:
      return "";
  }
  return "";
}

double* HyperparameterField(TrainConfig& c) {
  switch (c.method) {
    case MethodKind::kMixup:
    case MethodKind::kFeatureMixup:
    case MethodKind::kCutmix:
    case MethodKind::kRegmixup:
    case MethodKind::kManifoldMixup:
      return &c.alpha;
    case MethodKind::kLabelSmoothing:
      return &c.epsilon;
    case MethodKind::kErl:
      return &c.beta;
    case MethodKind::kFocal:
      return &c.gamma;
    case MethodKind::kMmce:
      return &c.mmce_lambda;
    case MethodKind::kBaseline:
      return nullptr;
  }
  return nullptr;
}

std::vector<MethodKind> MethodsWithHyperparameter(absl::string_view param) {
  std::vector<MethodKind> out;
  for (const auto& [m, name] : Methods()) {
    if (!param.empty() && HyperparameterName(m) == param) out.push_back(m);
  }
  return out;
}

std::string HyperparameterNames() { return "alpha|epsilon|beta|gamma|lambda"; }

std::vector<int> EffectiveMilestones(const TrainConfig& config) {
  if (!config.milestones.empty()) return config.milestones;
  std::vector<int> m;
  int half = config.epochs / 2, three_q = (config.epochs * 3) / 4;
  if (half >= 1) m.push_back(half);
  if (three_q > half) m.push_back(three_q);
  return m;
}

int ClassCount(DatasetKind dataset, const SyntheticOptions& synthetic) {
  switch (dataset) {
    case DatasetKind::kCifar100:
      return 100;
    case DatasetKind::kSynthetic:
      return synthetic.classes;
    case DatasetKind::kNpz:
    case DatasetKind::kImageFolder:
      return 0;
    default:
      return 10;
  }
}

absl::Status Validate(const TrainConfig& c) {
  const SyntheticOptions& s = c.synthetic;
  if (c.dataset == DatasetKind::kSynthetic) {
    for (absl::Status st :
         {InRange("synthetic.classes", s.classes, 2, 1000),
          InRange("synthetic.channels", s.channels, 1, 16),
          InRange("synthetic.size", s.size, 1, 64),
          InRange("synthetic.train_count", static_cast<double>(s.train_count),
                  s.classes, 1000000),
          InRange("synthetic.test_count", static_cast<double>(s.test_count),
                  s.classes, 1000000),
          InRange("synthetic.separation", s.separation, 0, 100)}) {
      if (!st.ok()) return st;
    }
  }
  for (absl::Status st :
       {InRange("train_limit", static_cast<double>(c.train_limit), 0, 1e7),
        InRange("test_limit", static_cast<double>(c.test_limit), 0, 1e7),
        InRange("val_fraction", c.val_fraction, 0, 0.5),
        InHalfOpen("label_noise", c.label_noise, 0, 1),
        InRange("alpha", c.alpha, 0, 10),
        InHalfOpen("epsilon", c.epsilon, 0, 1),
        InRange("beta", c.beta, 0, 10),
        InRange("gamma", c.gamma, 0, 10),
        InRange("cutmix_prob", c.cutmix_prob, 0, 1),
        InRange("regmixup_weight", c.regmixup_weight, 0, 10),
        InRange("lambda", c.mmce_lambda, 0, 100),
        InRange("epochs", c.epochs, 1, 10000),
        InRange("batch_size", c.batch_size, 1, 65536),
        InOpenClosed("lr", c.lr, 0, 10),
        InHalfOpen("momentum", c.momentum, 0, 1),
        InRange("weight_decay", c.weight_decay, 0, 1),
        InOpenClosed("lr_gamma", c.lr_gamma, 0, 1),
        InRange("threads", c.threads, 0, 1024),
        InRange("ece_bins", c.ece_bins, 1, 1000),
        InRange("eval_batch_size", c.eval_batch_size, 1, 65536),
        InRange("noise_eval_count", static_cast<double>(c.noise_eval_count), 0,
                1e6),
        InRange("ood_count", static_cast<double>(c.ood_count), 1, 1e6),
        InRange("train_eval_count", static_cast<double>(c.train_eval_count), 0,
                1e6),
        InRange("checkpoint_every", c.checkpoint_every, 0, c.epochs),
        ValidateDevice(c.device)}) {
    if (!st.ok()) return st;
  }
  if (c.nesterov && c.optimizer != OptimizerKind::kSgd) {
    return absl::InvalidArgumentError(
        "nesterov applies to optimizer sgd only, got optimizer adam");
  }
  if (c.nesterov && c.momentum <= 0) {
    return absl::InvalidArgumentError(
        "nesterov needs momentum in (0, 1), got momentum 0");
  }
  if (c.method == MethodKind::kManifoldMixup) {
    if (c.mixup_blocks.size() > 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mixup_blocks must list at most 16 blocks, got ",
          c.mixup_blocks.size()));
    }
    for (size_t i = 0; i < c.mixup_blocks.size(); ++i) {
      if (c.mixup_blocks[i] < 0 || c.mixup_blocks[i] > 15) {
        return absl::InvalidArgumentError(
            absl::StrCat("mixup_blocks[", i, "] must be in [0, 15], got ",
                         c.mixup_blocks[i]));
      }
    }
  }
  if (!c.calibrators.empty() && c.val_fraction <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "calibrators (", Name(c.calibrators[0]),
        ") need val_fraction in (0, 0.5], got 0"));
  }
  for (size_t i = 0; i < c.calibrators.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.calibrators[i] == c.calibrators[j]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "calibrators[", i, "] repeats ", Name(c.calibrators[i])));
      }
    }
  }
  if (c.temperature_scaling && c.val_fraction <= 0) {
    return absl::InvalidArgumentError(
        "temperature_scaling needs val_fraction in (0, 0.5], got 0");
  }
  // Only Fashion-MNIST has a Debian package with a default directory; a
  // spec the coordinator accepts must name every other dataset's files, or
  // it would fail on the worker instead.
  if (c.dataset == DatasetKind::kCifar10 ||
      c.dataset == DatasetKind::kCifar100) {
    if (c.data_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "data_dir is required for ", Name(c.dataset),
          ": the directory holding the binary version's .bin files"));
    }
  }
  if (c.dataset == DatasetKind::kMnist && c.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "data_dir is required for mnist: the directory holding its IDX files "
        "(Debian has no MNIST package)");
  }
  const bool file_data = c.dataset == DatasetKind::kNpz ||
                         c.dataset == DatasetKind::kImageFolder;
  if (file_data && c.data_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_file is required for dataset ", Name(c.dataset),
        c.dataset == DatasetKind::kNpz ? ": the .npz file"
                                       : ": the folder of class subfolders"));
  }
  if (!file_data && !c.data_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_file applies to dataset npz or image-folder, got dataset ",
        Name(c.dataset)));
  }
  if (c.dataset == DatasetKind::kImageFolder) {
    if (absl::Status st = InRange("image_size", c.image_size, 4, 512);
        !st.ok())
      return st;
  }
  if (c.model == ModelKind::kTorchScript && c.model_file.empty()) {
    return absl::InvalidArgumentError(
        "model_file is required for model torchscript: the TorchScript file");
  }
  if (c.model != ModelKind::kTorchScript && !c.model_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_file applies to model torchscript, got model ", Name(c.model)));
  }
  int prev = 0;
  for (int m : c.milestones) {
    if (m <= prev || m > c.epochs) {
      return absl::InvalidArgumentError(
          absl::StrCat("milestones must be strictly increasing epochs in [1, ",
                       c.epochs, "], got ", absl::StrJoin(c.milestones, ",")));
    }
    prev = m;
  }
  if (c.checkpoint_every > 0 && c.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError(
        "checkpoint_dir is required when checkpoint_every > 0");
  }
  const int k = ClassCount(c.dataset, c.synthetic);
  if (c.predictions == PredictionsMode::kEveryN &&
      (c.predictions_every < 1 || c.predictions_every > c.epochs)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "predictions_every must be in [1, ", c.epochs,
        "] (the epochs) with predictions every_n, got ", c.predictions_every));
  }
  if (c.predictions != PredictionsMode::kNone && k > 0) {
    // The test set's size (file datasets: checked when loaded): the dataset's, at most test_limit.
    int64_t test = c.dataset == DatasetKind::kSynthetic
                       ? c.synthetic.test_count
                       : 10000;
    if (c.test_limit > 0) test = std::min(test, c.test_limit);
    const int64_t classes =
        c.classes.empty() ? k : static_cast<int64_t>(c.classes.size());
    if (test * classes > kMaxPredictionValues) {
      return absl::InvalidArgumentError(absl::StrCat(
          "predictions: ", test, " test examples x ", classes,
          " classes = ", test * classes, " values to keep per epoch; at most ",
          kMaxPredictionValues,
          " (4 MB as float16): set test_limit, or predictions none"));
    }
  }
  if (!c.classes.empty() && k > 0) {
    if (c.classes.size() < 2 || static_cast<int>(c.classes.size()) > k) {
      return absl::InvalidArgumentError(absl::StrCat(
          "classes must list 2 to ", k, " classes of ", Name(c.dataset),
          ", got ", c.classes.size()));
    }
    std::vector<bool> seen(k, false);
    for (size_t i = 0; i < c.classes.size(); ++i) {
      const int v = c.classes[i];
      if (v < 0 || v >= k) {
        return absl::InvalidArgumentError(
            absl::StrCat("classes[", i, "] must be in [0, ", k - 1, "] (",
                         Name(c.dataset), " has ", k, " classes), got ", v));
      }
      if (seen[v]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "classes[", i, "] repeats class ", v, "; classes must be distinct"));
      }
      seen[v] = true;
    }
  }
  if (c.ood_dataset == kHeldOutClasses) {
    if (c.classes.empty() || (k > 0 && static_cast<int>(c.classes.size()) >= k)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ood_dataset ", kHeldOutClasses,
          " needs data.classes to leave out some of the ", k, " classes of ",
          Name(c.dataset), " (got ", c.classes.size(), " listed)"));
    }
  } else if (!c.ood_dataset.empty()) {
    absl::StatusOr<DatasetKind> ood =
        ParseDataset(c.ood_dataset, "ood_dataset");
    if (!ood.ok()) return ood.status();
    if (*ood == DatasetKind::kSynthetic || *ood == DatasetKind::kNpz ||
        *ood == DatasetKind::kImageFolder) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ood_dataset must be one of "
          "fashion-mnist|mnist|cifar10|cifar100|held-out-classes, got \"",
          Name(*ood), "\" (an .npz brings its own x_ood)"));
    }
    if (*ood != DatasetKind::kFashionMnist && c.ood_data_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ood_data_dir is required for ood_dataset ", Name(*ood),
          " (only fashion-mnist has a default directory)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mixcal::calib
