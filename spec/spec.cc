#include "spec/spec.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "spec/sha256.h"

namespace mixcal::spec {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", what));
}

}  // namespace

absl::StatusOr<calib::TrainConfig> ToTrainConfig(const v1::JobConfig& job) {
  calib::TrainConfig c;
  const v1::DataSpec& d = job.data();
  if (!d.dataset().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.dataset,
                            calib::ParseDataset(d.dataset(), "data.dataset"));
  }
  c.data_dir = d.data_dir();
  // Uploaded files stay named by their hash here; the worker puts the path
  // of its cached copy in their place before training (docs/own-model.md).
  if (!d.data_file().empty() && !d.data_path().empty()) {
    return absl::InvalidArgumentError(
        "data.data_file and data.data_path name the data twice; give one "
        "(data_file: an uploaded .npz; data_path: a path on the workers)");
  }
  if (!d.data_file().empty()) c.data_file = kUploadedPrefix + d.data_file();
  if (!d.data_path().empty()) c.data_file = d.data_path();
  if (d.image_size() > 0)
    c.image_size = static_cast<int>(std::min(d.image_size(), 100000u));
  c.train_limit =
      static_cast<int64_t>(std::min<uint64_t>(d.train_limit(), INT64_MAX));
  c.test_limit =
      static_cast<int64_t>(std::min<uint64_t>(d.test_limit(), INT64_MAX));
  if (d.has_val_fraction()) c.val_fraction = d.val_fraction();
  if (!d.augment().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.augment,
                            calib::ParseAugment(d.augment(), "data.augment"));
  }
  c.label_noise = d.label_noise();
  if (!d.noise_kind().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        c.noise_kind, calib::ParseNoiseKind(d.noise_kind(), "data.noise_kind"));
  }
  const v1::SyntheticSpec& s = d.synthetic();
  if (s.classes())
    c.synthetic.classes = static_cast<int>(std::min(s.classes(), 100000u));
  if (s.channels())
    c.synthetic.channels = static_cast<int>(std::min(s.channels(), 100000u));
  if (s.size())
    c.synthetic.size = static_cast<int>(std::min(s.size(), 100000u));
  if (s.train_count())
    c.synthetic.train_count =
        static_cast<int64_t>(std::min<uint64_t>(s.train_count(), INT64_MAX));
  if (s.test_count())
    c.synthetic.test_count =
        static_cast<int64_t>(std::min<uint64_t>(s.test_count(), INT64_MAX));
  if (s.has_separation()) c.synthetic.separation = s.separation();
  // More classes than any dataset has is refused by Validate; keep the copy
  // bounded before that.
  if (d.classes_size() > 100000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.classes lists ", d.classes_size(), " classes; at most 1000"));
  }
  for (uint32_t k : d.classes())
    c.classes.push_back(static_cast<int>(std::min(k, 100000u)));

  if (!job.model().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.model, calib::ParseModel(job.model(), "model"));
  }
  if (!job.model_file().empty())
    c.model_file = kUploadedPrefix + job.model_file();
  const v1::MethodSpec& m = job.method();
  MIXCAL_ASSIGN_OR_RETURN(c.method, calib::ParseMethod(m.name(), "method"));
  if (double* field = calib::HyperparameterField(c)) *field = job.value();
  if (!m.focal_schedule().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        c.focal_schedule,
        calib::ParseFocalSchedule(m.focal_schedule(), "focal_schedule"));
  }
  if (m.has_cutmix_prob()) c.cutmix_prob = m.cutmix_prob();
  if (m.has_regmixup_weight()) c.regmixup_weight = m.regmixup_weight();
  if (m.mixup_blocks_size() > 0) {
    if (m.mixup_blocks_size() > 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mixup_blocks lists ", m.mixup_blocks_size(), "; at most 16"));
    }
    c.mixup_blocks.clear();
    for (uint32_t b : m.mixup_blocks())
      c.mixup_blocks.push_back(static_cast<int>(std::min(b, 1000u)));
  }
  if (!m.label_policy().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        c.label_policy,
        calib::ParseLabelPolicy(m.label_policy(), "label_policy"));
  }
  if (!m.ls_mode().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.ls_mode,
                            calib::ParseSmoothingMode(m.ls_mode(), "ls_mode"));
  }

  const v1::TrainingSpec& t = job.training();
  if (!t.optimizer().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.optimizer, calib::ParseOptimizer(t.optimizer(), "training.optimizer"));
  }
  auto clamp_int = [](uint64_t v) {
    return static_cast<int>(std::min<uint64_t>(v, 1u << 30));
  };
  c.epochs = JobEpochs(job);
  if (t.batch_size()) c.batch_size = clamp_int(t.batch_size());
  if (t.has_lr()) c.lr = t.lr();
  if (t.has_momentum()) c.momentum = t.momentum();
  c.nesterov = t.nesterov();
  if (t.has_weight_decay()) c.weight_decay = t.weight_decay();
  if (!t.schedule().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(
        c.schedule, calib::ParseSchedule(t.schedule(), "training.schedule"));
  }
  for (uint32_t e : t.milestones()) c.milestones.push_back(clamp_int(e));
  if (t.has_lr_gamma()) c.lr_gamma = t.lr_gamma();
  c.threads = clamp_int(t.threads());
  c.seed = job.seed();

  const v1::EvaluationSpec& e = job.evaluation();
  if (e.ece_bins()) c.ece_bins = clamp_int(e.ece_bins());
  if (e.has_temperature_scaling())
    c.temperature_scaling = e.temperature_scaling();
  // Without a validation split there is nothing to fit a temperature on.
  if (!e.has_temperature_scaling() && d.has_val_fraction() &&
      d.val_fraction() == 0) {
    c.temperature_scaling = false;
  }
  c.noise_eval_count =
      static_cast<int64_t>(std::min<uint64_t>(e.noise_eval_count(), INT64_MAX));
  c.ood_dataset = e.ood_dataset();
  c.ood_data_dir = e.ood_data_dir();
  if (e.ood_count())
    c.ood_count =
        static_cast<int64_t>(std::min<uint64_t>(e.ood_count(), INT64_MAX));
  c.train_eval_count =
      static_cast<int64_t>(std::min<uint64_t>(e.train_eval_count(), INT64_MAX));
  if (e.eval_batch_size()) c.eval_batch_size = clamp_int(e.eval_batch_size());
  if (!e.predictions().empty()) {
    MIXCAL_ASSIGN_OR_RETURN(c.predictions,
                            calib::ParsePredictionsMode(
                                e.predictions(), "evaluation.predictions"));
  }
  c.predictions_every = clamp_int(e.predictions_every());
  if (e.calibrators_size() > 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation.calibrators lists ", e.calibrators_size(), "; at most 7"));
  }
  if (e.calibrators_size() > 0) {
    c.temperature_scaling = false;
    for (int i = 0; i < e.calibrators_size(); ++i) {
      if (e.calibrators(i) == "temperature") {
        c.temperature_scaling = true;
        continue;
      }
      MIXCAL_ASSIGN_OR_RETURN(
          calib::Calibrator cal,
          calib::ParseCalibrator(
              e.calibrators(i),
              absl::StrCat("evaluation.calibrators[", i, "]")));
      c.calibrators.push_back(cal);
    }
  }
  c.checkpoint_every = clamp_int(job.checkpoint_every());
  // The worker chooses where checkpoints go; validation needs a directory
  // to be named when checkpoints are on.
  if (c.checkpoint_every > 0) c.checkpoint_dir = "checkpoints";
  c.device = "cpu";
  MIXCAL_RETURN_IF_ERROR(calib::Validate(c));
  return c;
}

