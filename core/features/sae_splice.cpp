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
  HookHandle handle = 0;

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
  if (sae_is_transcoder(sae->cfg.arch))
    fail_usage(sae->cfg.source + ": splicing a transcoder is not supported yet (encode works)");
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
  m->handle = registry.add_forward(m->sae->cfg.hook_name,
                                   [state](const at::Tensor& act, const HookContext& ctx) { return state->run(act, ctx); });
}

SaeSplice::~SaeSplice() { m->registry->remove(m->handle); }

const std::vector<std::string>& SaeSplice::hook_names() const { return m->names; }

}  // namespace ms
