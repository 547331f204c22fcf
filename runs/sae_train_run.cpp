// sae_train_spec and run_sae_train: SAE / transcoder training declared once and run the same way
// from the CLI and batch jobs.
#include "runs/sae_train_run.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "core/features/activation_store.h"
#include "core/features/sae_save.h"
#include "runs/run_inputs.h"

namespace fs = std::filesystem;

namespace ms {

const std::vector<std::string> kSaeCurveColumns = {"step", "mse", "explained_variance", "l0", "sparsity_loss",
                                                   "aux_loss", "dead_features", "lr", "reserved"};
const std::vector<std::string> kSaeMetricColumns = {"l0", "explained_variance", "mse", "ce_clean", "ce_spliced",
                                                    "ce_zero_ablated", "ce_loss_recovered", "dead_features",
                                                    "n_tokens", "norm_scaling_factor"};

namespace {

ParamDecl decl(std::string name, ParamType t, nlohmann::json def, std::string help, double lo = -1e300,
               double hi = 1e300, unsigned where = kEverywhere) {
  ParamDecl d(std::move(name), t, std::move(def), false, std::move(help), where);
  d.lo = lo, d.hi = hi;
  return d;
}

SaeTrainOptions train_options(const nlohmann::json& p, int64_t d_in) {
  SaeTrainOptions o;
  Result<SaeArch> arch = parse_train_arch(p["arch"].get<std::string>());
  if (!arch) throw InputError(arch.error().message, arch.error().code);
  o.arch = *arch;
  o.d_sae = p["d_sae"].get<int64_t>() > 0 ? p["d_sae"].get<int64_t>() : p["expansion_factor"].get<int64_t>() * d_in;
  o.k = p["k"].get<int64_t>();
  o.steps = p["steps"].get<int64_t>();
  o.batch_size = p["batch_size"].get<int64_t>();
  o.lr = p["lr"].get<double>();
  o.lr_warmup_steps = p["lr_warmup_steps"].get<int64_t>();
  o.lr_decay_steps = p["lr_decay_steps"].get<int64_t>();
  o.l1_coefficient = p["l1_coefficient"].get<double>();
  o.l0_coefficient = p["l0_coefficient"].get<double>();
  o.sparsity_warmup_steps = p["sparsity_warmup_steps"].get<int64_t>();
  o.jumprelu_bandwidth = p["jumprelu_bandwidth"].get<double>();
  o.jumprelu_init_threshold = p["jumprelu_init_threshold"].get<double>();
  o.dead_feature_window = p["dead_feature_window"].get<int64_t>();
  o.aux_k_coefficient = p["aux_k_coefficient"].get<double>();
  o.normalize_activations = p["normalize"].get<bool>();
  o.seed = p["seed"].get<uint64_t>();
  o.log_every = p["log_every"].get<int64_t>();
  o.checkpoint_every = p["checkpoint_every"].get<int64_t>();
  o.resume = p.value("resume", false);
  o.hook_name = p["hook"].get<std::string>();
  o.hook_name_out = p["hook_out"].get<std::string>();
  return o;
}

}  // namespace

const AnalysisSpec& sae_train_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "sae-train";
    s.command = "sae train";
    s.summary = "train an SAE or transcoder on a hook point (SAELens 6 semantics; writes an SAELens folder)";
    s.uses_prompts = true;
    ParamDecl arch{"arch", ParamType::kChoice, "topk", false, "architecture to train"};
    arch.choices = {"standard", "topk", "jumprelu", "transcoder", "skip_transcoder", "jumprelu_transcoder"};
    s.params = {
        decl("hook", ParamType::kString, nullptr, "hook point the SAE reads (e.g. blocks.1.hook_resid_post)"),
        decl("hook_out", ParamType::kString, "", "transcoders: the hook point they write (e.g. blocks.1.hook_mlp_out)"),
        arch,
        decl("out", ParamType::kString, nullptr, "output folder (SAELens layout; checkpoints in OUT/checkpoints)"),
        decl("d_sae", ParamType::kInt, 0, "features (0: expansion_factor x d_in)", 0, 1 << 24),
        decl("expansion_factor", ParamType::kInt, 8, "d_sae = this x d_in when d_sae is 0", 1, 1024),
        decl("k", ParamType::kInt, 32, "topk: active features per position", 1, 1 << 20),
        decl("steps", ParamType::kInt, 2000, "training steps", 1, 1e12),
        decl("batch_size", ParamType::kInt, 4096, "positions per step", 1, 1 << 24),
        decl("lr", ParamType::kFloat, 3e-4, "Adam learning rate", 0, 1),
        decl("lr_warmup_steps", ParamType::kInt, 0, "linear learning-rate warm-up", 0, 1e12),
        decl("lr_decay_steps", ParamType::kInt, 0, "linear decay to 0 over the last this many steps", 0, 1e12),
        decl("l1_coefficient", ParamType::kFloat, 5.0, "standard / transcoder: L1 coefficient", 0, 1e6),
        decl("l0_coefficient", ParamType::kFloat, 1.0, "jumprelu: L0 coefficient", 0, 1e6),
        decl("sparsity_warmup_steps", ParamType::kInt, 0, "the L1 / L0 coefficient rises linearly over these steps", 0, 1e12),
        decl("jumprelu_bandwidth", ParamType::kFloat, 0.001, "jumprelu: the straight-through estimator's bandwidth", 0, 1e3),
        decl("jumprelu_init_threshold", ParamType::kFloat, 0.001, "jumprelu: initial threshold", 0, 1e3),
        decl("dead_feature_window", ParamType::kInt, 1000, "steps without firing after which a feature is dead", 1, 1e12),
        decl("aux_k_coefficient", ParamType::kFloat, 1.0, "topk: coefficient of the aux-k loss on dead features", 0, 1e6),
        decl("normalize", ParamType::kBool, true, "train on activations scaled to mean norm sqrt(d_in) (folded in at the end)"),
        decl("n_tokens", ParamType::kInt, 0, "positions to collect (0: every position of the training prompts)", 0, 1e15),
        decl("context_size", ParamType::kInt, 128, "tokens per prompt (longer prompts are cut)", 2, 1 << 24),
        decl("memory_mb", ParamType::kInt, 1024, "activations kept in memory up to this; beyond it, a temporary file", 1, 1 << 30),
        decl("eval_prompts", ParamType::kInt, 8, "prompts held out (the last ones) for the final metrics", 1, 1 << 20),
        decl("seed", ParamType::kInt, 0, "initialisation and shuffling seed", 0, 9e15),
        decl("log_every", ParamType::kInt, 50, "a training-curve point every this many steps", 1, 1e12),
        decl("checkpoint_every", ParamType::kInt, 0, "checkpoint every this many steps (0: at the end and on interrupt)", 0, 1e12),
        decl("resume", ParamType::kBool, false, "continue from OUT/checkpoints (the same parameters)", -1e300, 1e300,
             kOnCli | kInBatch | kInGui),
    };
    for (ParamDecl& d : s.params)
      if (d.name == "normalize") d.flag = "--no-normalize";
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      const std::string arch = p["arch"].get<std::string>();
      const bool transcoder = arch.find("transcoder") != std::string::npos;
      if (transcoder && p["hook_out"].get<std::string>().empty())
        return *param = "hook_out", "a " + arch + " needs hook_out, the point it writes";
      if (!transcoder && !p["hook_out"].get<std::string>().empty())
        return *param = "hook_out", "hook_out is for transcoders only (arch " + arch + ")";
      if (arch == "topk" && p["d_sae"].get<int64_t>() > 0 && p["k"].get<int64_t>() > p["d_sae"].get<int64_t>())
        return *param = "k", "k must not exceed d_sae";
      if (c && arch == "topk" && p["d_sae"].get<int64_t>() == 0 &&
          p["k"].get<int64_t>() > p["expansion_factor"].get<int64_t>() * c->d_model)
        return *param = "k", "k must not exceed d_sae";
      return "";
    };
    return s;
  }();
  return spec;
}