v1::SweepSpec Normalized(const v1::SweepSpec& spec) {
  v1::SweepSpec n = spec;
  if (n.seeds_size() == 0) n.add_seeds(0);
  if (n.device().empty()) n.set_device("any");
  if (n.max_attempts() == 0) n.set_max_attempts(3);
  if (!n.has_checkpoint_every()) n.set_checkpoint_every(1);
  if (n.model().empty())
    n.set_model(n.model_file().empty() ? "lenet" : "torchscript");
  if (n.data().dataset().empty()) {
    const bool file = !n.data().data_file().empty() ||
                      !n.data().data_path().empty();
    n.mutable_data()->set_dataset(file ? "npz" : "fashion-mnist");
  }
  for (v1::MethodSpec& m : *n.mutable_methods()) {
    absl::StatusOr<calib::MethodKind> kind = calib::ParseMethod(m.name());
    if (kind.ok()) m.set_name(std::string(calib::Name(*kind)));
  }
  return n;
}

absl::Status ValidateSweepSpec(const v1::SweepSpec& raw) {
  if (raw.name().empty() || raw.name().size() > kMaxNameLength) {
    return Invalid("name",
                   absl::StrCat("must be 1 to ", kMaxNameLength,
                                " characters, got ", raw.name().size()));
  }
  for (unsigned char ch : raw.name()) {
    if (ch < 0x20 || ch == 0x7f)
      return Invalid("name", "must be printable characters");
  }
  MIXCAL_RETURN_IF_ERROR(CheckText("name", raw.name(), kMaxNameLength));
  MIXCAL_RETURN_IF_ERROR(
      CheckText("request_id", raw.request_id(), kMaxRequestIdLength));
  MIXCAL_RETURN_IF_ERROR(
      CheckText("data.data_dir", raw.data().data_dir(), kMaxPathLength));
  MIXCAL_RETURN_IF_ERROR(CheckText("evaluation.ood_data_dir",
                                     raw.evaluation().ood_data_dir(),
                                     kMaxPathLength));
  MIXCAL_RETURN_IF_ERROR(
      CheckText("data.data_path", raw.data().data_path(), kMaxPathLength));
  for (const auto& [field, hash] :
       {std::pair<const char*, const std::string*>{"model_file",
                                                   &raw.model_file()},
        {"data.data_file", &raw.data().data_file()}}) {
    if (!hash->empty() && !IsSha256Hex(*hash)) {
      return Invalid(field, absl::StrCat(
                                "must be the SHA-256 of an uploaded file (64 "
                                "lowercase hex digits), got \"",
                                Echo(hash->substr(0, 80)), "\""));
    }
  }
  const v1::SweepSpec spec = Normalized(raw);
  if (spec.device() != "cpu" && spec.device() != "cuda" &&
      spec.device() != "any") {
    return Invalid("device", absl::StrCat("must be one of cpu|cuda|any, got \"",
                                          Echo(spec.device()), "\""));
  }
  if (spec.priority() < -100 || spec.priority() > 100) {
    return Invalid("priority", absl::StrCat("must be in [-100, 100], got ",
                                            spec.priority()));
  }
  if (spec.max_attempts() < 1 || spec.max_attempts() > 20) {
    return Invalid("max_attempts", absl::StrCat("must be in [1, 20], got ",
                                                spec.max_attempts()));
  }
  if (spec.methods_size() < 1 || spec.methods_size() > kMaxMethods) {
    return Invalid("methods",
                   absl::StrCat("must have 1 to ", kMaxMethods,
                                " entries, got ", spec.methods_size()));
  }
  if (spec.seeds_size() > kMaxSeeds) {
    return Invalid("seeds", absl::StrCat("must have 1 to ", kMaxSeeds,
                                         " entries, got ", spec.seeds_size()));
  }
  std::set<uint64_t> seeds;
  for (int i = 0; i < spec.seeds_size(); ++i) {
    if (spec.seeds(i) > kMaxSeed) {
      return Invalid(absl::StrCat("seeds[", i, "]"),
                     absl::StrCat("must be in [0, 2^53], got ", spec.seeds(i)));
    }
    if (!seeds.insert(spec.seeds(i)).second) {
      return Invalid(absl::StrCat("seeds[", i, "]"),
                     absl::StrCat("repeats seed ", spec.seeds(i),
                                  "; seeds must be distinct"));
    }
  }
  int64_t jobs = 0;
  std::set<std::pair<std::string, double>> seen;
  for (int i = 0; i < spec.methods_size(); ++i) {
    const v1::MethodSpec& m = spec.methods(i);
    const std::string field = absl::StrCat("methods[", i, "]");
    absl::StatusOr<calib::MethodKind> kind =
        calib::ParseMethod(m.name(), field + ".name");
    if (!kind.ok()) return kind.status();
    const bool baseline = *kind == calib::MethodKind::kBaseline;
    if (baseline && m.values_size() > 0) {
      return Invalid(field + ".values",
                     "must be empty for baseline, which has no hyperparameter");
    }
    if (!baseline &&
        (m.values_size() < 1 || m.values_size() > kMaxValuesPerMethod)) {
      return Invalid(field + ".values",
                     absl::StrCat("must have 1 to ", kMaxValuesPerMethod,
                                  " values of ", calib::HyperparameterName(*kind), " for ",
                                  m.name(), ", got ", m.values_size()));
    }
    const int n_values = baseline ? 1 : m.values_size();
    for (int j = 0; j < n_values; ++j) {
      const double value = baseline ? 0.0 : m.values(j);
      const std::string vfield =
          baseline ? field : absl::StrCat(field, ".values[", j, "]");
      if (!seen.insert({std::string(calib::Name(*kind)), value}).second) {
        return Invalid(vfield,
                       absl::StrCat("repeats ", calib::Name(*kind), " ", value,
                                    "; each (method, value) may appear once"));
      }
      v1::JobConfig job;
      *job.mutable_data() = spec.data();
      job.set_model(spec.model());
      job.set_model_file(spec.model_file());
      *job.mutable_training() = spec.training();
      *job.mutable_method() = m;
      job.set_value(value);
      job.set_seed(spec.seeds(0));
      *job.mutable_evaluation() = spec.evaluation();
      job.set_checkpoint_every(spec.checkpoint_every());
      absl::StatusOr<calib::TrainConfig> c = ToTrainConfig(job);
      if (!c.ok()) {
        // Hyperparameter errors belong to the value; others to the spec.
        const std::string msg(c.status().message());
        const std::string vname(calib::HyperparameterName(*kind));
        if (!vname.empty() && msg.rfind(vname + " ", 0) == 0) {
          return Invalid(vfield,
                         absl::StrCat("(", calib::Name(*kind), " ", msg, ")"));
        }
        return c.status();
      }
    }
    jobs += int64_t{n_values} * spec.seeds_size();
  }
  if (jobs > kMaxJobsPerSweep) {
    return Invalid("methods", absl::StrCat("x values x seeds make ", jobs,
                                           " jobs; a sweep may have at most ",
                                           kMaxJobsPerSweep));
  }
  return absl::OkStatus();
}

