#include "worker/train_flags.h"

#include <filesystem>
#include <functional>
#include <type_traits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/program.h"
#include "base/status_macros.h"

namespace mixcal::worker {
namespace {

using calib::TrainConfig;
using Setter = std::function<absl::Status(TrainConfig&, const std::string&)>;

struct Flag {
  const char* name;
  const char* value;  // nullptr: a switch that takes no value
  const char* help;
  Setter set;
};

absl::Status NotA(const std::string& flag, const char* what,
                  const std::string& v) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " expects ", what, ", got \"", v, "\""));
}

Setter Double(const char* flag, double TrainConfig::*field) {
  return [=](TrainConfig& c, const std::string& v) {
    if (!absl::SimpleAtod(v, &(c.*field))) return NotA(flag, "a number", v);
    return absl::OkStatus();
  };
}
Setter Int(const char* flag, int TrainConfig::*field) {
  return [=](TrainConfig& c, const std::string& v) {
    if (!absl::SimpleAtoi(v, &(c.*field))) return NotA(flag, "an integer", v);
    return absl::OkStatus();
  };
}
Setter Int64(const char* flag, int64_t TrainConfig::*field) {
  return [=](TrainConfig& c, const std::string& v) {
    if (!absl::SimpleAtoi(v, &(c.*field))) return NotA(flag, "an integer", v);
    return absl::OkStatus();
  };
}
// A comma-separated list of integers (`what` names them in the error).
Setter IntList(const char* flag, const char* what,
               std::vector<int> TrainConfig::*field) {
  return [flag, what, field](TrainConfig& c, const std::string& v) -> absl::Status {
    (c.*field).clear();
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      int k;
      if (!absl::SimpleAtoi(part, &k)) return NotA(flag, what, v);
      (c.*field).push_back(k);
    }
    return absl::OkStatus();
  };
}

Setter String(std::string TrainConfig::*field) {
  return [=](TrainConfig& c, const std::string& v) {
    c.*field = v;
    return absl::OkStatus();
  };
}
// A numeric field of the synthetic dataset's options.
template <typename T>
Setter Synthetic(const char* flag, T calib::SyntheticOptions::*field) {
  return [=](TrainConfig& c, const std::string& v) {
    bool ok;
    if constexpr (std::is_floating_point_v<T>) {
      ok = absl::SimpleAtod(v, &(c.synthetic.*field));
    } else {
      ok = absl::SimpleAtoi(v, &(c.synthetic.*field));
    }
    return ok ? absl::OkStatus() : NotA(flag, "a number", v);
  };
}

template <typename E>
Setter Enum(const char* flag, E TrainConfig::*field,
            absl::StatusOr<E> (*parse)(absl::string_view, absl::string_view)) {
  return [=](TrainConfig& c, const std::string& v) -> absl::Status {
    MIXCAL_ASSIGN_OR_RETURN(c.*field, parse(v, absl::StrCat("--", flag)));
    return absl::OkStatus();
  };
}

