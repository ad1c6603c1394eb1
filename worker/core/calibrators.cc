#include "worker/core/calibrators.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "worker/core/evaluate.h"

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
// row in float64, so the optimum is the full data's. Each trial point's
// evaluation takes the gradient and the probabilities too, so an accepted
// step (nearly always the first, t = 1) costs one pass over the rows. It
// stops when the Newton decrement (about twice the distance to the minimum)
// is below 1e-7.
constexpr int64_t kHessianRows = 2048;
constexpr int64_t kMaxNewtonParameters = 600;
constexpr int kMaxNewtonIterations = 50;

// The NLL of softmax(theta x_i) over the rows plus the ODIR penalty, in
// float64: the logits and the gradient as matrix products, the softmax by
// ScaledSoftmax (a third of the time of the same sums as a chain of tensor
// operations).
class ScalingObjective {
 public:
  ScalingObjective(const at::Tensor& x, const at::Tensor& y,
                   std::vector<double> penalty)
      : n_(x.size(0)), k_(x.size(1)), d_(k_ + 1), penalty_(std::move(penalty)),
        xs_(static_cast<size_t>(n_ * d_)), labels_(n_),
        z_(static_cast<size_t>(n_ * k_)), r_(z_.size()) {
    const at::Tensor xc = x.contiguous();
    const at::Tensor yc = y.to(at::kLong).contiguous();
    const double* px = xc.data_ptr<double>();
    const int64_t* py = yc.data_ptr<int64_t>();
    for (int64_t i = 0; i < n_; ++i) {
      std::copy(px + i * k_, px + (i + 1) * k_, xs_.data() + i * d_);
      xs_[i * d_ + k_] = 1;
      labels_[i] = py[i];
      TORCH_CHECK(labels_[i] >= 0 && labels_[i] < k_, "label ", labels_[i],
                  " of example ", i, " is outside [0, ", k_, ")");
    }
  }

  // d = K + 1, the inputs per row with the trailing 1.
  int64_t inputs() const { return d_; }
  // Row i of the inputs with its trailing 1 ([d]).
  const double* input(int64_t i) const { return xs_.data() + i * d_; }
  // After Value with a gradient: softmax(theta x_i) ([K]).
  const double* probabilities(int64_t i) const { return p_.data() + i * k_; }

  // The objective at theta ([K, d], row-major); its gradient in *grad (if
  // not null).
  double Value(const std::vector<double>& theta, std::vector<double>* grad) {
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    const at::Tensor x = at::from_blob(xs_.data(), {n_, d_}, f64);
    at::Tensor z = at::from_blob(z_.data(), {n_, k_}, f64);
    at::mm_out(z, x,
               at::from_blob(const_cast<double*>(theta.data()), {k_, d_}, f64).t());
    ScaledSoftmax(z_.data(), n_, k_, 1.0, &p_, &top_, &sum_);
    double f = 0;
    for (int64_t i = 0; i < n_; ++i) {
      const double* zi = z_.data() + i * k_;
      f += std::log(sum_[i]) - (zi[labels_[i]] - zi[top_[i]]);
      if (grad == nullptr) continue;
      // The probabilities, and the residuals P - Y (Y the labels one-hot)
      // for the gradient.
      double* pi = p_.data() + i * k_;
      double* ri = r_.data() + i * k_;
      const double sum = sum_[i];
      for (int64_t j = 0; j < k_; ++j) {
        pi[j] /= sum;
        ri[j] = pi[j];
      }
      ri[labels_[i]] -= 1;
    }
    f /= static_cast<double>(n_);
    for (size_t e = 0; e < theta.size(); ++e)
      f += penalty_[e] * theta[e] * theta[e];
    if (grad != nullptr) {
      // (P - Y)^T X / n.
      grad->resize(theta.size());
      at::Tensor g = at::from_blob(grad->data(), {k_, d_}, f64);
      at::mm_out(g, at::from_blob(r_.data(), {n_, k_}, f64).t(), x);
      for (size_t e = 0; e < theta.size(); ++e) {
        (*grad)[e] = (*grad)[e] / static_cast<double>(n_) +
                     2 * penalty_[e] * theta[e];
      }
    }
    return f;
  }

 private:
  const int64_t n_, k_, d_;
  const std::vector<double> penalty_;
  std::vector<double> xs_;
  std::vector<int64_t> labels_;
  std::vector<double> z_, p_, r_, sum_;
  std::vector<int64_t> top_;
};

// A Hessian term in float32, terms below 1e-30 (far under the 1e-9 added to
// the diagonal) as 0: products of tiny probabilities or inputs would
// otherwise be subnormal floats, which the processor handles in slow
// microcode.
float HessianTerm(double v) {
  return std::fabs(v) < 1e-30 ? 0.0f : static_cast<float>(v);
}

