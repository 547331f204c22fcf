// `mechscope sae info|encode|splice`: describe an SAE (SAELens folder, Gemma Scope params.npz, per-layer transcoder folder),
// write its feature activations at every position, and splice it into a model with its metrics.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "core/features/sae_load.h"
#include "core/features/sae_metrics.h"
#include "core/features/sae_splice.h"
#include "core/io/npy.h"
#include "hooks/activation_cache.h"
#include "runs/run_inputs.h"

namespace ms::app {
namespace {

struct SaeOptions {
  std::string sae;
  std::string hook;
  double norm_scaling_factor = 0;
  int layer = -1;
};

void add_sae_options(CLI::App& cmd, SaeOptions& o) {
  cmd.add_option("--sae", o.sae, "SAELens folder (cfg.json + sae_weights.safetensors), Gemma Scope params.npz, or a "
                 "per-layer transcoder folder (layer_{i}.safetensors + config.yaml) or one of its files")->required();
  cmd.add_option("--layer", o.layer, "for a per-layer transcoder folder: the layer to load")->check(CLI::NonNegativeNumber);
  cmd.add_option("--hook", o.hook, "hook point to use instead of the one the SAE names (required for params.npz)");
  cmd.add_option("--norm-scaling-factor", o.norm_scaling_factor,
                 "for normalize_activations = expected_average_only_in: the factor to fold (default: activation_scaler.json)");
}

std::shared_ptr<Sae> open_sae(const SaeOptions& o) {
  SaeLoadOptions lo;
  lo.hook_name = o.hook;
  lo.norm_scaling_factor = o.norm_scaling_factor;
  lo.layer = o.layer;
  auto r = load_sae(o.sae, lo);
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}

void check_fits(const Sae& sae, const Model& m) {
  Status st = check_sae_fits(sae, m);
  if (!st) throw InputError(st.error().message, st.error().code);
}

const char* norm_name(SaeRuntimeNorm n) {
  switch (n) {
    case SaeRuntimeNorm::kNone: return "none";
    case SaeRuntimeNorm::kConstantNormRescale: return "constant_norm_rescale";
    case SaeRuntimeNorm::kLayerNorm: return "layer_norm";
  }
  return "?";
}

nlohmann::json info_json(const Sae& s) {
  const SaeConfig& c = s.cfg;
  nlohmann::json j{{"source", c.source}, {"format", c.format}, {"architecture", sae_arch_name(c.arch)},
                   {"hook_name", c.hook_name}, {"d_in", c.d_in}, {"d_sae", c.d_sae},
                   {"apply_b_dec_to_input", c.apply_b_dec_to_input},
                   {"normalize_activations", c.normalize_activations},
                   {"runtime_norm", norm_name(c.runtime_norm)},
                   {"reshape_activations", c.reshape_hook_z ? "hook_z" : "none"},
                   {"prepend_bos", c.prepend_bos}};
  if (c.folded_norm_scaling_factor > 0) j["folded_norm_scaling_factor"] = c.folded_norm_scaling_factor;
  if (c.hook_head_index >= 0) j["hook_head_index"] = c.hook_head_index;
  if (c.arch == SaeArch::kTopK) j["k"] = c.k;
  if (sae_is_transcoder(c.arch)) {
    j["d_out"] = c.d_out;
    j["hook_name_out"] = c.hook_name_out;
    j["has_skip"] = s.w.W_skip.defined();  // a JumpReLU transcoder may carry one too (circuit-tracer)
  }
  if (!c.model_name.empty()) j["model_name"] = c.model_name;
  j["has_sparsity"] = s.w.log_sparsity.defined();
  return j;
}

void write_or_throw(const std::string& path, const at::Tensor& t) {
  Status st = write_npy(path, t);
  if (!st) throw InputError(st.error().message, st.error().code);
}

}  // namespace

void register_sae_train(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds);  // cmd_sae_train.cpp
void register_sae_circuit(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds);  // cmd_sae_circuit.cpp

void register_sae(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  CLI::App* sae = app.add_subcommand("sae", "Sparse autoencoders and transcoders (SAELens folders, Gemma Scope params.npz)");
  sae->require_subcommand(1);
  register_sae_train(*sae, cmds);

  {
    struct Opts : SaeOptions {
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = sae->add_subcommand("info", "Describe an SAE: architecture, hook, widths, normalisation");
    add_sae_options(*cmd, *o);
    cmd->add_flag("--json", o->json, "print as JSON");
    cmds.emplace_back(cmd, [o]() {
      std::shared_ptr<Sae> s = open_sae(*o);
      nlohmann::json j = info_json(*s);
      if (o->json) {
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return 0;
      }
      for (auto it = j.begin(); it != j.end(); ++it) {
        std::cout << it.key() << ": " << (it->is_string() ? it->get<std::string>() : it->dump()) << "\n";
      }
      return 0;
    });
  }

  {
    struct Opts : ModelOptions, SaeOptions {
      std::string text, tokens, dump_acts, dump_recons;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = sae->add_subcommand("encode", "Feature activations of every position, as float32 [pos, d_sae] .npy");
    add_model_options(*cmd, *o);
    add_sae_options(*cmd, *o);
    cmd->add_option("--text,-t", o->text, "input text");
    cmd->add_option("--tokens", o->tokens, "input token ids, comma separated");
    cmd->add_option("--dump-acts", o->dump_acts, "write the feature activations [pos, d_sae] to this .npy")->required();
    cmd->add_option("--dump-recons", o->dump_recons, "write the reconstructions [pos, d_out] to this .npy");
    cmds.emplace_back(cmd, [o]() {
      if (o->text.empty() && o->tokens.empty()) fail_usage("sae encode needs --text or --tokens");
      std::shared_ptr<Sae> s = open_sae(*o);
      std::unique_ptr<Model> m = load_model(*o);
      check_fits(*s, *m);
      s->to_device(m->device());
      std::vector<int32_t> ids = input_ids(*m, o->text, o->tokens);
      c10::InferenceMode guard;
      HookRegistry reg;
      ActivationCache cache;
      reg.add_forward(s->cfg.hook_name, cache_hook(cache));
      ForwardOptions fo;
      fo.hooks = &reg;
      m->forward(m->tokens_tensor(ids), fo);
      at::Tensor x = s->to_input(cache.at(s->cfg.hook_name)[0]);  // (pos, d_in)
      SaePass p = s->run(x);
      p.acts_post = p.acts_post.cpu();
      p.out = p.out.cpu();
      write_or_throw(o->dump_acts, p.acts_post);
      if (!o->dump_recons.empty()) write_or_throw(o->dump_recons, p.out);
      at::Tensor l0 = (p.acts_post > 0).sum(-1);  // (pos)
      if (o->json) {
        nlohmann::json j{{"ids", ids}, {"hook_name", s->cfg.hook_name}, {"d_sae", s->cfg.d_sae},
                         {"acts", o->dump_acts}, {"l0", nlohmann::json::array()}};
        for (int64_t i = 0; i < l0.size(0); ++i) j["l0"].push_back(l0[i].item<int64_t>());
        if (!o->dump_recons.empty()) j["recons"] = o->dump_recons;
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return 0;
      }
      std::printf("%zu positions at %s, %lld features; mean L0 %.2f\n", ids.size(), s->cfg.hook_name.c_str(),
                  static_cast<long long>(s->cfg.d_sae), l0.to(at::kDouble).mean().item<double>());
      std::printf("wrote feature activations [%zu, %lld] to %s\n", ids.size(), static_cast<long long>(s->cfg.d_sae),
                  o->dump_acts.c_str());
      if (!o->dump_recons.empty()) std::printf("wrote reconstructions to %s\n", o->dump_recons.c_str());
      return 0;
    });
  }

  {
    struct Opts : AnalysisOptions, SaeOptions {
      bool no_error = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = sae->add_subcommand("splice", "Splice an SAE into the forward pass; L0, explained variance, CE loss recovered");
    add_model_options(*cmd, *o);
    add_sae_options(*cmd, *o);
    add_prompt_inputs(*cmd, *o, "one prompt as text");
    cmd->add_flag("--no-error", o->no_error, "drop the error term: the reconstruction replaces the activation");
    cmds.emplace_back(cmd, [o]() {
      std::vector<PromptRecord> records = read_prompt_inputs(*o, true);
      std::shared_ptr<Sae> s = open_sae(*o);
      std::unique_ptr<Model> m = load_model(*o);
      check_fits(*s, *m);
      s->to_device(m->device());
      std::vector<std::vector<int32_t>> prompts;
      for (const PromptRecord& r : records) prompts.push_back(prompt_tokens(*m, r));
      Result<SaeMetrics> r = sae_metrics(*m, s, prompts);
      if (!r) throw InputError(r.error().message, r.error().code);
      const SaeMetrics& mt = *r;
      // How far the spliced run's logits move from the clean run's (the first prompt).
      c10::InferenceMode guard;
      at::Tensor tokens = m->tokens_tensor(prompts[0]);
      at::Tensor clean = m->forward(tokens);
      HookRegistry reg;
      SaeSplice splice(reg, s, SpliceOptions{!o->no_error});
      ForwardOptions fo;
      fo.hooks = &reg;
      at::Tensor spliced = m->forward(tokens, fo);
      const double max_diff = (spliced - clean).abs().max().item<double>();
      const double scale = clean.abs().max().item<double>();
      if (o->json) {
        nlohmann::json j{{"hook_name", s->cfg.hook_name}, {"error_term", !o->no_error},
                         {"n_prompts", mt.n_prompts}, {"n_tokens", mt.n_tokens}, {"l0", mt.l0},
                         {"explained_variance", mt.explained_variance}, {"mse", mt.mse},
                         {"ce_clean", mt.ce_clean}, {"ce_spliced", mt.ce_spliced},
                         {"ce_zero_ablated", mt.ce_zero_ablated}, {"ce_loss_recovered", mt.ce_loss_recovered},
                         {"dead_features", mt.dead_features}, {"max_logit_diff", max_diff},
                         {"logit_scale", scale}, {"hook_names", splice.hook_names()}};
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return 0;
      }
      std::printf("%s at %s: %lld prompts, %lld positions\n", sae_arch_name(s->cfg.arch), s->cfg.hook_name.c_str(),
                  static_cast<long long>(mt.n_prompts), static_cast<long long>(mt.n_tokens));
      std::printf("  L0                  %10.3f\n", mt.l0);
      std::printf("  explained variance  %10.4f\n", mt.explained_variance);
      std::printf("  MSE                 %10.4g\n", mt.mse);
      std::printf("  CE clean            %10.4f nats\n", mt.ce_clean);
      std::printf("  CE spliced          %10.4f nats (reconstruction, no error term)\n", mt.ce_spliced);
      std::printf("  CE zero-ablated     %10.4f nats\n", mt.ce_zero_ablated);
      std::printf("  CE loss recovered   %10.4f\n", mt.ce_loss_recovered);
      std::printf("  dead features       %10lld of %lld\n", static_cast<long long>(mt.dead_features),
                  static_cast<long long>(s->cfg.d_sae));
      std::printf("spliced %s the error term: max |logit change| %.3g (logits up to %.3g)\n",
                  o->no_error ? "without" : "with", max_diff, scale);
      return 0;
    });
  }
  register_sae_features(*sae, cmds);
  register_sae_heads(*sae, cmds);
  register_sae_circuit(*sae, cmds);
}

}  // namespace ms::app
