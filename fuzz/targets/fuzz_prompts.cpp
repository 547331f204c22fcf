// Fuzz target: a prompt file; the first byte picks .txt (even) or .jsonl (odd), the rest is the file.
#include "core/io/prompts.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(prompts) {
  using namespace ms;
  if (size == 0) return;
  const std::string name = data[0] % 2 ? "prompts.jsonl" : "prompts.txt";
  const std::string path = fuzz::write_file(name, {reinterpret_cast<const char*>(data + 1), size - 1});
  fuzz::accept(read_prompts(path), "read_prompts");
}
