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

namespace {

// L-BFGS from the same start: for matrix scaling past kMaxNewtonParameters,
// where a dense Hessian is too large.
ScalingFit FitScalingLbfgs(calib::Calibrator kind, const at::Tensor& logits,
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
            .max_iter(200)
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

// Newton's method on the parameters the kind frees, theta [K, K + 1] holding
// W and b side by side (inputs X with a column of ones): vector scaling
// frees the diagonal and b, matrix and Dirichlet everything. The NLL is
// convex, so from the temperature-scaling start a damped Newton step
// (Armijo backtracking on the full objective) converges in about ten
// iterations where L-BFGS took fifty and more and stopped short. The
// Hessian, (1/m) sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T restricted to
// the free entries, comes from at most kHessianRows evenly spaced rows (a
// quarter of them while far from the minimum) in
// float32: it steers the step only; the gradient and the objective use every
// row in float64, so the optimum is the full data's. It stops when the
// Newton decrement (about twice the distance to the minimum) is below 1e-7.
constexpr int64_t kHessianRows = 2048;
constexpr int64_t kMaxNewtonParameters = 600;
constexpr int kMaxNewtonIterations = 50;

// Returns theta, or an undefined tensor where the problem is too large for
// a dense Hessian (matrix scaling past 23 classes).
at::Tensor NewtonFit(const at::Tensor& x, const at::Tensor& y, bool vector,
                     double reg, double temperature) {
  const int64_t n = x.size(0), k = x.size(1), d = k + 1;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor mask = vector ? at::zeros({k, d}, f64.dtype(at::kBool))
                           : at::ones({k, d}, f64.dtype(at::kBool));
  if (vector) {
    at::Tensor r = at::arange(k, f64.dtype(at::kLong));
    mask.index_put_({r, r}, true);
    mask.select(1, k).fill_(true);
  }
  const at::Tensor free = mask.reshape({-1}).nonzero().squeeze(1);
  if (free.size(0) > kMaxNewtonParameters) return at::Tensor();
  const at::Tensor cls = at::floor_divide(free, d), input = free.remainder(d);
  // Each class's free entries: a contiguous run of `free` (row-major).
  std::vector<std::pair<int64_t, int64_t>> blocks;
  {
    const at::Tensor c = cls.contiguous();
    const int64_t* ci = c.data_ptr<int64_t>();
    for (int64_t i = 0; i < c.numel(); ++i) {
      if (i == 0 || ci[i] != ci[i - 1]) blocks.push_back({i, 0});
      ++blocks.back().second;
    }
  }
  // The ODIR penalty's weight per entry: off-diagonal W and b.
  at::Tensor penalty = at::zeros({k, d}, f64);
  if (reg > 0 && k > 1) {
    penalty.narrow(1, 0, k).copy_((1 - at::eye(k, f64)) * (reg / (k * (k - 1))));
    penalty.select(1, k).fill_(reg / k);
  }
  const at::Tensor xs = at::cat({x, at::ones({n, 1}, f64)}, 1);
  const at::Tensor onehot = at::zeros({n, k}, f64).scatter_(1, y.view({n, 1}), 1.0);
  const at::Tensor rows =
      at::arange(0, n, std::max<int64_t>(1, n / kHessianRows), f64.dtype(at::kLong))
          .narrow(0, 0, std::min(n, kHessianRows));
  const at::Tensor hessian_x = xs.index_select(0, rows).index_select(1, input).to(at::kFloat);
  // The objective at theta; its logits left in *z for the next step.
  auto objective = [&](const at::Tensor& theta, at::Tensor* z) {
    *z = at::matmul(xs, theta.t());
    return (at::logsumexp(*z, 1) - (*z * onehot).sum(1)).mean().item<double>() +
           (penalty * theta * theta).sum().item<double>();
  };
  at::Tensor theta = at::zeros({k, d}, f64);
  theta.narrow(1, 0, k).copy_(at::eye(k, f64) / temperature);
  at::Tensor z;
  double f = objective(theta, &z);
  // Far from the minimum (decrement above 1e-2) a quarter of the rows
  // steers as well; the last steps get them all.
  bool coarse = true;
  for (int it = 0; it < kMaxNewtonIterations; ++it) {
    const at::Tensor p = at::softmax(z, 1);
    const int64_t every = coarse ? 4 : 1;
    const at::Tensor hx = hessian_x.slice(0, 0, hessian_x.size(0), every);
    const at::Tensor hrows = rows.slice(0, 0, rows.size(0), every);
    const at::Tensor grad =
        (at::matmul((p - onehot).t(), xs) / n + 2 * penalty * theta)
            .reshape({-1})
            .index_select(0, free);
    const at::Tensor a =
        hx * p.index_select(0, hrows).index_select(1, cls).to(at::kFloat);
    // - sum_i (p_i kron x_i)(p_i kron x_i)^T, plus per class j (its free
    // entries are contiguous) sum_i p_ij x_i x_i^T on the diagonal block.
    at::Tensor h = -at::matmul(a.t(), a);
    for (const auto& [start, count] : blocks) {
      h.narrow(0, start, count)
          .narrow(1, start, count)
          .add_(at::matmul(a.narrow(1, start, count).t(),
                           hx.narrow(1, start, count)));
    }
    h = (h / static_cast<double>(hrows.size(0))).to(at::kDouble);
    h = h + at::diag(2 * penalty.reshape({-1}).index_select(0, free)) +
        1e-9 * at::eye(free.size(0), f64);
    at::Tensor step = at::linalg_solve(h, grad);
    double decrement = (grad * step).sum().item<double>();
    if (!(decrement > 0)) {  // not a descent direction: fall back to the gradient
      step = grad;
      decrement = (grad * grad).sum().item<double>();
    }
    if (decrement < 1e-7) break;  // the NLL within about 1e-7 of its minimum
    if (decrement < 1e-2) coarse = false;
    at::Tensor full = at::zeros({k * d}, f64).index_copy_(0, free, step).view({k, d});
    double t = 1, next_f = f;
    at::Tensor next, next_z;
    for (; t > 1e-10; t /= 2) {
      next = theta - t * full;
      next_f = objective(next, &next_z);
      if (next_f <= f - 1e-4 * t * decrement) break;
    }
    if (!(next_f < f)) break;  // no progress left at float64 precision
    const double gain = f - next_f;
    theta = next;
    z = next_z;
    f = next_f;
    if (gain < 1e-13) break;
  }
  return theta;
}

}  // namespace

ScalingFit FitScaling(calib::Calibrator kind, const at::Tensor& logits,
                      const at::Tensor& labels, double temperature) {
  ScalingFit fit;
  fit.kind = kind;
  fit.reg = kind == calib::Calibrator::kVector ? 0.0 : kReg;
  const bool vector = kind == calib::Calibrator::kVector;
  const int64_t k = logits.size(1);
  if (logits.size(0) > 0) {
    c10::InferenceMode guard;
    const at::Tensor theta =
        NewtonFit(Inputs(kind, logits), labels.to(at::kCPU, at::kLong),
                  vector, fit.reg, temperature);
    if (theta.defined()) {
      const at::Tensor w = theta.narrow(1, 0, k);
      fit.w = (vector ? w.diagonal() : w).contiguous().clone();
      fit.b = theta.select(1, k).contiguous().clone();
      return fit;
    }
  }
  return FitScalingLbfgs(kind, logits, labels, temperature);
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
