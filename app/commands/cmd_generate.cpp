// `mechscope generate`: decode new tokens with the KV cache, greedy or sampled.
#include <c10/core/InferenceMode.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"

namespace ms::app {

void register_generate(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts : ModelOptions {
    std::string text, tokens;
    int64_t max_new = 32;
    bool greedy = false;
    double temperature = 1.0;
    int64_t top_k = 0;
    uint64_t seed = 0;
    bool ignore_eos = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with the KV cache");
  add_model_options(*cmd, *o);
  cmd->add_option("--text,-t", o->text, "prompt text");
  cmd->add_option("--tokens", o->tokens, "prompt token ids, comma separated");
  cmd->add_option("--max-new", o->max_new, "tokens to generate")->capture_default_str();
  cmd->add_flag("--greedy", o->greedy, "always take the most likely token");
  cmd->add_option("--temperature", o->temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "sample from the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
  cmd->add_flag("--ignore-eos", o->ignore_eos, "keep going after the end-of-sequence token");
  cmds.emplace_back(cmd, [o]() {
    if (o->text.empty() && o->tokens.empty()) fail_usage("generate needs --text or --tokens");
    if (o->max_new < 0) fail_usage("--max-new must not be negative");
    std::unique_ptr<Model> m = load_model(*o);
    std::vector<int32_t> prompt = input_ids(*m, o->text, o->tokens);
    c10::InferenceMode guard;
    GenerateOptions g;
    g.max_new = o->max_new;
    g.greedy = o->greedy;
    g.temperature = o->temperature;
    g.top_k = o->top_k;
    g.seed = o->seed;
    g.stop_at_eos = !o->ignore_eos;
    const Tokenizer* tok = m->tokenizer();
    // Stream text as it comes: decode the whole continuation and print what is new.
    std::vector<int32_t> so_far;
    std::string printed;
    if (!o->json) {
      std::cout << (tok ? tok->decode(prompt, true) : std::string()) << std::flush;
      g.on_token = [&](int32_t id) {
        so_far.push_back(id);
        if (tok) {
          std::vector<int32_t> all = prompt;
          all.insert(all.end(), so_far.begin(), so_far.end());
          std::string text = tok->decode(all, true);
          std::string head = tok->decode(prompt, true);
          std::string fresh = text.size() >= head.size() ? text.substr(head.size()) : text;
          if (fresh.size() > printed.size() && fresh.compare(0, printed.size(), printed) == 0) {
            std::cout << fresh.substr(printed.size()) << std::flush;
            printed = fresh;
          }
        } else {
          std::cout << (so_far.size() > 1 ? "," : "") << id << std::flush;
        }
        return true;
      };
    }
    std::vector<int32_t> out = m->generate(prompt, g);
    if (o->json) {
      nlohmann::json j;
      j["prompt_ids"] = prompt;
      j["new_ids"] = out;
      if (tok) j["text"] = tok->decode(out, true);
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << "\n";
    }
    return 0;
  });
}

}  // namespace ms::app
