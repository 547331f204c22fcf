// `mechscope zoo construct NAME --out DIR`: writes a model whose weights are set by hand (sink,
// massive, copy) in the Hugging Face layout, with a zoo.json that says which heads do what.
#include <iostream>

#include "app/commands/cli.h"
#include "core/zoo/zoo_construct.h"

namespace ms::app {

void register_zoo_construct(CLI::App& zoo, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string name, out;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  std::string names;
  for (const std::string& n : constructed_model_names()) names += (names.empty() ? "" : ", ") + n;
  CLI::App* cmd = zoo.add_subcommand(
      "construct", "Write a model with hand-set weights and known mechanisms (" + names + ")");
  cmd->add_option("name", o->name, "which model: " + names)->required();
  cmd->add_option("--out,-o", o->out, "output folder")->required();
  cmd->add_flag("--force", o->force, "replace an existing folder");
  cmds.emplace_back(cmd, [o]() {
    Result<ConstructedModel> m = build_constructed_model(o->name);
    if (!m) throw InputError(m.error().message, m.error().code);
    Status st = save_constructed_model(*m, o->out, o->force);
    if (!st) throw InputError(st.error().message, st.error().code);
    const ModelConfig& c = m->config;
    std::cout << "wrote constructed model '" << o->name << "' to " << o->out
              << " (config.json, model.safetensors, zoo.json)\n"
              << "  " << c.model_type << ", " << c.n_layers << " layers x " << c.n_heads << " heads, d_model "
              << c.d_model << (c.attn_only() ? ", attention only" : "") << ", vocabulary " << c.d_vocab
              << ", n_ctx " << c.n_ctx << "\n";
    for (const char* key : {"sink_heads", "hidden_sink", "copy_heads", "previous_token_heads", "massive"}) {
      if (!m->zoo.contains(key)) continue;
      const nlohmann::json& v = m->zoo[key];
      if (v.is_null() || (v.is_array() && v.empty())) continue;
      std::cout << "  " << key << ": " << v.dump() << "\n";
    }
    return 0;
  });
}

}  // namespace ms::app
