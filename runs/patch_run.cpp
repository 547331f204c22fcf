// patch_spec and run_patch: activation patching declared once and run the same way everywhere.
#include "runs/patch_run.h"

namespace ms {

const AnalysisSpec& patch_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "patch";
    s.summary = "activation patching grids on a circuit task (as mechscope patch)";
    s.params = task_param_decls();
    ParamDecl what{"what", ParamType::kChoice, "resid_pre", true,
                   "resid_pre, attn_out, mlp_out (layer x position); z, q, k, v, pattern (layer x head)"};
    what.choices = {"resid_pre", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern"};
    ParamDecl per_pos{"per_position", ParamType::kBool, false, true, "z: one cell per layer, head and position"};
    s.params.push_back(what);
    s.params.push_back(per_pos);
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      if (!c) return "";
      std::string msg = check_task_params(p, *c, param);
      if (!msg.empty()) return msg;
      if (p["what"].get<std::string>() == "mlp_out" && c->attn_only())
        return *param = "what", "what mlp_out: the model has no MLPs";
      return "";
    };
    return s;
  }();
  return spec;
}

PatchRunOutcome run_patch(RunSession& session, const Model& m, nlohmann::json params) {
  std::string param;
  std::string e = complete_params(patch_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  TaskPairs task = make_param_task(m, params);
  PatchOptions po;
  po.what = params["what"].get<std::string>();
  po.per_position = params["per_position"].get<bool>() && po.what == "z";
  PatchRunOutcome out;
  out.params = params;
  out.counts = task_counts(task);
  nlohmann::json stored = stored_params(patch_spec(), params);
  stored.update(out.counts);
  session.begin(m, "patch", stored);
  out.run_id = session.run_id();
  out.cancelled = !session.conclude([&](std::string&) -> std::optional<RunResults> {
    out.run = patch_run(m, task, po, session.progress_fn(), session.cancel_flag());
    if (out.run.cancelled) return std::nullopt;
    return out.run.results;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
