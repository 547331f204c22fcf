// `mechscope zoo`: models made by the project. `zoo random` writes a random-weight model in the
// Hugging Face layout; `zoo train` and `zoo construct` live in app/commands/cmd_zoo_train.cpp and
// app/cmd_zoo_construct.cpp.
#include <iostream>

#include "app/commands/cli.h"
#include "core/model/arch/arch_spec.h"
#include "core/zoo/zoo_random.h"

namespace ms::app {

void register_zoo(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  CLI::App* zoo = app.add_subcommand("zoo", "Models made by mechscope");
  zoo->require_subcommand(1);
  struct Opts {
    RandomModelSpec spec;
    std::string out;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* rnd = zoo->add_subcommand("random", "Write a random-weight model (config.json + model.safetensors)");
  rnd->add_option("--arch", o->spec.arch, arch_names(" or "))->capture_default_str();
  rnd->add_option("--n-layers", o->spec.n_layers)->capture_default_str();
  rnd->add_option("--d-model", o->spec.d_model)->capture_default_str();
  rnd->add_option("--n-heads", o->spec.n_heads)->capture_default_str();
  rnd->add_option("--n-kv-heads", o->spec.n_kv_heads, "0: as many as query heads")->capture_default_str();
  rnd->add_option("--d-mlp", o->spec.d_mlp, "0: the architecture's usual size")->capture_default_str();
  rnd->add_option("--d-vocab", o->spec.d_vocab)->capture_default_str();
  rnd->add_option("--n-ctx", o->spec.n_ctx)->capture_default_str();
  rnd->add_option("--seed", o->spec.seed)->capture_default_str();
  rnd->add_option("--init-std", o->spec.init_std)->capture_default_str();
  rnd->add_option("--d-head", o->spec.d_head, "0: d_model / n_heads (families with a head_dim field)")->capture_default_str();
  rnd->add_option("--dtype", o->spec.dtype, "stored dtype: f32 or bf16")->capture_default_str();
  rnd->add_option("--out,-o", o->out, "output folder")->required();
  rnd->add_flag("--force", o->force, "replace an existing folder");
  cmds.emplace_back(rnd, [o]() {
    Status st = write_random_model(o->spec, o->out, o->force);
    if (!st) throw InputError(st.error().message, st.error().code);
    std::cout << "wrote " << o->spec.arch << " random model to " << o->out << "\n";
    return 0;
  });
  register_zoo_train(*zoo, cmds);
  register_zoo_construct(*zoo, cmds);
}

}  // namespace ms::app