const std::vector<Flag>& Flags() {
  static const auto* flags = new std::vector<Flag>{
      // data
      {"dataset", "NAME",
       "fashion-mnist|mnist|cifar10|cifar100|synthetic|npz|image-folder "
       "(default fashion-mnist)",
       Enum("dataset", &TrainConfig::dataset, &calib::ParseDataset)},
      {"data-dir", "DIR",
       "dataset directory (default: fashion-mnist "
       "/usr/share/datasets/fashion-mnist; "
       "required for mnist and cifar*)",
       String(&TrainConfig::data_dir)},
      {"data-file", "PATH",
       "your own data: an .npz (x_train, y_train, x_test, y_test; dataset "
       "npz) or a folder of class subfolders (dataset image-folder); sets "
       "the dataset by what PATH is (docs/own-model.md)",
       [](TrainConfig& c, const std::string& v) -> absl::Status {
         c.data_file = v;
         std::error_code ec;
         c.dataset = std::filesystem::is_directory(v, ec)
                         ? calib::DatasetKind::kImageFolder
                         : calib::DatasetKind::kNpz;
         return absl::OkStatus();
       }},
      {"image-size", "N",
       "image-folder: images resized to N x N, [4, 512] (default 32)",
       Int("image-size", &TrainConfig::image_size)},
      {"cache-dir", "DIR",
       "image-folder: keep the decoded images here for later runs (default: "
       "decode every run)",
       String(&TrainConfig::cache_dir)},
      {"train-limit", "N",
       "use at most N training examples, 0 = all (default 0)",
       Int64("train-limit", &TrainConfig::train_limit)},
      {"test-limit", "N", "use at most N test examples, 0 = all (default 0)",
       Int64("test-limit", &TrainConfig::test_limit)},
      {"val-fraction", "F",
       "fraction of training data held out for temperature scaling, [0, 0.5] "
       "(default 0.1)",
       Double("val-fraction", &TrainConfig::val_fraction)},
      {"augment", "MODE",
       "auto|none|crop_flip; auto = crop+flip for CIFAR only (default auto)",
       Enum("augment", &TrainConfig::augment, &calib::ParseAugment)},
      {"label-noise", "R",
       "fraction of training labels flipped, [0, 1) (default 0)",
       Double("label-noise", &TrainConfig::label_noise)},
      {"noise-kind", "KIND", "pair|symmetric (default pair)",
       Enum("noise-kind", &TrainConfig::noise_kind, &calib::ParseNoiseKind)},
      {"classes", "C1,C2,...",
       "train and test on these classes only, relabelled 0..k-1 in this "
       "order (default: all)",
       IntList("classes", "comma-separated class numbers",
               &TrainConfig::classes)},
      {"synthetic-classes", "K", "synthetic: classes, [2, 1000] (default 4)",
       Synthetic("synthetic-classes", &calib::SyntheticOptions::classes)},
      {"synthetic-channels", "C", "synthetic: channels, [1, 16] (default 1)",
       Synthetic("synthetic-channels", &calib::SyntheticOptions::channels)},
      {"synthetic-size", "S",
       "synthetic: image side in pixels, [1, 64] (default 4)",
       Synthetic("synthetic-size", &calib::SyntheticOptions::size)},
      {"synthetic-train", "N",
       "synthetic: training examples, [classes, 1000000] (default 2048)",
       Synthetic("synthetic-train", &calib::SyntheticOptions::train_count)},
      {"synthetic-test", "N",
       "synthetic: test examples, [classes, 1000000] (default 1024)",
       Synthetic("synthetic-test", &calib::SyntheticOptions::test_count)},
      {"synthetic-separation", "MU",
       "synthetic: class mean distance per dimension, [0, 100] (default 1)",
       Synthetic("synthetic-separation", &calib::SyntheticOptions::separation)},
      // model and method
      {"model", "NAME", "mlp|lenet|resnet18|vgg16|torchscript (default lenet)",
       Enum("model", &TrainConfig::model, &calib::ParseModel)},
      {"model-file", "FILE",
       "your own network: a TorchScript file (torch.jit.save); sets model "
       "torchscript (docs/own-model.md)",
       [](TrainConfig& c, const std::string& v) -> absl::Status {
         c.model_file = v;
         c.model = calib::ModelKind::kTorchScript;
         return absl::OkStatus();
       }},
      {"method", "NAME[:VALUE]",
       "baseline|mixup|feature_mixup|label_smoothing (ls)|erl|focal|cutmix|"
       "regmixup|mmce|manifold_mixup; NAME:VALUE also sets its "
       "hyperparameter, e.g. "
       "mixup:0.4, focal:3 (default baseline)",
       [](TrainConfig& c, const std::string& v) -> absl::Status {
         std::vector<std::string> parts =
             absl::StrSplit(v, absl::MaxSplits(':', 1));
         MIXCAL_ASSIGN_OR_RETURN(c.method,
                                 calib::ParseMethod(parts[0], "--method"));
         if (parts.size() == 1) return absl::OkStatus();
         double x;
         if (!absl::SimpleAtod(parts[1], &x))
           return NotA("method", "NAME:NUMBER", v);
         double* field = calib::HyperparameterField(c);
         if (field == nullptr)
           return absl::InvalidArgumentError("--method baseline takes no value");
         *field = x;
         return absl::OkStatus();
       }},
      {"alpha", "A",
       "mixup, feature_mixup, cutmix, regmixup: Beta(A, A), [0, 10] (default 1)",
       Double("alpha", &TrainConfig::alpha)},
      {"epsilon", "E", "label_smoothing: smoothing, [0, 1) (default 0.1)",
       Double("epsilon", &TrainConfig::epsilon)},
      {"beta", "B", "erl: entropy penalty weight, [0, 10] (default 0.1)",
       Double("beta", &TrainConfig::beta)},
      {"gamma", "G", "focal: focusing parameter, [0, 10] (default 3)",
       Double("gamma", &TrainConfig::gamma)},
      {"focal-schedule", "S",
       "focal: fixed|flsd53 (gamma 5 where p_y < 0.2) (default fixed)",
       Enum("focal-schedule", &TrainConfig::focal_schedule,
            &calib::ParseFocalSchedule)},
      {"cutmix-prob", "P", "cutmix: chance a batch is mixed, [0, 1] (default 0.5)",
       Double("cutmix-prob", &TrainConfig::cutmix_prob)},
      {"regmixup-weight", "W",
       "regmixup: weight of the mixup term, [0, 10] (default 1)",
       Double("regmixup-weight", &TrainConfig::regmixup_weight)},
      {"mixup-blocks", "K1,K2,...",
       "manifold_mixup: blocks to mix at, 0 = inputs (default 0,1,2)",
       IntList("mixup-blocks", "comma-separated block numbers",
               &TrainConfig::mixup_blocks)},
      {"mmce-lambda", "L", "mmce: penalty weight, [0, 100] (default 2)",
       Double("mmce-lambda", &TrainConfig::mmce_lambda)},
      {"label-policy", "P",
       "feature_mixup target: dominant|first (default dominant)",
       Enum("label-policy", &TrainConfig::label_policy,
            &calib::ParseLabelPolicy)},
      {"ls-mode", "M", "label_smoothing mass: uniform|others (default uniform)",
       Enum("ls-mode", &TrainConfig::ls_mode, &calib::ParseSmoothingMode)},
      // optimisation
      {"epochs", "N", "epochs, [1, 10000] (default 10)",
       Int("epochs", &TrainConfig::epochs)},
      {"batch-size", "N", "batch size, [1, 65536] (default 128)",
       Int("batch-size", &TrainConfig::batch_size)},
      {"optimizer", "NAME", "sgd|adam (default sgd; adam ignores --momentum)",
       Enum("optimizer", &TrainConfig::optimizer, &calib::ParseOptimizer)},
      {"lr", "LR", "SGD learning rate, (0, 10] (default 0.05)",
       Double("lr", &TrainConfig::lr)},
      {"momentum", "M", "SGD momentum, [0, 1) (default 0.9)",
       Double("momentum", &TrainConfig::momentum)},
      {"nesterov", nullptr, "Nesterov momentum",
       [](TrainConfig& c, const std::string&) {
         c.nesterov = true;
         return absl::OkStatus();
       }},
      {"weight-decay", "W", "weight decay, [0, 1] (default 5e-4)",
       Double("weight-decay", &TrainConfig::weight_decay)},
      {"schedule", "S", "constant|step|cosine (default step)",
       Enum("schedule", &TrainConfig::schedule, &calib::ParseSchedule)},
      {"milestones", "E1,E2,...",
       "step schedule: epochs after which lr *= lr-gamma (default 50% and 75% "
       "of epochs)",
       IntList("milestones", "comma-separated epochs",
               &TrainConfig::milestones)},
      {"lr-gamma", "G", "step schedule factor, (0, 1] (default 0.1)",
       Double("lr-gamma", &TrainConfig::lr_gamma)},
      {"threads", "N",
       "intra-op CPU threads, [0, 1024]; 0 = OMP_NUM_THREADS or all cores "
       "(default 0)",
       Int("threads", &TrainConfig::threads)},
      {"seed", "N", "seed of everything random (default 0)",
       [](TrainConfig& c, const std::string& v) {
         return absl::SimpleAtoi(v, &c.seed)
                    ? absl::OkStatus()
                    : NotA("seed", "a non-negative integer", v);
       }},
      {"device", "D", "cpu|cuda|cuda:N (default cpu)",
       String(&TrainConfig::device)},
      // evaluation
      {"ece-bins", "M", "reliability bins, [1, 1000] (default 15)",
       Int("ece-bins", &TrainConfig::ece_bins)},
      {"eval-batch-size", "N",
       "evaluation batch size, [1, 65536] (default 1000)",
       Int("eval-batch-size", &TrainConfig::eval_batch_size)},
      {"no-temperature-scaling", nullptr,
       "skip the temperature-scaled split test_ts",
       [](TrainConfig& c, const std::string&) {
         c.temperature_scaling = false;
         return absl::OkStatus();
       }},
      {"noise-eval", "N",
       "evaluate N Gaussian-noise inputs as OOD (split noise), 0 = off "
       "(default 0)",
       Int64("noise-eval", &TrainConfig::noise_eval_count)},
      {"ood-dataset", "NAME",
       "evaluate this dataset's test inputs as OOD (split ood); "
       "held-out-classes: the test examples of the classes --classes leaves "
       "out",
       String(&TrainConfig::ood_dataset)},
      {"ood-data-dir", "DIR", "directory of --ood-dataset",
       String(&TrainConfig::ood_data_dir)},
      {"ood-count", "N", "OOD inputs used, [1, 1000000] (default 10000)",
       Int64("ood-count", &TrainConfig::ood_count)},
      {"calibrators", "C1,C2,...",
       "post-hoc calibrators fitted on the validation split, each its own "
       "split: temperature|vector|matrix|dirichlet|histogram|isotonic|platt|"
       "beta "
       "(default temperature)",
       [](TrainConfig& c, const std::string& v) -> absl::Status {
         c.calibrators.clear();
         c.temperature_scaling = false;
         for (absl::string_view part :
              absl::StrSplit(v, ',', absl::SkipEmpty())) {
           if (part == "temperature") {
             c.temperature_scaling = true;
             continue;
           }
           MIXCAL_ASSIGN_OR_RETURN(calib::Calibrator cal,
                                   calib::ParseCalibrator(part, "--calibrators"));
           c.calibrators.push_back(cal);
         }
         return absl::OkStatus();
       }},
      {"predictions", "MODE",
       "keep the test split's probabilities: none|final|every_n (default "
       "final)",
       Enum("predictions", &TrainConfig::predictions,
            &calib::ParsePredictionsMode)},
      {"predictions-every", "N", "every_n: every N epochs, [1, epochs]",
       Int("predictions-every", &TrainConfig::predictions_every)},
      {"train-eval", "N",
       "calibration of N fixed training examples (split train), 0 = off",
       Int64("train-eval", &TrainConfig::train_eval_count)},
      // checkpoints
      {"checkpoint-dir", "DIR",
       "write checkpoints here (every epoch unless --checkpoint-every)",
       String(&TrainConfig::checkpoint_dir)},
      {"checkpoint-every", "N",
       "checkpoint every N epochs, [0, epochs] (default 1 with a dir)",
       Int("checkpoint-every", &TrainConfig::checkpoint_every)},
      {"resume", "FILE", "resume from a checkpoint of the same configuration",
       String(&TrainConfig::resume_from)},
  };
  return *flags;
}

}  // namespace

