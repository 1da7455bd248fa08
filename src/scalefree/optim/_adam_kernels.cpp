// One-pass CPU kernels for the Adam weight-decay family (scalefree.optim._kernels builds this file).
//
// step(): for every parameter tensor, in one read of (x, g, m, v[, v_max]) and one write of
// (x, m, v[, v_max]), the Adam step of docs/math.md section 2 followed by the variant's decay or proximal
// operator. All tensors of a call form one flat index space that is split once between the
// threads of torch's pool (at::parallel_for), so a model with a thousand small tensors costs one
// parallel region, not a thousand. AdamProxL2 needs the norm of y = x - u before it can scale:
// step() writes y and returns sum(y^2) per tensor; scale_() is the second pass.
//
// Two masks (options of every rule): caution (C-AdamW, Liang et al. 2024) scales u by
// phi / max(mean(phi), 1e-3), phi = 1[m * g > 0] with m after this step's update, mean per tensor;
// that mean must be known before any x is written, so phi is counted first (count_phi: reads g, m,
// and x for L2 only; writes nothing): for a small tensor by the thread that then steps it, while
// its g and m are in cache; for a large one in a pass over all of them. cautious_decay (CWD,
// Chen et al. 2025) applies the elementwise rule's decay or prox only where u * x >= 0: no extra
// pass.
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

struct PerTensor {  // per tensor: bias corrections of its own step count, caution's rescaling
  double step_size, inv_bc2_sqrt, caution_scale;
};

constexpr bool elementwise(int V) { return V == kW || V == kProx || V == kProxL1 || V == kProxD; }

// The number of coordinates with phi = 1[m_new * g > 0], m_new computed exactly as update() does.
template <typename T, bool L2>
double count_phi(const T* __restrict x, const T* __restrict g, const T* __restrict m, int64_t n,
                 const Scalars& c) {
  const T sign = c.sign, lam = c.lam, w1 = 1.0 - c.beta1, zero = 0;
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    T gi = sign * g[i];
    if (L2) gi += lam * x[i];
    const T mi = m[i] + w1 * (gi - m[i]);
    acc += mi * gi > zero ? 1.0 : 0.0;
  }
  return acc;
}

template <typename T, int V, bool AMS, bool CAU, bool CWD>
double update(T* __restrict x, const T* __restrict g, T* __restrict m, T* __restrict v,
              T* __restrict vmax, int64_t n, const Scalars& c, const PerTensor& pt) {
  const T sign = c.sign, lam = c.lam, w1 = 1.0 - c.beta1, b2 = c.beta2, w2 = 1.0 - c.beta2;
  const T eps = c.eps, s = c.s, ss = pt.step_size, ibc2 = pt.inv_bc2_sqrt;
  const T decay = 1.0 - c.s, inv1ps = 1.0 / (1.0 + c.s), zero = 0, cs = pt.caution_scale;
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
    T u = d > zero ? lm / d : zero;              // 0/0 := 0
    if (CAU) u = mi * gi > zero ? u * cs : zero;  // C-AdamW: u phi / max(mean(phi), floor)
    const T y = xi - u;
    T r;  // the rule's new x
    if (V == kPlain || V == kL2) {
      r = y;
    } else if (V == kW) {
      r = decay * xi - u;
    } else if (V == kProx) {
      r = y * inv1ps;
    } else if (V == kProxL1) {
      const T a = std::abs(y) - s;
      r = a > zero ? std::copysign(a, y) : zero;
    } else if (V == kProxL2) {
      r = y;
      acc += static_cast<double>(y) * static_cast<double>(y);
    } else if (CAU) {  // kProxD, s > 0, with the cautioned u: D y / (D + s)
      r = d * y / (d + s);
    } else {  // kProxD, s > 0: (D x - lr m_hat) / (D + s)
      r = (d * xi - lm) / (d + s);
    }
    if (CWD) r = u * xi >= zero ? r : y;  // CWD: decay only where update and weight agree
    x[i] = r;
  }
  return acc;
}

using Fn = double (*)(void*, const void*, void*, void*, void*, int64_t, const Scalars&,
                      const PerTensor&);

template <typename T, int V, bool AMS, bool CAU, bool CWD>
double erased(void* x, const void* g, void* m, void* v, void* vm, int64_t n, const Scalars& c,
              const PerTensor& pt) {
  return update<T, V, AMS, CAU, CWD>(static_cast<T*>(x), static_cast<const T*>(g),
                                     static_cast<T*>(m), static_cast<T*>(v), static_cast<T*>(vm),
                                     n, c, pt);
}

struct Flags {
  bool ams, caution, cautious_decay;
};

// Instantiates cautious_decay only for the elementwise rules (the others refuse it in Python).
template <typename T, int V, bool AMS, bool CAU>
Fn pick_cwd(bool cwd) {
  if constexpr (elementwise(V)) {
    return cwd ? &erased<T, V, AMS, CAU, true> : &erased<T, V, AMS, CAU, false>;
  } else {
    TORCH_CHECK(!cwd, "cautious_decay needs an elementwise rule, not variant ", V);
    return &erased<T, V, AMS, CAU, false>;
  }
}

template <typename T, int V>
Fn pick_flags(const Flags& f) {
  if (f.ams)
    return f.caution ? pick_cwd<T, V, true, true>(f.cautious_decay)
                     : pick_cwd<T, V, true, false>(f.cautious_decay);
  return f.caution ? pick_cwd<T, V, false, true>(f.cautious_decay)
                   : pick_cwd<T, V, false, false>(f.cautious_decay);
}