std::vector<JobSpec> ExpandSweep(const v1::SweepSpec& raw) {
  const v1::SweepSpec spec = Normalized(raw);
  std::vector<JobSpec> jobs;
  for (const v1::MethodSpec& m : spec.methods()) {
    std::vector<double> values(m.values().begin(), m.values().end());
    if (values.empty()) values.push_back(0.0);
    for (double value : values) {
      for (uint64_t seed : spec.seeds()) {
        JobSpec j;
        j.method = m.name();
        j.value = value;
        j.seed = seed;
        v1::JobConfig& c = j.config;
        *c.mutable_data() = spec.data();
        c.set_model(spec.model());
        c.set_model_file(spec.model_file());
        *c.mutable_training() = spec.training();
        *c.mutable_method() = m;
        c.mutable_method()->clear_values();
        c.set_value(value);
        c.set_seed(seed);
        *c.mutable_evaluation() = spec.evaluation();
        c.set_checkpoint_every(spec.checkpoint_every());
        jobs.push_back(std::move(j));
      }
    }
  }
  return jobs;
}

int JobEpochs(const v1::JobConfig& job) {
  const uint64_t epochs = job.training().epochs();
  if (epochs == 0) return calib::TrainConfig().epochs;
  return static_cast<int>(std::min<uint64_t>(epochs, 1u << 30));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
EffectiveSettings(const v1::JobConfig& job) {
  MIXCAL_ASSIGN_OR_RETURN(calib::TrainConfig c, ToTrainConfig(job));
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& name, const auto& value) {
    out.emplace_back(name, absl::StrCat(value));
  };
  auto ints = [](const std::vector<int>& v) {
    return v.empty() ? std::string("none") : absl::StrJoin(v, ", ");
  };
  const bool file = !c.data_file.empty();
  add("data.dataset", file ? std::string(absl::StartsWith(c.data_file, kUploadedPrefix)
                                             ? "uploaded file"
                                             : "file " + c.data_file)
                           : std::string(calib::Name(c.dataset)));
  if (c.dataset == calib::DatasetKind::kSynthetic && !file) {
    add("data.synthetic.classes", c.synthetic.classes);
    add("data.synthetic.train_count", c.synthetic.train_count);
    add("data.synthetic.test_count", c.synthetic.test_count);
  }
  add("data.train_limit", c.train_limit > 0 ? absl::StrCat(c.train_limit)
                                            : std::string("all"));
  add("data.test_limit", c.test_limit > 0 ? absl::StrCat(c.test_limit)
                                          : std::string("all"));
  // Of the whole training set, before train_limit (docs/sweep-spec.md); a
  // .npz's own x_val replaces it.
  add("data.val_fraction", c.val_fraction);
  add("data.augment", calib::Name(c.augment));
  if (c.label_noise > 0) {
    add("data.label_noise", c.label_noise);
    add("data.noise_kind", calib::Name(c.noise_kind));
  }
  if (!c.classes.empty()) add("data.classes", ints(c.classes));
  add("model", c.model_file.empty() ? std::string(calib::Name(c.model))
                                    : std::string("uploaded TorchScript"));
  add("method", calib::Name(c.method));
  if (const double* v = calib::HyperparameterField(c))
    add(absl::StrCat("method.", calib::HyperparameterName(c.method)), *v);
  add("seed", job.seed());
  if (c.method == calib::MethodKind::kCutmix) add("method.cutmix_prob", c.cutmix_prob);
  if (c.method == calib::MethodKind::kRegmixup)
    add("method.regmixup_weight", c.regmixup_weight);
  if (c.method == calib::MethodKind::kManifoldMixup)
    add("method.mixup_blocks", ints(c.mixup_blocks));
  add("training.optimizer", calib::Name(c.optimizer));
  add("training.epochs", c.epochs);
  add("training.batch_size", c.batch_size);
  add("training.lr", c.lr);
  add("training.momentum", c.momentum);
  add("training.nesterov", c.nesterov ? "yes" : "no");
  add("training.weight_decay", c.weight_decay);
  add("training.schedule", calib::Name(c.schedule));
  if (c.schedule == calib::Schedule::kStep) {
    add("training.milestones", ints(calib::EffectiveMilestones(c)));
    add("training.lr_gamma", c.lr_gamma);
  }
  add("training.threads", c.threads > 0 ? absl::StrCat(c.threads)
                                        : std::string("the worker's"));
  add("evaluation.ece_bins", c.ece_bins);
  add("evaluation.eval_batch_size", c.eval_batch_size);
  // Needs a validation split: val_fraction > 0, or a .npz's own x_val.
  add("evaluation.temperature_scaling", c.temperature_scaling ? "yes" : "no");
  std::vector<std::string> calibrators;
  for (calib::Calibrator k : c.calibrators)
    calibrators.emplace_back(calib::Name(k));
  add("evaluation.calibrators",
      calibrators.empty() ? std::string("none") : absl::StrJoin(calibrators, ", "));
  add("evaluation.predictions",
      c.predictions == calib::PredictionsMode::kEveryN
          ? absl::StrCat(calib::Name(c.predictions), " ", c.predictions_every)
          : std::string(calib::Name(c.predictions)));
  add("checkpoint_every", c.checkpoint_every > 0
                              ? absl::StrCat("every ", c.checkpoint_every, " epoch(s)")
                              : std::string("never"));
  return out;
}

}  // namespace mixcal::spec
