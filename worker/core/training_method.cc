#include "worker/core/training_method.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "worker/core/execution.h"
#include "worker/core/methods.h"

namespace mixcal::core {
namespace {

// The model's logits of `x` in float32 (the forward pass under autocast on
// CUDA, the loss outside it).
at::Tensor Forward(Network& model, const at::Tensor& x,
                   const StepContext& ctx) {
  at::Tensor logits;
  {
    CudaAutocast guard(ctx.autocast);
    logits = model.Forward(x);
  }
  return logits.to(at::kFloat);
}

// The logits of the batch mixed at block k (0: the inputs, or the
// embeddings of token ids), in float32.
at::Tensor ForwardMixed(Network& model, const at::Tensor& x, int k,
                        const at::Tensor& perm, double lambda,
                        const StepContext& ctx, bool also_clean = false) {
  at::Tensor logits;
  {
    CudaAutocast guard(ctx.autocast);
    logits = model.ForwardMixed(x, k, perm, lambda, also_clean);
  }
  return logits.to(at::kFloat);
}

// The check of the methods that mix at block 0.
absl::Status CheckMixesInputs(const Network& model, const InputShape& shape,
                              absl::string_view method) {
  if (model.MixableAt(0)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "method ", method, " mixes inputs, and ", shape.Describe(),
      " cannot be mixed: ", model.Name(),
      " must define embed(x) and forward_embedded(e) so that they are mixed "
      "in embedding space (docs/own-model.md)"));
}

// Correct top-1 predictions against `y`, as a float64 scalar.
at::Tensor CorrectCount(const at::Tensor& pred, const at::Tensor& y) {
  return pred.eq(y).sum().to(at::kDouble);
}

at::Tensor Correct(const at::Tensor& logits, const at::Tensor& y) {
  torch::NoGradGuard ng;
  return CorrectCount(logits.detach().argmax(1), y);
}

// lambda ~ Beta(alpha, alpha) as X/(X+Y), X, Y ~ Gamma(alpha, 1). The
// distribution is made afresh for every batch: the normal distribution
// inside std::gamma_distribution keeps a cached draw, and a batch must not
// depend on the one before it beyond the stream's position.
double DrawLambda(double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  double a = gamma(rng), b = gamma(rng);
  return (a + b) > 0 ? a / (a + b) : 0.5;
}

// A permutation of the batch from LibTorch's default generator of `device`.
at::Tensor DrawPermutation(int64_t n, const at::Device& device) {
  return at::randperm(n, at::TensorOptions().dtype(at::kLong).device(device));
}

// The mixup target: loss lambda*CE(y) + (1-lambda)*CE(y[perm]) and the
// correct count weighted the same way; plain CE and count when the batch
// was not mixed (perm undefined).
StepResult MixupTargets(const at::Tensor& logits, const at::Tensor& y,
                        const at::Tensor& perm, double lambda) {
  if (!perm.defined()) return {CrossEntropy(logits, y), Correct(logits, y)};
  at::Tensor y_b = y.index_select(0, perm);
  StepResult r;
  r.loss = MixupLoss(logits, y, y_b, lambda);
  torch::NoGradGuard ng;
  at::Tensor pred = logits.detach().argmax(1);
  r.correct =
      lambda * CorrectCount(pred, y) + (1 - lambda) * CorrectCount(pred, y_b);
  return r;
}

// --- the methods that change only the loss: one forward pass of the batch,
// accuracy against y ---

// One of them: its loss of (logits, labels), the method's parameters bound.
class LossOnlyMethod : public TrainingMethod {
 public:
  using LossFn =
      std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>;
  explicit LossOnlyMethod(LossFn loss) : loss_(std::move(loss)) {}
  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) final {
    at::Tensor logits = Forward(model, batch.x, ctx);
    return {loss_(logits, batch.y), Correct(logits, batch.y)};
  }

 private:
  const LossFn loss_;
};

std::unique_ptr<TrainingMethod> LossOnly(LossOnlyMethod::LossFn loss) {
  return std::make_unique<LossOnlyMethod>(std::move(loss));
}

// --- the mixing methods. Each batch draws lambda (alpha > 0 only) and, when
// lambda != 1, one permutation: lambda == 1 mixes nothing, and skipping it
// makes alpha = 0 reproduce baseline exactly (drawing nothing at all). ---

// Input mixup: x~ = lambda x + (1-lambda) x[perm], mixup's loss.
class MixupMethod : public TrainingMethod {
 public:
  explicit MixupMethod(double alpha) : alpha_(alpha) {}

