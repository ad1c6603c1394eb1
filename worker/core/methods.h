#ifndef MIXCAL_WORKER_CORE_METHODS_H_
#define MIXCAL_WORKER_CORE_METHODS_H_

// The training methods' losses and input mixing, exactly as
// reference/methods-and-metrics.md defines them. Internal to the training
// core (includes ATen). All losses are means over the batch, computed from
// log_softmax (never log(softmax)).

#include <ATen/ATen.h>

#include "calib/config.h"

namespace mixcal::core {

// CE(p, y): hard-label cross-entropy. logits [B, K], labels [B] int64.
at::Tensor CrossEntropy(const at::Tensor& logits, const at::Tensor& labels);

// lambda * CE(p, y_a) + (1 - lambda) * CE(p, y_b).
at::Tensor MixupLoss(const at::Tensor& logits, const at::Tensor& y_a,
                     const at::Tensor& y_b, double lambda);

// CE against (1-eps)*y + eps*u; kUniform: u = 1/K on every class,
// kOthers: eps/(K-1) on each wrong class.
at::Tensor LabelSmoothingLoss(const at::Tensor& logits,
                              const at::Tensor& labels, double epsilon,
                              calib::SmoothingMode mode);

// CE(p, y) - beta * H(p), both averaged over the batch.
at::Tensor ErlLoss(const at::Tensor& logits, const at::Tensor& labels,
                   double beta);

// Focal loss (Lin et al. 2017; for calibration Mukhoti et al. 2020):
// mean of -(1 - p_y)^gamma log p_y; kFlsd53 uses gamma 5 where p_y < 0.2.
at::Tensor FocalLoss(const at::Tensor& logits, const at::Tensor& labels,
                     double gamma, calib::FocalSchedule schedule);

// CE(p, y) + lambda * MMCE (Kumar et al. 2018): with r_i the top-label
// confidence and c_i its correctness (no gradient),
// sqrt(sum_ij (c_i - r_i)(c_j - r_j) exp(-|r_i - r_j| / 0.4) / B^2).
at::Tensor MmceLoss(const at::Tensor& logits, const at::Tensor& labels,
                    double lambda);

// CutMix (Yun et al. 2019): the box [y0, y1) x [x0, x1) of each image
// replaced by image perm's; returns the mixed batch. The box comes from
// `lambda` and the centre (cx, cy) in [0, 1): cut ratio sqrt(1 - lambda),
// clipped at the border. *area_kept is 1 - box area / image area, the
// weight of y in the loss.
at::Tensor CutMixInputs(const at::Tensor& x, const at::Tensor& perm,
                        double lambda, double cx, double cy,
                        double* area_kept);

// lambda * x + (1 - lambda) * x[perm].
at::Tensor MixInputs(const at::Tensor& x, const at::Tensor& perm,
                     double lambda);

// The hard target of feature_mixup: kDominant: y if lambda >= 0.5 else y[perm];
// kFirst: y.
at::Tensor FeatureMixupTarget(const at::Tensor& y, const at::Tensor& perm,
                              double lambda, calib::LabelPolicy policy);

// Number of correct top-1 predictions against `labels`.
int64_t CountCorrect(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_METHODS_H_
