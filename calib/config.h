#ifndef MIXCAL_CALIB_CONFIG_H_
#define MIXCAL_CALIB_CONFIG_H_

// One training run's configuration, with the names, ranges and defaults of
// reference/methods-and-metrics.md. Torch-free: the agent, the CLI tools and
// the coordinator's validation can include it cheaply.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mixcal::calib {

enum class DatasetKind {
  kFashionMnist,
  kMnist,
  kCifar10,
  kCifar100,
  kSynthetic,
  kNpz,         // arrays in a NumPy .npz file (data_file)
  kImageFolder  // a folder of PNG/JPEG images, one subfolder per class
};
// kTorchScript: the researcher's own network, a TorchScript file
// (model_file; docs/own-model.md has the module convention).
enum class ModelKind { kMlp, kLenet, kResnet18, kVgg16, kTorchScript };
enum class MethodKind {
  kBaseline,
  kMixup,
  kFeatureMixup,
  kLabelSmoothing,
  kErl,
  kFocal,
  kCutmix,
  kRegmixup,
  kMmce,
  kManifoldMixup
};
enum class LabelPolicy { kDominant, kFirst };
enum class SmoothingMode { kUniform, kOthers };
enum class NoiseKind { kPair, kSymmetric };
enum class Schedule { kConstant, kStep, kCosine };
enum class OptimizerKind { kSgd, kAdam };
enum class Augment { kAuto, kNone, kCropFlip };
enum class PredictionsMode { kNone, kFinal, kEveryN };
enum class FocalSchedule { kFixed, kFlsd53 };
// Post-hoc calibrators beside temperature scaling, each its own split.
enum class Calibrator {
  kVector,
  kMatrix,
  kDirichlet,
  kHistogram,
  kIsotonic,
  kPlatt,
  kBeta
};

// Name tables. Parse* returns InvalidArgument naming `field` and the
// allowed names.
absl::string_view Name(DatasetKind v);
absl::string_view Name(ModelKind v);
absl::string_view Name(MethodKind v);
absl::string_view Name(LabelPolicy v);
absl::string_view Name(SmoothingMode v);
absl::string_view Name(NoiseKind v);
absl::string_view Name(Schedule v);
absl::string_view Name(OptimizerKind v);
absl::string_view Name(Augment v);
absl::string_view Name(PredictionsMode v);
absl::string_view Name(FocalSchedule v);
absl::string_view Name(Calibrator v);
// The split a calibrator's metrics go to: test_vs, test_ms, test_dir,
// test_hist, test_iso, test_platt.
absl::string_view SplitOf(Calibrator v);
absl::StatusOr<DatasetKind> ParseDataset(absl::string_view s,
                                         absl::string_view field = "dataset");
absl::StatusOr<ModelKind> ParseModel(absl::string_view s,
                                     absl::string_view field = "model");
// Accepts the short forms "ls" and "label-smoothing" for label_smoothing and
// "feature-mixup" for feature_mixup.
absl::StatusOr<MethodKind> ParseMethod(absl::string_view s,
                                       absl::string_view field = "method");
absl::StatusOr<LabelPolicy> ParseLabelPolicy(
    absl::string_view s, absl::string_view field = "label_policy");
absl::StatusOr<SmoothingMode> ParseSmoothingMode(
    absl::string_view s, absl::string_view field = "ls_mode");
absl::StatusOr<NoiseKind> ParseNoiseKind(
    absl::string_view s, absl::string_view field = "noise_kind");
absl::StatusOr<OptimizerKind> ParseOptimizer(
    absl::string_view s, absl::string_view field = "optimizer");
absl::StatusOr<Schedule> ParseSchedule(absl::string_view s,
                                       absl::string_view field = "schedule");
absl::StatusOr<Augment> ParseAugment(absl::string_view s,
                                     absl::string_view field = "augment");
absl::StatusOr<Calibrator> ParseCalibrator(
    absl::string_view s, absl::string_view field = "calibrators");
absl::StatusOr<FocalSchedule> ParseFocalSchedule(
    absl::string_view s, absl::string_view field = "focal_schedule");
absl::StatusOr<PredictionsMode> ParsePredictionsMode(
    absl::string_view s, absl::string_view field = "predictions");