// The Hessian of the NLL at the objective's last point, from m of its rows
// (i = 0, every, 2 every, ...) in float32, unnormalised: sum_i (diag(p_i) -
// p_i p_i^T) kron x_i x_i^T restricted to the free entries e (class
// cls[e], input input[e]). This one forms u_i = p_i kron x_i over the free
// entries: - sum_i u_i u_i^T, plus per class j (its free entries are
// `blocks`, contiguous) sum_i p_ij x_i x_i^T on the diagonal block, read
// from U^T X. For vector scaling's 2K entries.
at::Tensor SampledHessian(const ScalingObjective& objective, int64_t m,
                          int64_t every, const std::vector<int64_t>& cls,
                          const std::vector<int64_t>& input,
                          const std::vector<std::pair<int64_t, int64_t>>& blocks) {
  const int64_t nf = static_cast<int64_t>(cls.size()), d = objective.inputs();
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor u = at::empty({m, nf}, f32), xm = at::empty({m, d}, f32);
  for (int64_t r = 0; r < m; ++r) {
    const double* xi = objective.input(r * every);
    const double* pi = objective.probabilities(r * every);
    float* ur = u.data_ptr<float>() + r * nf;
    float* xr = xm.data_ptr<float>() + r * d;
    for (int64_t a = 0; a < d; ++a) xr[a] = static_cast<float>(xi[a]);
    for (int64_t e = 0; e < nf; ++e)
      ur[e] = static_cast<float>(pi[cls[e]] * xi[input[e]]);
  }
  at::Tensor h = -at::mm(u.t(), u);
  const at::Tensor ux = at::mm(u.t(), xm).contiguous();
  float* hp = h.data_ptr<float>();
  const float* uxp = ux.data_ptr<float>();
  for (const auto& [start, count] : blocks) {
    for (int64_t e = start; e < start + count; ++e) {
      for (int64_t e2 = start; e2 < start + count; ++e2)
        hp[e * nf + e2] += uxp[e * d + input[e2]];
    }
  }
  return h;
}

// The index of the pair a <= b (or b <= a) among n: (0, 0), (0, 1), ...,
// (0, n - 1), (1, 1), ...
int64_t PairIndex(int64_t a, int64_t b, int64_t n) {
  if (a > b) std::swap(a, b);
  return a * n - a * (a - 1) / 2 + (b - a);
}

// Where every entry is free (matrix scaling, Dirichlet): entry ((j, a),
// (l, b)) of the Hessian is sum_i (delta_jl p_ij - p_ij p_il) x_ia x_ib, so
// the products over the pairs j <= l and a <= b suffice, C = Q^T V with
// rows Q_i = (p_ij p_il) and V_i = (x_ia x_ib), and D = P^T V for the
// diagonal term: a third of the multiplications of - sum_i u_i u_i^T. V
// depends on the inputs only, so it is formed once a fit. (Vector scaling
// frees only 2K of the K(K + 1) entries, where the pairs of all classes
// would cost more than they save: SampledHessian.)
class FullHessian {
 public:
  // The Hessian's rows: i = 0, stride, 2 stride, ... (m of them).
  FullHessian(const ScalingObjective& objective, int64_t m, int64_t stride,
              int64_t k)
      : objective_(objective), m_(m), stride_(stride), k_(k),
        d_(objective.inputs()), kp_(k * (k + 1) / 2), dp_(d_ * (d_ + 1) / 2),
        v_(at::empty({m, dp_}, at::kFloat)) {
    for (int64_t r = 0; r < m; ++r) {
      const double* xi = objective.input(r * stride);
      float* vr = v_.data_ptr<float>() + r * dp_;
      for (int64_t a = 0; a < d_; ++a) {
        for (int64_t b = a; b < d_; ++b) *vr++ = HessianTerm(xi[a] * xi[b]);
      }
    }
  }

  // From every `step`-th of the rows, at the objective's last point,
  // unnormalised; also the number of rows used in *rows.
  at::Tensor Compute(int64_t step, const std::vector<int64_t>& cls,
                     const std::vector<int64_t>& input, int64_t* rows) const {
    const int64_t m = (m_ + step - 1) / step;
    *rows = m;
    at::Tensor q = at::empty({m, kp_}, at::kFloat),
               pm = at::empty({m, k_}, at::kFloat);
    for (int64_t r = 0; r < m; ++r) {
      const double* pi = objective_.probabilities(r * step * stride_);
      float* pr = pm.data_ptr<float>() + r * k_;
      // Probabilities below 1e-15 as 0: their products stay normal floats.
      for (int64_t j = 0; j < k_; ++j)
        pr[j] = pi[j] < 1e-15 ? 0.0f : static_cast<float>(pi[j]);
      float* qr = q.data_ptr<float>() + r * kp_;
      for (int64_t j = 0; j < k_; ++j) {
        for (int64_t l = j; l < k_; ++l) *qr++ = pr[j] * pr[l];
      }
    }
    const at::Tensor v = step == 1 ? v_ : v_.slice(0, 0, m_, step);
    const at::Tensor c = at::mm(q.t(), v).contiguous();
    const at::Tensor diag = at::mm(pm.t(), v).contiguous();
    const float* cp = c.data_ptr<float>();
    const float* dgp = diag.data_ptr<float>();
    const int64_t nf = static_cast<int64_t>(cls.size());
    at::Tensor h = at::empty({nf, nf}, at::kFloat);
    float* hp = h.data_ptr<float>();
    for (int64_t e = 0; e < nf; ++e) {
      for (int64_t e2 = 0; e2 < nf; ++e2) {
        const int64_t j = cls[e], l = cls[e2];
        const int64_t ab = PairIndex(input[e], input[e2], d_);
        hp[e * nf + e2] = (j == l ? dgp[j * dp_ + ab] : 0.0f) -
                          cp[PairIndex(j, l, k_) * dp_ + ab];
      }
    }
    return h;
  }