std::string TrainHelp() {
  std::string out =
      "mixcal-train: one training run, calibration measured after every "
      "epoch.\n"
      "\n"
      "  mixcal-train --dataset fashion-mnist --model lenet --method mixup "
      "--alpha 0.4 \\\n"
      "               --epochs 10 --seed 0 --threads 2\n"
      "\n"
      "Prints one JSON object per line for every epoch and split (test, "
      "test_ts, and\n"
      "train/noise/ood when asked for) with accuracy, nll, brier, ece, mce, "
      "oe,\n"
      "adaptive_ece, mean_confidence, mean_entropy, train_loss, lr, "
      "samples_per_sec\n"
      "and the reliability bins. Exit codes: 0 done, 1 run failed, 2 bad "
      "flags,\n"
      "130 interrupted.\n\nFlags:\n";
  for (const Flag& f : Flags()) {
    std::string left =
        absl::StrCat("  --", f.name, f.value ? absl::StrCat(" ", f.value) : "");
    if (left.size() < 30) left.resize(30, ' ');
    absl::StrAppend(&out, left, " ", f.help, "\n");
  }
  absl::StrAppend(&out,
                  "  --format jsonl|text            output: JSON lines "
                  "(default) or a readable table\n"
                  "  --help                         this text\n");
  return out;
}