// The hyperparameter a method's sweep value sets ("alpha" for mixup and
// feature_mixup, "epsilon" for label_smoothing, "beta" for erl; "" for
// baseline), and the inverse: the methods whose value is `param`
// (empty when no method has it).
absl::string_view HyperparameterName(MethodKind m);
std::vector<MethodKind> MethodsWithHyperparameter(absl::string_view param);
// "alpha|epsilon|beta".
std::string HyperparameterNames();

// All names of a kind joined with '|', for help texts and error messages.
std::string DatasetNames();
std::string ModelNames();
std::string MethodNames();

// The generated dataset: class c is N(mu_c, I) in channels*size*size
// dimensions, with mu_0 = 0, mu_1 = separation * (1, ..., 1) and, for
// c >= 2, mu_c = separation * s_c with s_c a random sign vector from the
// seed. With two classes this is the class-overlap setting of Chidambaram &
// Ge: N(0, I) against N(mu * 1, I).
struct SyntheticOptions {
  int classes = 4;             // [2, 1000]
  int channels = 1;            // [1, 16]
  int size = 4;                // image side, [1, 64]
  int64_t train_count = 2048;  // [classes, 1000000]
  int64_t test_count = 1024;   // [classes, 1000000]
  double separation = 1.0;     // [0, 100]
};

// The number of classes of a dataset (synthetic: its option; 0 for the
// file datasets, whose classes come from their labels when loaded).
int ClassCount(DatasetKind dataset, const SyntheticOptions& synthetic);

// ood_dataset's value for the held-out classes of the training dataset.
inline constexpr char kHeldOutClasses[] = "held-out-classes";

struct TrainConfig {
  // --- data ---
  DatasetKind dataset = DatasetKind::kFashionMnist;
  // Directory holding the dataset's files. Empty: the dataset's default
  // (Fashion-MNIST: /usr/share/datasets/fashion-mnist from the Debian package
  // dataset-fashion-mnist; mnist: /usr/share/datasets/mnist; CIFAR has none).
  std::string data_dir;
  // npz: the .npz file; image-folder: the folder (one subfolder per class,
  // named in sorted order as classes 0..K-1). Required for both, unused
  // otherwise.
  std::string data_file;
  // image-folder: images are resized to image_size x image_size, [4, 512].
  int image_size = 32;
  // image-folder: where decoded images are kept for later jobs (the
  // worker's --cache_dir); empty = decoded anew by every job.
  std::string cache_dir;
  SyntheticOptions synthetic;
  // Use at most this many training examples (after the validation split);
  // 0 = all. [0, 10000000]
  int64_t train_limit = 0;
  // Use at most this many test examples; 0 = all. [0, 10000000]
  int64_t test_limit = 0;
  // Fraction of the training set held out (from the seed) for temperature
  // scaling. [0, 0.5]; 0 turns temperature scaling off.
  double val_fraction = 0.1;
  // kAuto: random crop (pad 4) and horizontal flip for CIFAR, none otherwise.
  Augment augment = Augment::kAuto;
  // Training labels flipped, before the validation split. [0, 1)
  double label_noise = 0.0;
  NoiseKind noise_kind = NoiseKind::kPair;
  // Train and test on these classes only (relabelled 0..k-1 in this order);
  // empty = all. Distinct, each in [0, classes of the dataset), 2 or more.
  // With ood_dataset kHeldOutClasses the other classes' test examples are
  // the out-of-distribution split.
  std::vector<int> classes;

  // --- model and method ---
  ModelKind model = ModelKind::kLenet;
  // torchscript: the TorchScript file (torch.jit.script or trace, saved by
  // torch.jit.save); required for torchscript, unused otherwise.
  std::string model_file;
  MethodKind method = MethodKind::kBaseline;
  double alpha = 1.0;    // mixup, feature_mixup: Beta(alpha, alpha). [0, 10]
  double epsilon = 0.1;  // label_smoothing. [0, 1)
  double beta = 0.1;     // erl: entropy weight. [0, 10]
  // focal: gamma, [0, 10]; kFlsd53 uses 5 where p_y < 0.2, gamma elsewhere
  // (Mukhoti et al. 2020: gamma 3).
  double gamma = 3.0;
  FocalSchedule focal_schedule = FocalSchedule::kFixed;
  // cutmix (alpha as mixup's): the chance a batch is cut and mixed, [0, 1].
  double cutmix_prob = 0.5;
  // regmixup (alpha as mixup's): CE(clean) + weight * mixup loss, [0, 10].
  double regmixup_weight = 1.0;
  // mmce: CE + lambda * MMCE (Laplacian kernel, width 0.4), [0, 100].
  double mmce_lambda = 2.0;
  // manifold_mixup (alpha as mixup's): the blocks a batch may be mixed at,
  // one drawn per batch (0 = the inputs, k = after the model's k-th stage;
  // Verma et al. 2019 use 0, 1, 2). Distinct, each in [0, stages - 1].
  // Empty: those of 0, 1, 2 the model can mix (0, 1, 2 for mixcal's own
  // models; for a TorchScript module the inputs or embeddings and
  // features(x), as it defines them).
  std::vector<int> mixup_blocks;
  LabelPolicy label_policy = LabelPolicy::kDominant;
  SmoothingMode ls_mode = SmoothingMode::kUniform;

