// Training throughput (issue 3): tokens/s of the zoo's training loop (forward, backward, AdamW)
// for each trained recipe at its full size, and the full recipe's training time extrapolated
// from it. Usage: bench_train [steps per recipe, default 10] [threads, default 2].
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_common.h"
#include "core/tokenizer/bpe_train.h"
#include "core/zoo/zoo_text.h"
#include "core/zoo/zoo_train.h"
#include "core/zoo/zoo_trained.h"

int main(int argc, char** argv) {
  ms::bench::print_machine("bench_train");
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 10;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::printf("training throughput, %d threads, %lld timed steps per recipe (after 2 warm-up steps)\n",
              threads, static_cast<long long>(steps));
  std::printf("%-10s %10s %8s %12s %12s %14s\n", "recipe", "params", "batch", "tokens/step", "tokens/s",
              "full run (s)");
  for (const std::string& name : ms::zoo_trained_names()) {
    ms::Result<ms::ZooRecipe> rr = ms::zoo_recipe(name, 1);
    if (!rr) return 1;
    ms::ZooRecipe r = *rr;
    ms::ModelConfig cfg = r.config;
    ms::TaskRng rng(7);
    ms::BatchFn next;
    std::unique_ptr<ms::Tokenizer> tok;
    auto text = std::make_shared<ms::TextGenerator>(3);
    if (name == "default") {
      // A small tokenizer is enough to feed the model; the timing is the model's.
      std::string corpus;
      while (corpus.size() < 200000) corpus += text->document() + "\n\n";
      ms::BpeTrainOptions bo;
      bo.vocab_size = static_cast<int32_t>(cfg.d_vocab);
      bo.min_frequency = 1;
      ms::Result<ms::BpeModel> bpe = ms::train_bpe(corpus, bo);
      if (!bpe) return 1;
      const std::string path = "/tmp/bench_train_tokenizer.json";
      FILE* f = std::fopen(path.c_str(), "wb");
      const std::string js = ms::bpe_tokenizer_json(*bpe, true);
      std::fwrite(js.data(), 1, js.size(), f);
      std::fclose(f);
      auto t = ms::load_tokenizer_json(path);
      if (!t) return 1;
      tok = std::move(*t);
      cfg.d_vocab = static_cast<int64_t>(bpe->vocab.size());
    }
    auto made = ms::Model::from_weights(cfg, ms::init_weights(cfg, 1));
    if (!made) return 1;
    ms::Model& model = **made;
    if (name == "induction") next = [&](int64_t) { return ms::repeat_batch(r.repeat, r.train.batch, rng); };
    else if (name == "retrieval") next = [&](int64_t) { return ms::needle_batch(r.needle, r.train.batch, rng); };
    else next = [&](int64_t) { return ms::corpus_batch(*tok, *text, r.train.batch, cfg.n_ctx); };
    ms::TrainConfig tc = r.train;
    tc.threads = threads;
    tc.steps = 2;
    (void)ms::train_model(model, tc, next);  // warm-up
    tc.steps = steps;
    ms::Result<ms::TrainOutcome> out = ms::train_model(model, tc, next);
    if (!out) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), out.error().message.c_str());
      return 1;
    }
    const int64_t per_step = out->tokens / std::max<int64_t>(1, out->steps_done);
    std::printf("%-10s %10lld %8lld %12lld %12.0f %14.0f\n", name.c_str(),
                static_cast<long long>(model.parameter_count()), static_cast<long long>(r.train.batch),
                static_cast<long long>(per_step), out->tokens_per_s,
                static_cast<double>(r.train.steps * per_step) / out->tokens_per_s);
  }
  return 0;
}