SaeTrainRunOutcome run_sae_train(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                 nlohmann::json params) {
  std::string param;
  std::string e = complete_params(sae_train_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  if (records.empty()) fail_usage("sae train needs prompts (--prompts FILE)");
  SaeTrainRunOutcome out;
  out.out = fs::absolute(params["out"].get<std::string>()).lexically_normal().string();
  params["out"] = out.out;
  out.params = params;

  // Held-out prompts for the metrics: the last eval_prompts, when at least as many remain to train on.
  const int64_t context = std::min<int64_t>(params["context_size"].get<int64_t>(), m.config().n_ctx);
  std::vector<std::vector<int32_t>> train_ids, eval_ids;
  const int64_t n = static_cast<int64_t>(records.size()), n_eval = params["eval_prompts"].get<int64_t>();
  const bool hold_out = n >= 2 * n_eval;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int32_t> ids = prompt_tokens(m, records[static_cast<size_t>(i)]);
    if (static_cast<int64_t>(ids.size()) > context) ids.resize(static_cast<size_t>(context));
    if (!hold_out || i < n - n_eval) train_ids.push_back(ids);
    if ((!hold_out && i < n_eval) || (hold_out && i >= n - n_eval)) {
      if (ids.size() >= 2) eval_ids.push_back(ids);
    }
  }
  if (eval_ids.empty()) fail_usage("sae train: no prompt of at least 2 tokens to measure the SAE on");
  out.n_train_prompts = static_cast<int64_t>(train_ids.size());
  out.n_eval_prompts = static_cast<int64_t>(eval_ids.size());

  nlohmann::json stored = stored_params(sae_train_spec(), params);
  session.begin(m, "sae-train", stored);
  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    ActivationStoreOptions so;
    so.hook_name = params["hook"].get<std::string>();
    so.hook_name_out = params["hook_out"].get<std::string>();
    so.context_size = context;
    so.n_tokens = params["n_tokens"].get<int64_t>();
    so.max_memory_bytes = params["memory_mb"].get<int64_t>() << 20;
    so.seed = params["seed"].get<uint64_t>();
    const int64_t steps = params["steps"].get<int64_t>();
    const int64_t total = out.n_train_prompts + steps;
    auto store = ActivationStore::collect(m, train_ids, so, [&](int64_t d, int64_t) { session.progress(d, total); },
                                          session.cancel_flag());
    if (!store) throw InputError(store.error().message, store.error().code);
    if (session.cancelled()) {
      reason = "cancelled while collecting activations";
      return std::nullopt;
    }
    out.n_train_tokens = (*store)->size();
    out.store_on_disk = (*store)->on_disk();
    SaeTrainOptions o = train_options(params, (*store)->d_in());
    o.model_name = m.source();
    o.checkpoint_dir = (fs::path(out.out) / "checkpoints").string();
    SaeTrainControl ctl;
    ctl.progress = [&](int64_t d, int64_t) { session.progress(out.n_train_prompts + d, total); };
    ctl.cancel = session.cancel_flag();
    Result<SaeTrainResult> tr = train_sae(**store, o, ctl);
    if (!tr) throw InputError(tr.error().message, tr.error().code);
    out.train = std::move(*tr);
    if (out.train.cancelled) {
      reason = "cancelled at step " + std::to_string(out.train.steps_done) + " of " + std::to_string(steps) +
               "; a checkpoint is in " + o.checkpoint_dir + " (rerun with --resume)";
      return std::nullopt;
    }
    out.train.sae->cfg.source = out.out;
    // hook_z rows are the heads concatenated (the store flattens every point to [pos, width]),
    // which SAELens writes as reshape_activations = hook_z.
    const std::string& hook = out.train.sae->cfg.hook_name;
    out.train.sae->cfg.reshape_hook_z = hook.size() >= 6 && hook.compare(hook.size() - 6, 6, "hook_z") == 0;
    out.train.sae->cfg.prepend_bos = true;
    nlohmann::json meta{{"context_size", context}, {"training_tokens", out.n_train_tokens},
                        {"training_steps", steps}, {"train_batch_size_tokens", o.batch_size},
                        {"seed", o.seed}, {"norm_scaling_factor", out.train.norm_scaling_factor},
                        {"model_path", m.source()}};
    Status st = save_sae(*out.train.sae, out.out, meta);
    if (!st) throw InputError(st.error().message, st.error().code);
    std::shared_ptr<const Sae> sae = out.train.sae;
    Result<SaeMetrics> mt = sae_metrics(m, sae, eval_ids);
    if (!mt) throw InputError(mt.error().message, mt.error().code);
    out.metrics = *mt;

    RunResults res;
    const auto& curve = out.train.curve;
    at::Tensor c = at::zeros({static_cast<int64_t>(curve.size()), 9}, at::kDouble);
    for (size_t i = 0; i < curve.size(); ++i) {
      const SaeTrainPoint& q = curve[i];
      const double row[9] = {static_cast<double>(q.step), q.mse, q.explained_variance, q.l0, q.sparsity_loss,
                             q.aux_loss, static_cast<double>(q.dead_features), q.lr, 0};
      for (int k = 0; k < 9; ++k) c[static_cast<int64_t>(i)][k] = row[k];
    }
    nlohmann::json cm{{"kind", "sae-training-curve"}, {"axes", {"point", "column"}}, {"columns", kSaeCurveColumns}};
    res.tensors.push_back({"training_curve", c, cm.dump()});
    const SaeMetrics& q = out.metrics;
    at::Tensor f = at::tensor(std::vector<double>{q.l0, q.explained_variance, q.mse, q.ce_clean, q.ce_spliced,
                                                  q.ce_zero_ablated, q.ce_loss_recovered,
                                                  static_cast<double>(q.dead_features), static_cast<double>(q.n_tokens),
                                                  out.train.norm_scaling_factor},
                              at::kDouble);
    nlohmann::json fm{{"kind", "sae-metrics"}, {"axes", {"metric"}}, {"columns", kSaeMetricColumns},
                      {"out", out.out}};
    res.tensors.push_back({"final_metrics", f, fm.dump()});
    return res;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
