#include "worker/core/calibrators.h"

#include <torch/torch.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace mixcal::core {
namespace {

constexpr double kReg = 0.01;

// What the scaling is applied to: logits, or log probabilities (Dirichlet).
at::Tensor Inputs(calib::Calibrator kind, const at::Tensor& logits) {
  at::Tensor z = logits.to(at::kCPU, at::kDouble);
  return kind == calib::Calibrator::kDirichlet ? at::log_softmax(z, 1) : z;
}

at::Tensor Transform(calib::Calibrator kind, const at::Tensor& x,
                     const at::Tensor& w, const at::Tensor& b) {
  if (kind == calib::Calibrator::kVector) return x * w + b;
  return at::matmul(x, w.t()) + b;
}

std::string Numbers(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous().view({-1});
  std::vector<std::string> s;
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.numel(); ++i)
    s.push_back(absl::StrFormat("%.6g", p[i]));
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

}  // namespace

ScalingFit FitScaling(calib::Calibrator kind, const at::Tensor& logits,
                      const at::Tensor& labels, double temperature) {
  ScalingFit fit;
  fit.kind = kind;
  // The trainer evaluates in inference mode; fitting needs gradients, and
  // tensors made outside it (clones of the inference-mode inputs).
  c10::InferenceMode no_inference(false);
  torch::AutoGradMode grad(true);
  const at::Tensor x = Inputs(kind, logits).clone();
  const at::Tensor y = labels.to(at::kCPU, at::kLong).clone();
  const int64_t k = x.size(1);
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  torch::Tensor w = kind == calib::Calibrator::kVector
                        ? torch::full({k}, 1.0 / temperature, opts)
                        : torch::eye(k, opts) / temperature;
  torch::Tensor b = torch::zeros({k}, opts);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  fit.reg = kind == calib::Calibrator::kVector ? 0.0 : kReg;
  const at::Tensor off_diag =
      kind == calib::Calibrator::kVector ? at::Tensor()
                                         : 1 - torch::eye(k, opts);
  auto objective = [&]() {
    torch::Tensor loss =
        torch::nll_loss(torch::log_softmax(Transform(kind, x, w, b), 1), y);
    if (fit.reg > 0 && k > 1) {
      loss = loss + fit.reg * ((w * off_diag).pow(2).sum() / (k * (k - 1)) +
                               b.pow(2).sum() / k);
    }
    return loss;
  };
  if (x.size(0) > 0) {
    torch::optim::LBFGS opt(
        std::vector<torch::Tensor>{w, b},
        torch::optim::LBFGSOptions(1.0)
            .max_iter(50)
            .tolerance_grad(1e-5)
            .tolerance_change(1e-9)
            .line_search_fn(
            "strong_wolfe"));
    opt.step([&]() {
      opt.zero_grad();
      torch::Tensor loss = objective();
      loss.backward();
      return loss;
    });
  }
  fit.w = w.detach().clone();
  fit.b = b.detach().clone();
  return fit;
}

at::Tensor ApplyScaling(const ScalingFit& fit, const at::Tensor& logits) {
  c10::InferenceMode guard;
  return Transform(fit.kind, Inputs(fit.kind, logits), fit.w, fit.b);
}

std::string DescribeScaling(const ScalingFit& fit) {
  return absl::StrCat("{\"calibrator\":\"", calib::Name(fit.kind), "\",",
                      fit.reg > 0 ? absl::StrCat("\"odir\":", fit.reg, ",") : "",
                      "\"w\":", Numbers(fit.w), ",\"b\":", Numbers(fit.b), "}");
}

}  // namespace mixcal::core