  // --- optimisation ---
  // kSgd: momentum, optional Nesterov, L2 weight decay. kAdam: Adam with
  // betas (0.9, 0.999), eps 1e-8, L2 weight decay (PyTorch's Adam);
  // momentum and nesterov do not apply.
  OptimizerKind optimizer = OptimizerKind::kSgd;
  int epochs = 10;             // [1, 10000]
  int batch_size = 128;        // [1, 65536]
  double lr = 0.05;            // (0, 10]
  double momentum = 0.9;       // [0, 1)
  bool nesterov = false;       // needs momentum > 0
  double weight_decay = 5e-4;  // [0, 1]
  Schedule schedule = Schedule::kStep;
  // Epochs after which lr is multiplied by lr_gamma (step schedule),
  // strictly increasing, each in [1, epochs]. Empty: 50% and 75% of epochs.
  std::vector<int> milestones;
  double lr_gamma = 0.1;  // (0, 1]
  int threads = 0;        // intra-op threads; 0 = all cores. [0, 1024]
  uint64_t seed = 0;
  // "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";

  // --- evaluation, after every epoch ---
  int ece_bins = 15;                // [1, 1000]
  int eval_batch_size = 1000;       // [1, 65536]
  bool temperature_scaling = true;  // needs val_fraction > 0
  // More calibrators fitted on the validation split (docs/training-core.md);
  // distinct; need val_fraction > 0.
  std::vector<Calibrator> calibrators;
  // Gaussian-noise inputs (training mean and std) evaluated as
  // out-of-distribution data; 0 = off. [0, 1000000]
  int64_t noise_eval_count = 0;
  // A second dataset whose test split is evaluated as out-of-distribution
  // data; empty = off. Must match the training data's channels and size.
  // kHeldOutClasses: the test examples of the classes `classes` leaves out
  // (unknown categories of the same dataset).
  std::string ood_dataset;
  std::string ood_data_dir;
  int64_t ood_count = 10000;  // [1, 1000000]
  // A fixed subset of the training set evaluated like the test split
  // (split "train"); 0 = off. [0, 1000000]
  int64_t train_eval_count = 0;
  // Keep the test split's probabilities (float16) and labels at the final
  // epoch (kFinal), also every `predictions_every` epochs (kEveryN), or
  // never. At most kMaxPredictionValues (test examples x classes).
  PredictionsMode predictions = PredictionsMode::kFinal;
  int predictions_every = 0;  // kEveryN: [1, epochs]

  // --- checkpoints ---
  // Write a checkpoint every N epochs into checkpoint_dir; 0 = never.
  int checkpoint_every = 0;  // [0, epochs]
  std::string checkpoint_dir;
  // Resume from this checkpoint file (written by an earlier run of the same
  // configuration); empty = start fresh.
  std::string resume_from;
};

// The field a method's sweep value sets (alpha, epsilon, beta, gamma or
// mmce_lambda); nullptr for baseline.
double* HyperparameterField(TrainConfig& c);

// Whether epoch `epoch` keeps predictions under `c`.
bool KeepsPredictions(const TrainConfig& c, int epoch);

// The milestones actually used (the defaults filled in).
std::vector<int> EffectiveMilestones(const TrainConfig& config);

// Checks every field. The error names the field, the value and the allowed
// range, e.g. "alpha must be in [0, 10], got -1".
absl::Status Validate(const TrainConfig& config);

}  // namespace mixcal::calib

#endif  // MIXCAL_CALIB_CONFIG_H_