absl::StatusOr<TrainCommand> ParseTrainFlags(int argc, char** argv) {
  TrainCommand cmd;
  bool every_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      cmd.help = true;
      return cmd;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg,
                       "\" (flags start with --; see --help)"));
    }
    auto [name, given] = SplitFlag(arg);
    const bool has_value = given.has_value();
    std::string value = given.value_or("");
    if (name == "format") {
      if (!has_value) {
        if (i + 1 >= argc)
          return absl::InvalidArgumentError(
              "--format needs a value: jsonl|text");
        value = argv[++i];
      }
      if (value != "jsonl" && value != "text") {
        return absl::InvalidArgumentError(absl::StrCat(
            "--format must be one of jsonl|text, got \"", value, "\""));
      }
      cmd.format = value;
      continue;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : Flags())
      if (name == f.name) flag = &f;
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (flag->value == nullptr) {
      if (has_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
    } else if (!has_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value: ", flag->value));
      }
      value = argv[++i];
    }
    if (name == "checkpoint-every") every_given = true;
    MIXCAL_RETURN_IF_ERROR(flag->set(cmd.config, value));
  }
  if (!cmd.config.checkpoint_dir.empty() && !every_given)
    cmd.config.checkpoint_every = 1;
  MIXCAL_RETURN_IF_ERROR(calib::Validate(cmd.config));
  return cmd;
}

}  // namespace mixcal::worker
