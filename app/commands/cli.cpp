// Shared command-line helpers: model options, loading, token input and labels.
#include "app/commands/cli.h"

#include "runs/run_inputs.h"

#include <ATen/Parallel.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "core/model/context_warning.h"
#include "core/model/model.h"
#include "core/tokenizer/token_label.h"

namespace ms::app {

void add_model_options(CLI::App& cmd, ModelOptions& o, bool model_required) {
  auto* opt = cmd.add_option("--model,-m", o.model, "Hugging Face model folder or .gguf file");
  if (model_required) opt->required();
  cmd.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "f32, f16 or bf16")->capture_default_str();
  cmd.add_option("--threads", o.threads, "CPU threads (0: all cores)")->capture_default_str();
  cmd.add_flag("--json", o.json, "print results as JSON");
}

std::unique_ptr<Model> load_model(const ModelOptions& o) {
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (threads > 0) at::set_num_threads(threads);
  LoadOptions lo;
  lo.device = o.device;
  lo.dtype = o.dtype;
  Result<std::unique_ptr<Model>> m = Model::load(o.model, lo);
  if (!m) throw InputError(m.error().message, m.error().code);
  return std::move(*m);
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) fail_usage("--tokens '" + s + "': empty item");
    item = item.substr(b, e - b + 1);
    try {
      size_t used = 0;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      fail_usage("--tokens '" + s + "': '" + item + "' is not a token id");
    }
  }
  if (ids.empty()) fail_usage("--tokens is empty");
  return ids;
}

std::vector<int32_t> input_ids(const Model& m, const std::string& text, const std::string& tokens,
                               bool add_special, bool allow_empty) {
  if (!tokens.empty() && !text.empty()) fail_usage("give --text or --tokens, not both");
  std::vector<int32_t> ids;
  if (!tokens.empty()) {
    ids = parse_ids(tokens);
  } else {
    if (!m.tokenizer())
      fail_usage(m.source() + " has no tokenizer files (tokenizer.json, vocab.json + merges.txt, "
                 "tokenizer.model); give token ids with --tokens 1,2,3");
    ids = m.tokenizer()->encode(text, add_special);
    if (ids.empty() && !allow_empty) fail_usage("--text encodes to no tokens");
  }
  std::string warn = context_warning(m.config(), static_cast<int64_t>(ids.size()));
  if (!warn.empty()) std::cerr << "mechscope: warning: " << warn << "\n";
  return ids;
}

namespace {
std::vector<std::string>& command_line_store() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

const std::vector<std::string>& command_line() { return command_line_store(); }

void set_command_line(int argc, char** argv) {
  command_line_store().assign(argv, argv + argc);
  if (!command_line_store().empty()) command_line_store()[0] = "mechscope";
}

// The one token label lives in core (core/tokenizer/token_label.h); this name keeps the commands' calls.
std::string token_label(const Model& m, int32_t id) { return ms::token_label(m, id); }

}  // namespace ms::app