  absl::Status CheckModel(const Network& model,
                          const InputShape& shape) const override {
    return CheckMixesInputs(model, shape, "mixup");
  }

  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) override {
    const double lambda = alpha_ > 0 ? DrawLambda(alpha_, *ctx.mix_rng) : 1.0;
    if (lambda == 1.0) {
      return MixupTargets(Forward(model, batch.x, ctx), batch.y, {}, lambda);
    }
    at::Tensor perm = DrawPermutation(batch.x.size(0), ctx.device);
    return MixupTargets(ForwardMixed(model, batch.x, 0, perm, lambda, ctx),
                        batch.y, perm, lambda);
  }

 private:
  double alpha_;
};

// Inputs mixed as mixup's, one hard target (FeatureMixupTarget); accuracy
// against y.
class FeatureMixupMethod : public TrainingMethod {
 public:
  FeatureMixupMethod(double alpha, calib::LabelPolicy policy)
      : alpha_(alpha), policy_(policy) {}

  absl::Status CheckModel(const Network& model,
                          const InputShape& shape) const override {
    return CheckMixesInputs(model, shape, "feature_mixup");
  }

  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) override {
    const double lambda = alpha_ > 0 ? DrawLambda(alpha_, *ctx.mix_rng) : 1.0;
    at::Tensor target = batch.y, logits;
    if (lambda != 1.0) {
      at::Tensor perm = DrawPermutation(batch.x.size(0), ctx.device);
      logits = ForwardMixed(model, batch.x, 0, perm, lambda, ctx);
      target = FeatureMixupTarget(batch.y, perm, lambda, policy_);
    } else {
      logits = Forward(model, batch.x, ctx);
    }
    return {CrossEntropy(logits, target), Correct(logits, batch.y)};
  }

 private:
  double alpha_;
  calib::LabelPolicy policy_;
};

// CutMix: with probability cutmix_prob a box of the permuted images pasted
// in; lambda becomes the area kept; mixup's loss.
class CutMixMethod : public TrainingMethod {
 public:
  CutMixMethod(double alpha, double prob) : alpha_(alpha), prob_(prob) {}

  absl::Status CheckModel(const Network& /*model*/,
                          const InputShape& shape) const override {
    if (!shape.tokens) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "method cutmix pastes image boxes; ", shape.Describe(),
        " have none (use mixup, which mixes token ids' embeddings)"));
  }

  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) override {
    double lambda = 1.0, cx = 0, cy = 0;
    if (alpha_ > 0) {
      // Whether to mix, lambda, then the box centre: every batch draws the
      // same count from the stream, mixed or not, so resuming holds.
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      const bool apply = unit(*ctx.mix_rng) < prob_;
      lambda = DrawLambda(alpha_, *ctx.mix_rng);
      cx = unit(*ctx.mix_rng);
      cy = unit(*ctx.mix_rng);
      if (!apply) lambda = 1.0;
    }
    at::Tensor x = batch.x, perm;
    if (lambda != 1.0) {
      perm = DrawPermutation(x.size(0), ctx.device);
      double kept = 1.0;
      x = CutMixInputs(x, perm, lambda, cx, cy, &kept);
      lambda = kept;  // the area actually kept weighs y
    }
    return MixupTargets(Forward(model, x, ctx), batch.y, perm, lambda);
  }

 private:
  double alpha_, prob_;
};

// RegMixup: CE on the clean batch + weight * mixup loss on the mixed batch,
// both in one forward pass; accuracy of the clean batch.
class RegMixupMethod : public TrainingMethod {
 public:
  RegMixupMethod(double alpha, double weight)
      : alpha_(alpha), weight_(weight) {}

  absl::Status CheckModel(const Network& model,
                          const InputShape& shape) const override {
    return CheckMixesInputs(model, shape, "regmixup");
  }

  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) override {
    const double lambda = alpha_ > 0 ? DrawLambda(alpha_, *ctx.mix_rng) : 1.0;
    const at::Tensor& x = batch.x;
    const at::Tensor& y = batch.y;
    if (lambda == 1.0) {
      // The mixed batch is the clean one: CE + weight * CE.
      at::Tensor logits = Forward(model, x, ctx);
      return {CrossEntropy(logits, y) + weight_ * CrossEntropy(logits, y),
              Correct(logits, y)};
    }
    at::Tensor perm = DrawPermutation(x.size(0), ctx.device);
    // The clean and the mixed batch in one forward pass.
    at::Tensor both = ForwardMixed(model, x, 0, perm, lambda, ctx,
                                   /*also_clean=*/true);
    at::Tensor logits = both.slice(0, 0, x.size(0));
    at::Tensor logits_mixed = both.slice(0, x.size(0));
    at::Tensor loss =
        CrossEntropy(logits, y) +
        weight_ * MixupLoss(logits_mixed, y, y.index_select(0, perm), lambda);
    return {loss, Correct(logits, y)};
  }

 private:
  double alpha_, weight_;
};

