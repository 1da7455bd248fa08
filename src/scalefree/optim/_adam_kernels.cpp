// One-pass CPU kernels for the Adam weight-decay family (scalefree.optim._kernels builds this file).
//
// step(): for every parameter tensor, in one read of (x, g, m, v[, v_max]) and one write of
// (x, m, v[, v_max]), the Adam step of DESIGN section 3 followed by the variant's decay or proximal
// operator. All tensors of a call form one flat index space that is split once between the
// threads of torch's pool (at::parallel_for), so a model with a thousand small tensors costs one
// parallel region, not a thousand. AdamProxL2 needs the norm of y = x - u before it can scale:
// step() writes y and returns sum(y^2) per tensor; scale_() is the second pass.
//
// Arithmetic is in the parameters' dtype (float32 or float64), scalars are computed in double and
// then rounded to it, as in torch's fused Adam. eps = 0 is exact: where D = 0 the Adam step is 0.
#include <torch/python.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

enum Variant { kPlain = 0, kL2 = 1, kW = 2, kProx = 3, kProxL2 = 4, kProxL1 = 5, kProxD = 6 };

struct Scalars {  // per call
  double beta1, beta2, eps, s, lam, lr, sign;
};

struct PerTensor {  // per tensor: bias corrections of its own step count
  double step_size, inv_bc2_sqrt;
};

template <typename T, int V, bool AMS>
double update(T* __restrict x, const T* __restrict g, T* __restrict m, T* __restrict v,
              T* __restrict vmax, int64_t n, const Scalars& c, const PerTensor& pt) {
  const T sign = c.sign, lam = c.lam, w1 = 1.0 - c.beta1, b2 = c.beta2, w2 = 1.0 - c.beta2;
  const T eps = c.eps, s = c.s, ss = pt.step_size, ibc2 = pt.inv_bc2_sqrt;
  const T decay = 1.0 - c.s, inv1ps = 1.0 / (1.0 + c.s), zero = 0;
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    const T xi = x[i];
    T gi = sign * g[i];
    if (V == kL2) gi += lam * xi;
    const T mi = m[i] + w1 * (gi - m[i]);  // lerp(m, g, 1 - beta1), as torch's kernels
    const T vi = b2 * v[i] + w2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T vv = vi;
    if (AMS) {
      vv = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vv;
    }
    const T d = std::sqrt(vv) * ibc2 + eps;      // D = sqrt(v_hat) + eps
    const T lm = ss * mi;                        // lr * m_hat
    const T u = d > zero ? lm / d : zero;        // 0/0 := 0
    if (V == kPlain || V == kL2) {
      x[i] = xi - u;
    } else if (V == kW) {
      x[i] = decay * xi - u;
    } else if (V == kProx) {
      x[i] = (xi - u) * inv1ps;
    } else if (V == kProxL1) {
      const T y = xi - u;
      const T a = std::abs(y) - s;
      x[i] = a > zero ? std::copysign(a, y) : zero;
    } else if (V == kProxL2) {
      const T y = xi - u;
      x[i] = y;
      acc += static_cast<double>(y) * static_cast<double>(y);
    } else {  // kProxD, s > 0: (D x - lr m_hat) / (D + s)
      x[i] = (d * xi - lm) / (d + s);
    }
  }
  return acc;
}

using Fn = double (*)(void*, const void*, void*, void*, void*, int64_t, const Scalars&,
                      const PerTensor&);

template <typename T, int V, bool AMS>
double erased(void* x, const void* g, void* m, void* v, void* vm, int64_t n, const Scalars& c,
              const PerTensor& pt) {
  return update<T, V, AMS>(static_cast<T*>(x), static_cast<const T*>(g), static_cast<T*>(m),
                           static_cast<T*>(v), static_cast<T*>(vm), n, c, pt);
}

template <typename T, int V>
Fn pick_ams(bool ams) { return ams ? &erased<T, V, true> : &erased<T, V, false>; }

template <typename T>
Fn pick_variant(int variant, bool ams) {
  switch (variant) {
    case kPlain: return pick_ams<T, kPlain>(ams);
    case kL2: return pick_ams<T, kL2>(ams);
    case kW: return pick_ams<T, kW>(ams);
    case kProx: return pick_ams<T, kProx>(ams);
    case kProxL2: return pick_ams<T, kProxL2>(ams);
    case kProxL1: return pick_ams<T, kProxL1>(ams);
    case kProxD: return pick_ams<T, kProxD>(ams);
  }
  TORCH_CHECK(false, "unknown variant ", variant);
}

bool usable(const at::Tensor& t, at::ScalarType dt, int64_t n) {
  return t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == dt &&
         t.is_contiguous() && t.numel() == n;
}

// Checks every tensor before anything is written: false means "not for this kernel".
bool supported(const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
               const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v,
               const std::vector<at::Tensor>& vm, const std::vector<at::Tensor>& steps, bool ams) {
  const size_t k = p.size();
  if (k == 0 || g.size() != k || m.size() != k || v.size() != k || steps.size() != k) return false;
  if (ams && vm.size() != k) return false;
  const auto dt = p[0].scalar_type();
  if (dt != at::kFloat && dt != at::kDouble) return false;
  for (size_t i = 0; i < k; ++i) {
    const int64_t n = p[i].numel();
    if (!usable(p[i], dt, n) || !usable(g[i], dt, n) || !usable(m[i], dt, n) ||
        !usable(v[i], dt, n) || (ams && !usable(vm[i], dt, n)))
      return false;
    const auto& t = steps[i];
    if (!t.device().is_cpu() || t.numel() != 1 || t.layout() != at::kStrided ||
        (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble))
      return false;
  }
  return true;
}