template <typename T>
Fn pick_variant(int variant, const Flags& f) {
  switch (variant) {
    case kPlain: return pick_flags<T, kPlain>(f);
    case kL2: return pick_flags<T, kL2>(f);
    case kW: return pick_flags<T, kW>(f);
    case kProx: return pick_flags<T, kProx>(f);
    case kProxL2: return pick_flags<T, kProxL2>(f);
    case kProxL1: return pick_flags<T, kProxL1>(f);
    case kProxD: return pick_flags<T, kProxD>(f);
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
    out[i] = {c.lr / bc1, 1.0 / std::sqrt(bc2), 1.0};
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

// Sums body(tensor, lo, hi) per tensor over all pieces (threads write their own slots).
template <typename Body>
std::vector<double> sum_pieces(const std::vector<int64_t>& off, const Body& body) {
  const size_t k = off.size() - 1;
  const int nt = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(nt) * k, 0.0), out(k, 0.0);
  for_each_piece(off, [&](size_t i, int64_t lo, int64_t hi) {
    partial[static_cast<size_t>(at::get_thread_num()) * k + i] += body(i, lo, hi);
  });
  for (int t = 0; t < nt; ++t)
    for (size_t i = 0; i < k; ++i) out[i] += partial[static_cast<size_t>(t) * k + i];
  return out;
}

// Tensors up to this many elements are counted and stepped by one thread in one visit, while their
// g and m (512 KiB in float32) are still in its L2 cache: caution then reads them once from memory
// instead of twice (28 instead of 36 B per parameter). Every tensor of the CIFAR ResNets is this
// small (the largest, 64 x 64 x 3 x 3, has 36,864 elements). Larger ones take the two passes.
constexpr int64_t kFusedCautionMax = 1 << 16;

double caution_scale_of(double count, int64_t n, double floor) {
  return 1.0 / std::max(count / static_cast<double>(n), floor);
}

// count_phi over elements [lo, lo + n) of one tensor, in its dtype.
double count_phi_of(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, int64_t lo,
                    int64_t n, const Scalars& c, bool l2) {
  if (p.scalar_type() == at::kDouble) {
    auto f = l2 ? &count_phi<double, true> : &count_phi<double, false>;
    return f(p.data_ptr<double>() + lo, g.data_ptr<double>() + lo, m.data_ptr<double>() + lo, n, c);
  }
  auto f = l2 ? &count_phi<float, true> : &count_phi<float, false>;
  return f(p.data_ptr<float>() + lo, g.data_ptr<float>() + lo, m.data_ptr<float>() + lo, n, c);
}

// Caution's first pass, over the tensors larger than kFusedCautionMax only:
// caution_scale = 1 / max(mean(phi), floor).
void caution_scales(std::vector<PerTensor>& pt, const std::vector<at::Tensor>& p,
                    const std::vector<at::Tensor>& g, const std::vector<at::Tensor>& m,
                    const std::vector<int64_t>& off, const Scalars& c, bool l2, double floor) {
  const auto counts = sum_pieces(off, [&](size_t i, int64_t lo, int64_t hi) {
    if (off[i + 1] - off[i] <= kFusedCautionMax) return 0.0;
    return count_phi_of(p[i], g[i], m[i], lo, hi - lo, c, l2);
  });
  for (size_t i = 0; i < pt.size(); ++i) {
    const int64_t n = off[i + 1] - off[i];
    if (n > kFusedCautionMax) pt[i].caution_scale = caution_scale_of(counts[i], n, floor);
  }
}

// Returns None when the tensors are not for this kernel (nothing written), else a float64 tensor
// of sum(y^2) per parameter (zeros unless variant is AdamProxL2).
py::object step(int variant, const std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
                const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v,
                const std::vector<at::Tensor>& vm, const std::vector<at::Tensor>& steps,
                double lr, double beta1, double beta2, double eps, double s, double lam,
                bool amsgrad, bool maximize, bool caution, bool cautious_decay,
                double caution_floor) {
  if (!supported(p, g, m, v, vm, steps, amsgrad)) return py::none();
  const bool cwd_ok = variant == kW || variant == kProx || variant == kProxL1 || variant == kProxD;
  if (cautious_decay && !cwd_ok) return py::none();
  const Scalars c{beta1, beta2, eps, s, lam, lr, maximize ? -1.0 : 1.0};
  auto pt = advance_steps(steps, c);
  const auto off = offsets_of(p);
  const bool dbl = p[0].scalar_type() == at::kDouble;
  const Flags flags{amsgrad, caution, cautious_decay};
  const bool l2 = variant == kL2;
  const Fn fn = dbl ? pick_variant<double>(variant, flags) : pick_variant<float>(variant, flags);
  const size_t k = p.size(), es = dbl ? sizeof(double) : sizeof(float);
  const int nt = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(nt) * k, 0.0);
  {
    py::gil_scoped_release nogil;
    if (caution) caution_scales(pt, p, g, m, off, c, l2, caution_floor);
    for_each_piece(off, [&](size_t i, int64_t lo, int64_t hi) {
      PerTensor q = pt[i];
      const int64_t n = off[i + 1] - off[i];
      if (caution && n <= kFusedCautionMax) {  // the thread holding its first element does it all
        if (lo != 0) return;
        hi = n;
        q.caution_scale = caution_scale_of(count_phi_of(p[i], g[i], m[i], 0, n, c, l2), n,
                                           caution_floor);
      }
      auto at_ = [&](const at::Tensor& t) { return static_cast<char*>(t.data_ptr()) + lo * es; };
      void* vmax = amsgrad ? at_(vm[i]) : nullptr;
      const double a = fn(at_(p[i]), at_(g[i]), at_(m[i]), at_(v[i]), vmax, hi - lo, c, q);
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
