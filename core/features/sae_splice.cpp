// The splice hook: the SAE's pass with its stages as hook points resolved from the caller's
// registry, and the error term (see sae_splice.h).
#include "core/features/sae_splice.h"

#include <ATen/ATen.h>

namespace ms {

struct SaeSplice::State {
  HookRegistry* registry = nullptr;
  std::shared_ptr<const Sae> sae;
  SpliceOptions opts;
  HookPointTable table;
  std::vector<std::string> names;
  HookHandle handle = 0, handle_out = 0;
  // A transcoder's pass, from its input point to its output point (one forward at a time).
  mutable at::Tensor pending_out, pending_clean;
  mutable bool pending_modified = false;

  // At a transcoder's input point: run it, keep the result for the output point, change nothing.
  at::Tensor run_transcoder_in(const at::Tensor& act, const HookContext& ctx) const {
    ActiveHooks inner(registry, table);
    pending_out = pending_clean = at::Tensor();
    if (opts.keep_error && !inner.any()) return {};
    inner.set_pos_offset(ctx.pos_offset);
    const at::Tensor x = sae->to_input(act).to(at::kFloat);
    bool modified = false;
    SaePass p = sae->run(x, [&](SaeStage st, const at::Tensor& t) -> at::Tensor {
      const int id = static_cast<int>(st);
      if (!inner.live(id)) return t;
      at::Tensor r = inner.apply(id, t);
      if (!r.is_same(t)) modified = true;
      return r;
    });
    pending_out = p.out;
    pending_clean = modified ? sae->run(x).out : p.out;
    pending_modified = modified;
    return {};
  }

  // At its output point: the activation there replaced as an SAE's is at its own point.
  at::Tensor run_transcoder_out(const at::Tensor& act, const HookContext& ctx) const {
    if (!pending_out.defined()) {
      if (opts.keep_error) return {};
      fail_input(sae->cfg.source + ": the transcoder's output point " + sae->cfg.hook_name_out +
                 " ran before its input point " + sae->cfg.hook_name);
    }
    ActiveHooks inner(registry, table);
    inner.set_pos_offset(ctx.pos_offset);
    auto stage = [&](SaeStage st, const at::Tensor& t) {
      const int id = static_cast<int>(st);
      return inner.live(id) ? inner.apply(id, t) : t;
    };
    const at::Tensor y = act.to(at::kFloat);
    at::Tensor out;
    if (!opts.keep_error) {
      out = pending_out;
    } else if (inner.live(static_cast<int>(SaeStage::kError))) {
      out = pending_out + stage(SaeStage::kError, y - pending_clean);
    } else {
      out = pending_modified ? y + (pending_out - pending_clean) : y;
    }
    out = stage(SaeStage::kOutput, out);
    pending_out = pending_clean = at::Tensor();
    return out.reshape(act.sizes()).to(act.scalar_type());
  }

  at::Tensor run(const at::Tensor& act, const HookContext& ctx) const {
    ActiveHooks inner(registry, table);
    if (opts.keep_error && !inner.any()) return {};  // nothing watches or edits it: x itself
    inner.set_pos_offset(ctx.pos_offset);
    const Sae& s = *sae;
    const at::Tensor x = s.to_input(act).to(at::kFloat);  // (B, T, d_in)
    bool modified = false;
    auto stage = [&](SaeStage st, const at::Tensor& t) -> at::Tensor {
      const int id = static_cast<int>(st);
      if (!inner.live(id)) return t;
      at::Tensor r = inner.apply(id, t);
      if (!r.is_same(t)) modified = true;
      return r;
    };
    SaePass p = s.run(x, [&](SaeStage st, const at::Tensor& t) { return stage(st, t); });
    // hook_sae_error and hook_sae_output see the activation's layout (hook_z: [.., heads, d_head]).
    auto layout = [&](const at::Tensor& t) {
      return s.cfg.reshape_hook_z && s.cfg.hook_head_index < 0 ? t.reshape(act.sizes()) : t;
    };
    at::Tensor out;
    if (!opts.keep_error) {
      out = layout(p.out);
    } else {
      const at::Tensor clean = modified ? s.run(x).out : p.out;
      if (inner.live(static_cast<int>(SaeStage::kError))) {
        out = layout(p.out) + stage(SaeStage::kError, layout(x - clean));
      } else {
        out = modified ? layout(x + (p.out - clean)) : layout(x);
      }
    }
    out = stage(SaeStage::kOutput, out);
    if (s.cfg.hook_head_index >= 0) return s.from_output(out, act);
    return out.reshape(act.sizes()).to(act.scalar_type());
  }
};

std::string SaeSplice::hook_name(const std::string& point, SaeStage stage) {
  return point + "." + sae_stage_hook(stage);
}

SaeSplice::SaeSplice(HookRegistry& registry, std::shared_ptr<const Sae> sae, SpliceOptions opts)
    : m(std::make_unique<State>()) {
  if (sae_is_transcoder(sae->cfg.arch) && sae->cfg.hook_name_out.empty())
    fail_usage(sae->cfg.source + ": the transcoder names no output hook point (hook_name_out)");
  if (sae->cfg.hook_name.empty())
    fail_usage(sae->cfg.source + ": the SAE names no hook point; give one with --hook");
  m->registry = &registry;
  m->opts = opts;
  for (int i = 0; i < kSaeStages; ++i) {
    m->names.push_back(hook_name(sae->cfg.hook_name, static_cast<SaeStage>(i)));
    m->table.add(m->names.back());
  }
  m->sae = std::move(sae);
  const State* state = m.get();
  if (sae_is_transcoder(m->sae->cfg.arch)) {
    m->handle = registry.add_forward(m->sae->cfg.hook_name, [state](const at::Tensor& act, const HookContext& ctx) {
      return state->run_transcoder_in(act, ctx);
    });
    m->handle_out = registry.add_forward(m->sae->cfg.hook_name_out, [state](const at::Tensor& act, const HookContext& ctx) {
      return state->run_transcoder_out(act, ctx);
    });
    return;
  }
  m->handle = registry.add_forward(m->sae->cfg.hook_name,
                                   [state](const at::Tensor& act, const HookContext& ctx) { return state->run(act, ctx); });
}

SaeSplice::~SaeSplice() {
  m->registry->remove(m->handle);
  if (m->handle_out) m->registry->remove(m->handle_out);
}

const std::vector<std::string>& SaeSplice::hook_names() const { return m->names; }

ForwardHook steer_feature_hook(int64_t feature, double value) {
  return [feature, value](const at::Tensor& acts, const HookContext& ctx) -> at::Tensor {
    if (feature < 0 || feature >= acts.size(-1))
      throw InputError(ctx.name + ": no feature " + std::to_string(feature) + " (the SAE has " +
                       std::to_string(acts.size(-1)) + ")", ErrorCode::kUsage);
    at::Tensor out = acts.clone();
    out.select(-1, feature).add_(value);
    return out;
  };
}

}  // namespace ms
