// Fuzz target: a custom circuit task file; the first byte picks CSV (even) or JSONL (odd). Text
// fields are tokenized with the bundled default model's tokenizer (vocabulary 1024).
#include <ATen/ATen.h>

#include "core/analysis/circuits/circuit_task.h"
#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(task_file) {
  using namespace ms;
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = load_tokenizer_json(fuzz::source_path("resources/models/default/tokenizer.json"));
    if (!t) std::abort();
    return std::move(t.value());
  }();
  if (size == 0) return;
  TaskOptions o;
  o.name = "custom";
  o.file = fuzz::write_file(data[0] % 2 ? "task.jsonl" : "task.csv",
                            {reinterpret_cast<const char*>(data + 1), size - 1});
  fuzz::accept(make_task(o, tok.get(), tok->vocab_size()), "make_task custom");
}
