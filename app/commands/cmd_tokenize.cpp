// `mechscope tokenize`: text to token ids and pieces with the model's tokenizer.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"

namespace ms::app {

void register_tokenize(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts : ModelOptions {
    std::string text;
    bool no_special = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Tokenize text with a model's tokenizer");
  add_model_options(*cmd, *o);
  cmd->add_option("--text,-t", o->text, "the text")->required();
  cmd->add_flag("--no-special", o->no_special, "do not add BOS/EOS");
  cmds.emplace_back(cmd, [o]() {
    std::unique_ptr<Model> m = load_model(*o);
    // An empty text is valid input: no tokens, or BOS alone when the tokenizer adds it.
    std::vector<int32_t> ids = input_ids(*m, o->text, "", !o->no_special, /*allow_empty=*/true);
    if (o->json) {
      nlohmann::json j;
      j["ids"] = ids;
      j["tokens"] = nlohmann::json::array();
      for (int32_t id : ids) j["tokens"].push_back(token_label(*m, id));
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
    std::cout << "\n";
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "|" : "") << token_label(*m, ids[i]);
    std::cout << "\n" << ids.size() << " tokens\n";
    return 0;
  });
}

}  // namespace ms::app