// Increments every step count and returns each tensor's step size and 1 / sqrt(1 - beta2^t).
std::vector<PerTensor> advance_steps(const std::vector<at::Tensor>& steps, const Scalars& c) {
  std::vector<PerTensor> out(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    double t;
    if (steps[i].scalar_type() == at::kFloat) {
      float* p = steps[i].data_ptr<float>();
      t = static_cast<double>(*p += 1.0f);
    } else {
      double* p = steps[i].data_ptr<double>();
      t = (*p += 1.0);
    }
    const double bc1 = 1.0 - std::pow(c.beta1, t), bc2 = 1.0 - std::pow(c.beta2, t);
    out[i] = {c.lr / bc1, 1.0 / std::sqrt(bc2)};
  }
  return out;
}

std::vector<int64_t> offsets_of(const std::vector<at::Tensor>& p) {
  std::vector<int64_t> off(p.size() + 1, 0);
  for (size_t i = 0; i < p.size(); ++i) off[i + 1] = off[i] + p[i].numel();
  return off;
}

// Calls body(tensor, lo, hi) for every piece of every tensor, the pieces split between threads.
template <typename Body>
void for_each_piece(const std::vector<int64_t>& off, const Body& body) {
  const int64_t total = off.back();
  at::parallel_for(0, total, 1 << 15, [&](int64_t begin, int64_t end) {
    size_t i = std::upper_bound(off.begin(), off.end(), begin) - off.begin() - 1;
    for (; i + 1 < off.size() && off[i] < end; ++i) {
      const int64_t lo = std::max(begin, off[i]) - off[i], hi = std::min(end, off[i + 1]) - off[i];
      if (hi > lo) body(i, lo, hi);
    }
  });
}

// Returns None when the tensors are not for this kernel (nothing written), else a float64 tensor
// of sum(y^2) per parameter (zeros unless variant is AdamProxL2).
py::object step(int variant, const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
                const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v,
                const std::vector<at::Tensor>& vm, const std::vector<at::Tensor>& steps,
                double lr, double beta1, double beta2, double eps, double s, double lam,
                bool amsgrad, bool maximize) {
  if (!supported(p, g, m, v, vm, steps, amsgrad)) return py::none();
  const Scalars c{beta1, beta2, eps, s, lam, lr, maximize ? -1.0 : 1.0};
  const auto pt = advance_steps(steps, c);
  const auto off = offsets_of(p);
  const bool dbl = p[0].scalar_type() == at::kDouble;
  const Fn fn = dbl ? pick_variant<double>(variant, amsgrad) : pick_variant<float>(variant, amsgrad);
  const size_t k = p.size(), es = dbl ? sizeof(double) : sizeof(float);
  const int nt = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(nt) * k, 0.0);
  {
    py::gil_scoped_release nogil;
    for_each_piece(off, [&](size_t i, int64_t lo, int64_t hi) {
      auto at_ = [&](const at::Tensor& t) { return static_cast<char*>(t.data_ptr()) + lo * es; };
      void* vmax = amsgrad ? at_(vm[i]) : nullptr;
      const double a = fn(at_(p[i]), at_(g[i]), at_(m[i]), at_(v[i]), vmax, hi - lo, c, pt[i]);
      partial[static_cast<size_t>(at::get_thread_num()) * k + i] += a;
    });
  }
  auto sums = at::zeros({static_cast<int64_t>(k)}, at::kDouble);
  double* out = sums.data_ptr<double>();
  for (int t = 0; t < nt; ++t)
    for (size_t i = 0; i < k; ++i) out[i] += partial[static_cast<size_t>(t) * k + i];
  return py::cast(sums);
}

template <typename T>
void scale_piece(T* x, int64_t n, double f) {
  const T c = f;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = c * x[i];
}

// x_i <- factors[i] * x_i for the tensors step() accepted (the second pass of AdamProxL2).
void scale_(const std::vector<at::Tensor>& p, const at::Tensor& factors) {
  TORCH_CHECK(factors.scalar_type() == at::kDouble && factors.is_contiguous() &&
              factors.numel() == static_cast<int64_t>(p.size()), "factors: float64, one per tensor");
  const double* f = factors.data_ptr<double>();
  const auto off = offsets_of(p);
  py::gil_scoped_release nogil;
  for_each_piece(off, [&](size_t i, int64_t lo, int64_t hi) {
    if (p[i].scalar_type() == at::kDouble)
      scale_piece(p[i].data_ptr<double>() + lo, hi - lo, f[i]);
    else
      scale_piece(p[i].data_ptr<float>() + lo, hi - lo, f[i]);
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("step", &step, "Adam step + decay/prox in one pass over a list of tensors");
  mod.def("scale_", &scale_, "x_i <- factors[i] * x_i, in place");
}
