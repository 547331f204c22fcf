// Activation cache and stock hook actions.
#include "hooks/activation_cache.h"

#include <ATen/ATen.h>

#include <random>
#include <stdexcept>

#include "hooks/hook_names.h"

namespace ms {
namespace {

// The selected part of act as a view: positions (absolute, shifted by the run's offset) along
// the position axis, heads along the head axis.
at::Tensor index_tensor(const std::vector<int64_t>& idx, int64_t offset, int64_t size,
                        const std::string& name, const char* what) {
  std::vector<int64_t> local;
  for (int64_t i : idx) {
    int64_t j = i - offset;
    if (j < 0 || j >= size) {
      if (std::string(what) == "position") continue;  // not in this (cached) call
      throw std::out_of_range(std::string(what) + " " + std::to_string(i) + " out of range for " +
                              name + " (size " + std::to_string(size) + ")");
    }
    local.push_back(j);
  }
  return at::tensor(local, at::kLong);
}

// Applies fn(dst_view, src_view) on the selection, writing into a copy of act.
template <class F>
at::Tensor on_selection(const at::Tensor& act, const HookContext& ctx, const Selection& sel,
                        F&& assign) {
  HookAxes axes = hook_axes(ctx.name);
  at::Tensor out = act.clone();
  if (!sel.heads.empty() && axes.head < 0)
    throw std::invalid_argument("hook " + ctx.name + " has no head axis; cannot select heads");
  // Build the index list axis by axis with index_put over a broadcast grid.
  std::vector<at::Tensor> idx(static_cast<size_t>(act.dim()));
  int64_t n_sel_axes = 0;
  if (!sel.positions.empty()) {
    at::Tensor p = index_tensor(sel.positions, ctx.pos_offset, act.size(axes.pos), ctx.name,
                                "position");
    if (p.numel() == 0) return at::Tensor();  // nothing selected in this call
    idx[static_cast<size_t>(axes.pos)] = p.to(act.device());
    ++n_sel_axes;
  }
  if (!sel.heads.empty()) {
    idx[static_cast<size_t>(axes.head)] =
        index_tensor(sel.heads, 0, act.size(axes.head), ctx.name, "head").to(act.device());
    ++n_sel_axes;
  }
  if (n_sel_axes == 0) {
    assign(out, [](at::Tensor t) { return t; });
    return out;
  }
  // index_select axis by axis gives the selected block; write it back with index_copy.
  auto select = [&](at::Tensor t) {
    for (size_t ax = 0; ax < idx.size(); ++ax)
      if (idx[ax].defined()) t = t.index_select(static_cast<int64_t>(ax), idx[ax]);
    return t;
  };
  at::Tensor block = select(out);
  assign(block, select);
  // Write block back: nested index_copy, innermost selected axis first.
  std::vector<size_t> axes_used;
  for (size_t ax = 0; ax < idx.size(); ++ax)
    if (idx[ax].defined()) axes_used.push_back(ax);
  if (axes_used.size() == 1) {
    out.index_copy_(static_cast<int64_t>(axes_used[0]), idx[axes_used[0]], block);
  } else {
    size_t a0 = axes_used[0], a1 = axes_used[1];
    at::Tensor mid = out.index_select(static_cast<int64_t>(a0), idx[a0]);
    mid.index_copy_(static_cast<int64_t>(a1), idx[a1], block);
    out.index_copy_(static_cast<int64_t>(a0), idx[a0], mid);
  }
  return out;
}

}  // namespace

const at::Tensor& ActivationCache::at(const std::string& name) const {
  auto it = m_acts.find(name);
  if (it == m_acts.end()) throw std::out_of_range("activation cache has no '" + name + "'");
  return it->second;
}

std::vector<std::string> ActivationCache::names() const {
  std::vector<std::string> out;
  for (const auto& kv : m_acts) out.push_back(kv.first);
  return out;
}

ForwardHook cache_hook(ActivationCache& cache, bool append_positions) {
  return [&cache, append_positions](const at::Tensor& act, const HookContext& ctx) {
    at::Tensor a = act.detach();
    if (append_positions && ctx.pos_offset > 0 && cache.contains(ctx.name)) {
      int axis = hook_axes(ctx.name).pos;
      cache.set(ctx.name, at::cat({cache.at(ctx.name), a}, axis));
    } else {
      cache.set(ctx.name, a);
    }
    return at::Tensor();
  };
}

BackwardHook cache_grad_hook(ActivationCache& cache) {
  return [&cache](const at::Tensor& grad, const HookContext& ctx) {
    cache.set(ctx.name, grad.detach().clone());
    return at::Tensor();
  };
}

ForwardHook patch_hook(const ActivationCache& source, Selection sel) {
  return [&source, sel](const at::Tensor& act, const HookContext& ctx) {
    const at::Tensor& src = source.at(ctx.name);
    if (src.dim() != act.dim())
      throw std::invalid_argument("patch source for " + ctx.name + " has rank " +
                                  std::to_string(src.dim()) + ", activation has " +
                                  std::to_string(act.dim()));
    at::Tensor s = src.to(act.device(), act.scalar_type());
    return on_selection(act, ctx, sel, [&](at::Tensor& block, auto select) {
      at::Tensor piece = select(s);
      if (piece.sizes() != block.sizes())
        throw std::invalid_argument("patch source for " + ctx.name + " has shape " +
                                    std::string(c10::str(s.sizes())) + ", activation " +
                                    std::string(c10::str(act.sizes())));
      block.copy_(piece);
    });
  };
}

ForwardHook zero_ablate_hook(Selection sel) {
  return [sel](const at::Tensor& act, const HookContext& ctx) {
    return on_selection(act, ctx, sel, [](at::Tensor& block, auto) { block.zero_(); });
  };
}

ForwardHook mean_ablate_hook(const ActivationCache& reference, Selection sel) {
  return [&reference, sel](const at::Tensor& act, const HookContext& ctx) {
    at::Tensor mean = reference.at(ctx.name).to(act.device(), at::kFloat).mean(0, true);
    mean = mean.to(act.scalar_type()).expand_as(act);
    return on_selection(act, ctx, sel, [&](at::Tensor& block, auto select) {
      block.copy_(select(mean));
    });
  };
}

ForwardHook resample_ablate_hook(const ActivationCache& reference, uint64_t seed, Selection sel) {
  return [&reference, seed, sel](const at::Tensor& act, const HookContext& ctx) {
    const at::Tensor& ref = reference.at(ctx.name);
    int64_t n_ref = ref.size(0), batch = act.size(0);
    std::mt19937_64 rng(seed ^ std::hash<std::string>{}(ctx.name));
    std::vector<int64_t> pick(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      // a different example when the reference is the same batch and has more than one
      std::uniform_int_distribution<int64_t> dist(0, n_ref > 1 ? n_ref - 2 : 0);
      int64_t j = dist(rng);
      if (n_ref > 1 && j >= b % n_ref) ++j;
      pick[static_cast<size_t>(b)] = j;
    }
    at::Tensor src = ref.index_select(0, at::tensor(pick, at::kLong).to(ref.device()))
                         .to(act.device(), act.scalar_type());
    return on_selection(act, ctx, sel, [&](at::Tensor& block, auto select) {
      block.copy_(select(src));
    });
  };
}

ForwardHook add_vector_hook(at::Tensor vector, double coeff, Selection sel) {
  return [vector, coeff, sel](const at::Tensor& act, const HookContext& ctx) {
    at::Tensor v = vector.to(act.device(), act.scalar_type()) * coeff;
    return on_selection(act, ctx, sel, [&](at::Tensor& block, auto) { block.add_(v); });
  };
}

}  // namespace ms
