// `mechscope forward`: one forward pass; top-k next-token predictions, logits as .npy, and the
// activations of every hook point matching --cache written as .npy files.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "core/io/npy.h"
#include "hooks/activation_cache.h"

namespace fs = std::filesystem;

namespace ms::app {

void register_forward(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts : ModelOptions {
    std::string text, tokens, dump_logits, cache_glob, dump_dir;
    int top_k = 5;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("forward", "Run a forward pass; print predictions, dump logits and activations");
  add_model_options(*cmd, *o);
  cmd->add_option("--text,-t", o->text, "input text");
  cmd->add_option("--tokens", o->tokens, "input token ids, comma separated");
  cmd->add_option("--dump-logits", o->dump_logits, "write float32 logits [pos, vocab] to this .npy");
  cmd->add_option("--cache", o->cache_glob, "cache hook points matching this name or glob");
  cmd->add_option("--dump-dir", o->dump_dir, "folder for the cached activations (one .npy per hook)");
  cmd->add_option("--top-k", o->top_k, "next-token predictions to print")->capture_default_str();
  cmds.emplace_back(cmd, [o]() {
    if (o->text.empty() && o->tokens.empty()) fail_usage("forward needs --text or --tokens");
    if (!o->cache_glob.empty() && o->dump_dir.empty()) fail_usage("--cache needs --dump-dir");
    if (o->top_k < 0) fail_usage("--top-k must not be negative");
    std::unique_ptr<Model> m = load_model(*o);
    std::vector<int32_t> ids = input_ids(*m, o->text, o->tokens);
    c10::InferenceMode guard;
    HookRegistry hooks;
    ActivationCache cache;
    if (!o->cache_glob.empty()) hooks.add_forward(o->cache_glob, cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &hooks;
    at::Tensor logits = m->forward(m->tokens_tensor(ids), fo)[0].to(at::kCPU);  // (pos, vocab)
    if (!o->cache_glob.empty() && cache.size() == 0)
      fail_usage("--cache '" + o->cache_glob + "' matches no hook point (see `mechscope info`)");
    if (!o->dump_dir.empty()) {
      std::error_code ec;
      fs::create_directories(o->dump_dir, ec);
      if (ec) fail_input(o->dump_dir + ": cannot create the folder: " + ec.message());
      for (const auto& [name, t] : cache.items()) {
        Status st = write_npy((fs::path(o->dump_dir) / (name + ".npy")).string(), t);
        if (!st) throw InputError(st.error().message, st.error().code);
      }
    }
    if (!o->dump_logits.empty()) {
      Status st = write_npy(o->dump_logits, logits);
      if (!st) throw InputError(st.error().message, st.error().code);
    }
    at::Tensor last = logits[-1];
    at::Tensor probs = at::softmax(last.to(at::kDouble), 0);
    int64_t k = std::min<int64_t>(o->top_k, last.size(0));
    auto top = last.topk(k);
    at::Tensor top_v = std::get<0>(top), top_i = std::get<1>(top);
    if (o->json) {
      nlohmann::json j;
      j["ids"] = ids;
      j["tokens"] = nlohmann::json::array();
      for (int32_t id : ids) j["tokens"].push_back(token_label(*m, id));
      j["top_k"] = nlohmann::json::array();
      for (int64_t i = 0; i < k; ++i) {
        int64_t id = top_i[i].item<int64_t>();
        j["top_k"].push_back({{"id", id},
                              {"token", token_label(*m, static_cast<int32_t>(id))},
                              {"logit", top_v[i].item<double>()},
                              {"prob", probs[id].item<double>()}});
      }
      if (!o->dump_dir.empty()) j["cached"] = cache.names();
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::cout << ids.size() << " tokens:";
    for (int32_t id : ids) std::cout << " " << id;
    std::cout << "\n";
    if (k > 0) std::cout << "next-token predictions after the last position:\n";
    for (int64_t i = 0; i < k; ++i) {
      int64_t id = top_i[i].item<int64_t>();
      char line[64];
      std::snprintf(line, sizeof line, "  %6.2f%%  logit %8.4f  ", 100.0 * probs[id].item<double>(),
                    top_v[i].item<double>());
      std::cout << line << id << "  '" << token_label(*m, static_cast<int32_t>(id)) << "'\n";
    }
    if (!o->dump_dir.empty())
      std::cout << "wrote " << cache.size() << " activations to " << o->dump_dir << "\n";
    if (!o->dump_logits.empty()) std::cout << "wrote logits to " << o->dump_logits << "\n";
    return 0;
  });
}

}  // namespace ms::app
