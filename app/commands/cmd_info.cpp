// `mechscope info`: architecture, sizes, parameter count, dtype and the hook point names.
#include <ATen/ATen.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"

namespace ms::app {

void register_info(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto opts = std::make_shared<ModelOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Show a model's architecture, sizes and hook points");
  add_model_options(*cmd, *opts);
  cmds.emplace_back(cmd, [opts]() {
    std::unique_ptr<Model> m = load_model(*opts);
    const ModelConfig& c = m->config();
    const Model::Hooks& ids = m->hook_ids();
    (void)ids;
    const auto& names = m->hook_points().names();
    std::string tok = m->tokenizer() ? m->tokenizer()->kind() : "none";
    std::string dtype = c10::toString(m->dtype());
    if (opts->json) {
      nlohmann::json j;
      j["path"] = m->source();
      j["weights"] = m->weights_description();
      j["config"] = nlohmann::json::parse(c.to_json());
      j["parameters"] = m->parameter_count();
      j["dtype"] = dtype;
      j["device"] = m->device().str();
      j["tokenizer"] = tok;
      if (m->tokenizer()) j["tokenizer_vocab_size"] = m->tokenizer()->vocab_size();
      j["hook_points"] = names;
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::cout << "model:        " << m->source() << "\n"
              << "weights:      " << m->weights_description() << "\n"
              << "architecture: " << c.model_type << " (" << norm_name(c.norm) << " norm, "
              << act_name(c.act) << (c.gated_mlp ? " gated" : "") << " MLP, "
              << pos_name(c.pos) << " positions"
              << (c.parallel_attn_mlp ? ", parallel attention+MLP" : "") << ")\n"
              << "layers:       " << c.n_layers << "\n"
              << "d_model:      " << c.d_model << "\n"
              << "heads:        " << c.n_heads << " query, " << c.n_kv_heads << " key/value, d_head "
              << c.d_head << "\n"
              << "d_mlp:        " << c.d_mlp << "\n"
              << "vocab:        " << c.d_vocab << "\n"
              << "context:      " << c.n_ctx << "\n";
    if (c.pos == PosKind::kRotary)
      std::cout << "rotary:       " << c.rotary_dim << " dims, theta " << c.rope_theta
                << (c.rope_scaling_type.empty() ? "" : ", scaling " + c.rope_scaling_type) << "\n";
    if (c.has_local_rope()) std::cout << "local rotary: theta " << c.rope_local_theta << " (local layers)\n";
    if (c.sliding_window > 0) {
      std::cout << "window:       " << c.sliding_window;
      if (!c.layer_local.empty()) {
        std::cout << " on local layers";
        for (int64_t l = 0; l < c.n_layers; ++l)
          if (c.window(l) > 0) std::cout << " " << l;
      }
      std::cout << "\n";
    }
    std::vector<std::string> notes;
    if (!c.pre_norm) notes.push_back("no pre-norms");
    if (c.post_norm) notes.push_back("post-norms (ln1_post, ln2_post)");
    if (c.qk_norm != QkNorm::kNone) notes.push_back(c.qk_norm == QkNorm::kPerHead ? "q/k norm per head" : "q/k norm over all heads");
    if (c.embed_scaled) notes.push_back("embeddings x sqrt(d_model)");
    if (c.query_pre_attn_scalar > 0) notes.push_back("scores x " + std::to_string(c.attn_scale()));
    if (c.attn_softcap > 0) notes.push_back("attention soft-cap " + std::to_string(c.attn_softcap));
    if (c.final_softcap > 0) notes.push_back("final soft-cap " + std::to_string(c.final_softcap));
    if (!notes.empty()) {
      std::cout << "structure:    ";
      for (size_t i = 0; i < notes.size(); ++i) std::cout << (i ? "; " : "") << notes[i];
      std::cout << "\n";
    }
    std::cout << "parameters:   " << m->parameter_count() << "\n"
              << "dtype:        " << dtype << " on " << m->device().str() << "\n"
              << "tokenizer:    " << tok << "\n"
              << "hook points:  " << names.size() << "\n";
    for (const auto& n : names) std::cout << "  " << n << "\n";
    return 0;
  });
}

}  // namespace ms::app
