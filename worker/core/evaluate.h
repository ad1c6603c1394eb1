#ifndef MIXCAL_WORKER_CORE_EVALUATE_H_
#define MIXCAL_WORKER_CORE_EVALUATE_H_

// Split metrics from logits, and temperature scaling. Internal to the
// training core (includes ATen).

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "worker/core/trainer.h"

namespace mixcal::core {

// Every labelled metric of reference/methods-and-metrics.md for logits
// [N, K] and labels [N] (any device; computed in float64 on the CPU) after
// dividing the logits by `temperature`. `split` names the result.
SplitMetrics LabelledMetrics(const std::string& split, const at::Tensor& logits,
                             const at::Tensor& labels, int num_bins,
                             double temperature = 1.0);

// The row-wise softmax of z * scale for z [n, k] (row-major, float64,
// scale > 0) in the pieces the metrics and the fits use: top[i], each row's
// first largest entry; e_ij = exp((z_ij - z_i,top[i]) * scale), the
// exponentials in one vectorised call; sum[i] = sum_j e_ij. So
// p_ij = e_ij / sum[i] and log p_ij = (z_ij - z_i,top[i]) * scale -
// log sum[i]. The vectors are resized.
void ScaledSoftmax(const double* z, int64_t n, int64_t k, double scale,
                   std::vector<double>* e, std::vector<int64_t>* top,
                   std::vector<double>* sum);

// Top-label confidences (float32, CPU) of logits / temperature.
at::Tensor TopConfidence(const at::Tensor& logits, double temperature = 1.0);

// Metrics of inputs without labels (noise, out-of-distribution): count, mean
// max-probability, mean entropy, and the AUROC of max-probability separating
// `in_distribution_confidence` (positive) from these inputs.
SplitMetrics UnlabelledMetrics(const std::string& split,
                               const at::Tensor& logits,
                               const at::Tensor& in_distribution_confidence);

// The temperature T > 0 minimising the NLL of softmax(logits / T) on
// (logits, labels): a golden-section search on log T over [1/100, 100], which
// is exact to about 1e-6 in log T since the NLL is unimodal in log T.
double FitTemperature(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace mixcal::core

#endif  // MIXCAL_WORKER_CORE_EVALUATE_H_