 private:
  const ScalingObjective& objective_;
  const int64_t m_, stride_, k_, d_, kp_, dp_;
  at::Tensor v_;  // [m, dp]
};

// Returns theta, or an undefined tensor where the problem is too large for
// a dense Hessian (matrix scaling past 23 classes).
at::Tensor NewtonFit(const at::Tensor& x, const at::Tensor& y, bool vector,
                     double reg, double temperature) {
  const int64_t n = x.size(0), k = x.size(1), d = k + 1;
  // The free entries of theta, class by class: each class's run is
  // contiguous.
  std::vector<int64_t> cls, input;
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t a = 0; a < d; ++a) {
      if (vector && a != j && a != k) continue;
      cls.push_back(j);
      input.push_back(a);
    }
  }
  const int64_t nf = static_cast<int64_t>(cls.size());
  if (nf > kMaxNewtonParameters) return at::Tensor();
  std::vector<std::pair<int64_t, int64_t>> blocks;  // (start, count)
  for (int64_t f = 0; f < nf; ++f) {
    if (f == 0 || cls[f] != cls[f - 1]) blocks.push_back({f, 0});
    ++blocks.back().second;
  }
  // The ODIR penalty's weight per entry: off-diagonal W and b.
  std::vector<double> penalty(static_cast<size_t>(k * d), 0.0);
  if (reg > 0 && k > 1) {
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t a = 0; a < d; ++a) {
        if (a == k) penalty[j * d + a] = reg / k;
        else if (a != j) penalty[j * d + a] = reg / (k * (k - 1));
      }
    }
  }
  ScalingObjective objective(x, y, penalty);
  const int64_t stride = std::max<int64_t>(1, n / kHessianRows);
  const int64_t hessian_rows = std::min(n, kHessianRows);
  std::optional<FullHessian> full;
  if (!vector) full.emplace(objective, hessian_rows, stride, k);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  std::vector<double> theta(static_cast<size_t>(k * d), 0.0), grad, next,
      next_grad;
  for (int64_t j = 0; j < k; ++j) theta[j * d + j] = 1 / temperature;
  // The gradient and probabilities at theta are always the last evaluated:
  // the accepted trial point is the last one the line search tried.
  double f = objective.Value(theta, &grad);
  // Far from the minimum (decrement above 1e-2) a quarter of the rows
  // steers as well; the last steps get them all.
  bool coarse = true;
  for (int it = 0; it < kMaxNewtonIterations; ++it) {
    at::Tensor g = at::empty({nf}, f64);
    for (int64_t e = 0; e < nf; ++e)
      g.data_ptr<double>()[e] = grad[cls[e] * d + input[e]];
    const int64_t every = coarse ? 4 : 1;  // of the Hessian's rows
    int64_t m = (hessian_rows + every - 1) / every;
    at::Tensor h = vector ? SampledHessian(objective, m, every * stride, cls,
                                           input, blocks)
                          : full->Compute(every, cls, input, &m);
    h = h.to(at::kDouble) / static_cast<double>(m);
    {
      double* hp = h.data_ptr<double>();
      for (int64_t e = 0; e < nf; ++e)
        hp[e * nf + e] += 2 * penalty[cls[e] * d + input[e]] + 1e-9;
    }
    at::Tensor step = at::linalg_solve(h, g);
    double decrement = (g * step).sum().item<double>();
    if (!(decrement > 0)) {  // not a descent direction: fall back to the gradient
      step = g;
      decrement = (g * g).sum().item<double>();
    }
    if (decrement < 1e-7) break;  // the NLL within about 1e-7 of its minimum
    if (decrement < 1e-2) coarse = false;
    const double* sp = step.data_ptr<double>();
    double t = 1, next_f = f;
    for (; t > 1e-10; t /= 2) {
      next = theta;
      for (int64_t e = 0; e < nf; ++e) next[cls[e] * d + input[e]] -= t * sp[e];
      next_f = objective.Value(next, &next_grad);
      if (next_f <= f - 1e-4 * t * decrement) break;
    }
    if (!(next_f < f)) break;  // no progress left at float64 precision
    const double gain = f - next_f;
    theta.swap(next);
    grad.swap(next_grad);
    f = next_f;
    if (gain < 1e-13) break;
  }
  return at::from_blob(theta.data(), {k, d}, f64).clone();
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