// Manifold Mixup: lambda as mixup's and one block from mixup_blocks per
// batch; the hidden states mixed there (Network::ForwardMixed);
// mixup's loss.
class ManifoldMixupMethod : public TrainingMethod {
 public:
  ManifoldMixupMethod(double alpha, std::vector<int> blocks)
      : alpha_(alpha), blocks_(std::move(blocks)) {}

  absl::Status CheckModel(const Network& model,
                          const InputShape& shape) const override {
    if (blocks_.empty()) {
      if (!DefaultBlocks(model).empty()) return absl::OkStatus();
      return absl::InvalidArgumentError(absl::StrCat(
          "method manifold_mixup: ", model.Name(), " on ", shape.Describe(),
          " has no block it can mix: define embed(x) and forward_embedded(e), "
          "or features(x) and classify(h) (docs/own-model.md)"));
    }
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i] >= model.Blocks()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mixup_blocks[", i, "] is ", blocks_[i], "; ", model.Name(),
            " on these inputs has blocks 0 to ", model.Blocks() - 1,
            model.Blocks() == 1
                ? " (define features(x) and classify(h) for block 1, "
                  "docs/own-model.md)"
                : ""));
      }
      if (!model.MixableAt(blocks_[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mixup_blocks[", i, "] is ", blocks_[i], ": ",
            model.BlockName(blocks_[i]), " of ", shape.Describe(),
            " cannot be mixed; ", model.Name(),
            " must define embed(x) and forward_embedded(e) "
            "(docs/own-model.md), or list only block 1"));
      }
    }
    return absl::OkStatus();
  }

  StepResult Step(Network& model, const TrainBatch& batch,
                  StepContext& ctx) override {
    if (blocks_.empty()) blocks_ = DefaultBlocks(model);
    double lambda = 1.0;
    int block = 0;
    if (alpha_ > 0) {
      lambda = DrawLambda(alpha_, *ctx.mix_rng);
      std::uniform_int_distribution<size_t> pick(0, blocks_.size() - 1);
      block = blocks_[pick(*ctx.mix_rng)];
    }
    if (lambda == 1.0) {
      return MixupTargets(Forward(model, batch.x, ctx), batch.y, {}, lambda);
    }
    at::Tensor perm = DrawPermutation(batch.x.size(0), ctx.device);
    return MixupTargets(ForwardMixed(model, batch.x, block, perm, lambda, ctx),
                        batch.y, perm, lambda);
  }

 private:
  // Those of blocks 0, 1, 2 (Verma et al.) the model can mix.
  static std::vector<int> DefaultBlocks(const Network& model) {
    std::vector<int> out;
    for (int k = 0; k < std::min(3, model.Blocks()); ++k)
      if (model.MixableAt(k)) out.push_back(k);
    return out;
  }

  double alpha_;
  std::vector<int> blocks_;
};

}  // namespace

absl::Status TrainingMethod::CheckModel(const Network& /*model*/,
                                        const InputShape& /*shape*/) const {
  return absl::OkStatus();
}

std::unique_ptr<TrainingMethod> MakeTrainingMethod(
    const calib::TrainConfig& c) {
  switch (c.method) {
    case calib::MethodKind::kBaseline:
      return LossOnly(CrossEntropy);
    case calib::MethodKind::kMixup:
      return std::make_unique<MixupMethod>(c.alpha);
    case calib::MethodKind::kFeatureMixup:
      return std::make_unique<FeatureMixupMethod>(c.alpha, c.label_policy);
    case calib::MethodKind::kLabelSmoothing:
      return LossOnly([eps = c.epsilon, mode = c.ls_mode](const at::Tensor& z,
                                                          const at::Tensor& y) {
        return LabelSmoothingLoss(z, y, eps, mode);
      });
    case calib::MethodKind::kErl:
      return LossOnly(
          [beta = c.beta](const at::Tensor& z, const at::Tensor& y) {
            return ErlLoss(z, y, beta);
          });
    case calib::MethodKind::kFocal:
      return LossOnly([gamma = c.gamma, schedule = c.focal_schedule](
                          const at::Tensor& z, const at::Tensor& y) {
        return FocalLoss(z, y, gamma, schedule);
      });
    case calib::MethodKind::kCutmix:
      return std::make_unique<CutMixMethod>(c.alpha, c.cutmix_prob);
    case calib::MethodKind::kRegmixup:
      return std::make_unique<RegMixupMethod>(c.alpha, c.regmixup_weight);
    case calib::MethodKind::kMmce:
      return LossOnly(
          [lambda = c.mmce_lambda](const at::Tensor& z, const at::Tensor& y) {
            return MmceLoss(z, y, lambda);
          });
    case calib::MethodKind::kManifoldMixup:
      return std::make_unique<ManifoldMixupMethod>(c.alpha, c.mixup_blocks);
  }
  return LossOnly(CrossEntropy);
}

}  // namespace mixcal::core
