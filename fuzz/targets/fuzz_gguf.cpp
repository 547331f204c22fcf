// Fuzz target: a GGUF file (header, metadata key/values, tensor infos), then what the loader reads
// from it: the model config, the embedded vocabulary and the tokenizer built from it.
#include <ATen/ATen.h>

#include "core/io/gguf.h"
#include "core/model/model_config.h"
#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(gguf) {
  using namespace ms;
  const std::string path = fuzz::write_file("model.gguf", {reinterpret_cast<const char*>(data), size});
  auto file = GgufFile::open(path);
  if (!fuzz::accept(file, "GgufFile::open")) return;
  const GgufFile& g = *file.value();
  fuzz::accept(config_from_gguf(g), "config_from_gguf");
  for (const std::string& name : g.names()) {
    const TensorView* v = g.find(name);
    if (!v || !dtype_is_float(v->dtype) || v->nbytes > (1 << 20)) continue;
    fuzz::expect_input_errors_only([&] { (void)to_tensor(*v, at::kFloat); }, "to_tensor");
  }
  fuzz::expect_input_errors_only([&] {
    GgufVocab vocab = g.vocab();
    auto tok = tokenizer_from_gguf_vocab(vocab);
    if (!fuzz::accept(tok, "tokenizer_from_gguf_vocab")) return;
    const auto ids = tok.value()->encode("Hello world, \xe2\x96\x81 once upon a time 123", true, true);
    (void)tok.value()->decode(ids);
  }, "GgufFile::vocab");
}
