#ifndef MIXCAL_WORKER_CORE_CALIBRATORS_H_
#define MIXCAL_WORKER_CORE_CALIBRATORS_H_

// The post-hoc calibrators that need gradients (the torch-free ones are in
// calib/calibrators.h): vector scaling and matrix scaling of the logits
// (Guo et al. 2017) and Dirichlet calibration, matrix scaling of the log
// probabilities (Kull et al. 2019), fitted by Newton's method on the
// validation NLL (L-BFGS where a dense Hessian would be too large).
// Internal to the training core (includes ATen).

#include <ATen/ATen.h>

#include <string>

#include "calib/config.h"

namespace mixcal::core {

struct ScalingFit {
  calib::Calibrator kind = calib::Calibrator::kVector;
  at::Tensor w;  // [K] (vector) or [K, K] (matrix, dirichlet)
  at::Tensor b;  // [K]
  double reg = 0;  // the off-diagonal and bias L2 weight (matrix, dirichlet)
};

// Fits `kind` (kVector, kMatrix or kDirichlet) on validation logits [N, K]
// and labels [N], starting from temperature scaling with `temperature`:
// the fit's NLL is never above that start's. Matrix and Dirichlet add
// reg * (sum of squared off-diagonal weights / (K(K-1)) + sum b^2 / K),
// Kull et al.'s ODIR, with reg 0.01.
ScalingFit FitScaling(calib::Calibrator kind, const at::Tensor& logits,
                      const at::Tensor& labels, double temperature);

// The calibrated logits of `logits` [N, K].
at::Tensor ApplyScaling(const ScalingFit& fit, const at::Tensor& logits);

// The fitted parameters as JSON.
std::string DescribeScaling(const ScalingFit& fit);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_CALIBRATORS_H_
