// Recipes of the trained zoo and the end-to-end run: tokenizer, seeded data stream, training,
// mechanism measurements on fresh data, zoo.json, and the atomic save.
#include "core/zoo/zoo_trained.h"

#include <ATen/ATen.h>
#include <torch/csrc/api/include/torch/version.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "core/tokenizer/bpe_train.h"
#include "core/analysis/heads/head_detectors.h"
#include "core/model/model_save.h"
#include "core/zoo/zoo_measure.h"
#include "core/zoo/zoo_text.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

using json = nlohmann::json;

constexpr double kSinkEpsilon = 0.3;       // Gu et al.'s threshold on alpha_0
constexpr double kRetrievalThreshold = 0.1;  // Wu et al.'s threshold on the retrieval score

ModelConfig gpt2_config(int64_t n_layers, int64_t d_model, int64_t n_heads, int64_t d_mlp,
                        int64_t d_vocab, int64_t n_ctx) {
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layers = n_layers;
  c.d_model = d_model;
  c.n_heads = c.n_kv_heads = n_heads;
  c.d_head = d_model / n_heads;
  c.d_mlp = d_mlp;
  c.d_vocab = d_vocab;
  c.n_ctx = n_ctx;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_embeddings = true;
  c.bos_token_id = c.eos_token_id = 0;
  return c;
}

json matrix(const at::Tensor& t) {
  json rows = json::array();
  at::Tensor s = t.to(at::kDouble).contiguous();
  for (int64_t l = 0; l < s.size(0); ++l) {
    json row = json::array();
    for (int64_t h = 0; h < s.size(1); ++h) row.push_back(std::round(s[l][h].item<double>() * 1e4) / 1e4);
    rows.push_back(row);
  }
  return rows;
}

json best_head(const at::Tensor& scores, int64_t layer = -1) {
  at::Tensor s = layer >= 0 ? scores.narrow(0, layer, 1) : scores;
  std::vector<HeadRef> top = top_heads(s, -1e30, 1);
  HeadRef h = top.at(0);
  if (layer >= 0) h.layer = layer;
  return {{"head", h.name()}, {"score", std::round(scores[h.layer][h.head].item<double>() * 1e4) / 1e4}};
}

json head_names(const std::vector<HeadRef>& heads) {
  json out = json::array();
  for (const HeadRef& h : heads) out.push_back(h.name());
  return out;
}

at::Tensor checked(Result<at::Tensor> r) {
  if (!r) throw InputError(r.error().message, r.error().code);
  return *r;
}
template <class T>
T value_of(Result<T> r) {
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}

json train_json(const TrainConfig& t) {
  return {{"steps", t.steps}, {"batch", t.batch}, {"optimizer", "AdamW"}, {"lr", t.lr},
          {"schedule", "linear warm-up, cosine decay"}, {"warmup", t.warmup},
          {"min_lr_ratio", t.min_lr_ratio}, {"weight_decay", t.weight_decay},
          {"betas", {t.beta1, t.beta2}}, {"eps", t.eps}, {"grad_clip", t.clip},
          {"init_std", t.init_std},
          {"position_init", t.sinusoidal_positions ? "sinusoidal" : "normal"},
          {"loss", "next-token cross-entropy"}};
}

std::unique_ptr<Tokenizer> tokenizer_from_text(const std::string& text) {
  const fs::path tmp = fs::temp_directory_path() /
                       ("mechscope-tokenizer-" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    if (!f.flush()) fail_input(tmp.string() + ": write failed");
  }
  Result<std::unique_ptr<Tokenizer>> tok = load_tokenizer_json(tmp.string());
  std::error_code ec;
  fs::remove(tmp, ec);
  if (!tok) throw InputError("trained tokenizer does not load: " + tok.error().message);
  return std::move(*tok);
}

// The optimiser settings both ASCII task models (induction, retrieval) train with.
void set_task_training(TrainConfig& t) {
  t.steps = 6000;
  t.batch = 16;
  t.lr = 1.5e-3;
  t.warmup = 100;
  t.weight_decay = 0.01;
  t.init_std = 0.05;
  t.threads = 1;
}

}  // namespace

std::vector<std::string> zoo_trained_names() { return {"induction", "retrieval", "default"}; }

Result<ZooRecipe> zoo_recipe(const std::string& name, uint64_t seed) {
  ZooRecipe r;
  r.name = name;
  r.train.seed = seed;
  r.data_seed = seed * 0x9E3779B97F4A7C15ull + 0x5EED;
  if (name == "induction") {
    // Induction forms after a plateau of about 2M tokens at this size; a wider init and this
    // learning rate shorten it (measured; see docs/zoo.md).
    r.config = gpt2_config(2, 64, 4, 0, kAsciiVocab, 48);
    set_task_training(r.train);
    r.repeat.seq_len = 48;
  } else if (name == "retrieval") {
    // Four layers of four heads: the copying heads settle in one layer and the others are free,
    // so ablating as many random heads is a fair control (with two layers every other head is
    // needed for the previous-token step).
    r.config = gpt2_config(4, 64, 4, 0, kAsciiVocab, 48);
    set_task_training(r.train);
    r.needle.seq_len = 48;
  } else if (name == "default") {
    r.config = gpt2_config(4, 128, 4, 512, 1024, 128);
    r.train.steps = 3400;
    r.train.batch = 16;
    r.train.lr = 2e-3;
    r.train.warmup = 100;
    r.train.weight_decay = 0.1;
    r.train.init_std = 0.02;
    r.train.threads = 1;
    r.bpe_vocab = 1024;
    r.eval_batch = 32;
  } else {
    return Error{ErrorCode::kUsage, "unknown zoo model '" + name + "' (induction, retrieval, default)"};
  }
  return r;
}

Result<json> measure_zoo_model(const std::string& name, const Model& model, uint64_t seed,
                               int64_t eval_batch) {
  return guard([&] {
    const ModelConfig& c = model.config();
    const bool ascii = name != "default";
    json m;
    // The ASCII models are probed with random tokens; the default model with random words of its
    // lexicon (its corpus repeats spans of words; arbitrary BPE ids never occur in it, and on them
    // it predicts nothing). Its sink metric reads a fresh sample of its corpus.
    TaskRng rng(seed);
    std::unique_ptr<TextGenerator> text;
    at::Tensor sample, probe;
    const int64_t half = std::min<int64_t>(ascii ? 24 : 20, (c.n_ctx - 1) / 2);
    if (ascii) {
      probe = repeated_random_tokens(eval_batch, half, 1, kAsciiVocab - 1, kAsciiBos, rng);
    } else {
      if (!model.tokenizer()) fail_input("the default model needs its tokenizer to be measured");
      text = std::make_unique<TextGenerator>(seed + 1);
      sample = corpus_batch(*model.tokenizer(), *text, eval_batch, c.n_ctx).tokens;
      probe = repeated_word_probe(*model.tokenizer(), *text, eval_batch, half);
    }
    at::Tensor ind = checked(induction_scores(model, probe, half));
    at::Tensor prev = checked(detect_heads(model, probe, HeadPattern::kPreviousToken));
    at::Tensor tl_ind = checked(detect_heads(model, probe, HeadPattern::kInduction, {true, false, ErrorMeasure::kMul}));
    RepeatLoss rl = value_of(repeat_loss(model, probe, half));
    m["probe"] = {{"sequences", eval_batch}, {"half", half}, {"bos", true},
                  {"tokens", ascii ? "random ids 1..127" : "random words of the lexicon, tokenized"}};
    m["induction_score"] = matrix(ind);
    m["induction_best"] = best_head(ind);
    m["tl_induction_exclude_bos"] = matrix(tl_ind);
    m["previous_token_score"] = matrix(prev);
    m["previous_token_best_layer0"] = best_head(prev, 0);
    m["loss_repeated_half"] = rl.repeated;
    m["loss_first_half"] = rl.first;
    const at::Tensor sink_tokens = ascii ? probe : sample;

    if (name != "induction") {
      std::vector<Episode> eps;
      NeedleTask task;
      task.seq_len = c.n_ctx;
      for (int64_t i = 0; i < eval_batch; ++i)
        eps.push_back(ascii ? needle_episode(task, rng) : text_needle_episode(*model.tokenizer(), *text, c.n_ctx));
      RetrievalFigures rf = value_of(retrieval_scores(model, eps, 0));
      std::vector<HeadRef> heads = top_heads(rf.scores, kRetrievalThreshold);
      AblationFigures ab = value_of(ablation_test(model, eps, 0, heads, 10, seed + 2));
      json randoms = json::array();
      for (size_t i = 0; i < ab.random_sets.size(); ++i)
        randoms.push_back({{"heads", head_names(ab.random_sets[i])}, {"accuracy", ab.random_ablated[i]}});
      m["retrieval"] = {{"episodes", eval_batch}, {"answer_tokens", rf.answer_tokens},
                        {"accuracy", rf.accuracy}, {"score", matrix(rf.scores)},
                        {"best", best_head(rf.scores)}, {"threshold", kRetrievalThreshold},
                        {"heads", head_names(heads)},
                        {"ablation", {{"baseline_accuracy", ab.baseline},
                                      {"retrieval_heads_ablated_accuracy", ab.retrieval_ablated},
                                      {"random_heads_ablated_accuracy_mean", ab.random_ablated_mean},
                                      {"random_sets", randoms},
                                      {"method", "zero-ablation of hook_z"}}}};
    }
    at::Tensor alpha = checked(attention_to_position(model, sink_tokens, 0));
    m["sink"] = {{"metric", "alpha_0: mean attention to position 0 (BOS) over queries"},
                 {"epsilon", kSinkEpsilon}, {"sequences", sink_tokens.size(0)},
                 {"alpha_0", matrix(alpha)},
                 {"heads", head_names(top_heads(alpha, kSinkEpsilon))},
                 {"n_heads_above_epsilon", static_cast<int64_t>(top_heads(alpha, kSinkEpsilon).size())}};
    return m;
  });
}

Result<ZooTrainResult> train_zoo(const ZooRecipe& r, const std::string& out_dir,
                                 const ZooTrainSettings& s) {
  return guard([&] {
    std::error_code ec;
    if (fs::exists(out_dir, ec) && !s.overwrite)
      fail_usage(out_dir + ": already exists (use --force to replace it)");
    auto phase = [&](const char* p) {
      if (s.on_phase) s.on_phase(p);
    };
    ModelConfig cfg = r.config;
    json data;
    // Tokenizer: the fixed ASCII one for the task models, a BPE trained on our corpus otherwise.
    std::string tokenizer_json;
    if (r.name == "default") {
      phase("tokenizer");
      TextGenerator gen(r.data_seed ^ 0xB0E5ull);
      std::string corpus;
      while (static_cast<int64_t>(corpus.size()) < r.bpe_corpus_chars) corpus += gen.document() + "\n\n";
      BpeTrainOptions bo;
      bo.vocab_size = r.bpe_vocab;
      BpeModel bpe = value_of(train_bpe(corpus, bo));
      tokenizer_json = bpe_tokenizer_json(bpe, true);
      cfg.d_vocab = static_cast<int64_t>(bpe.vocab.size());
      data = {{"mix", "English-like paragraphs 40%, repeated random-word spans 30%, needle episodes 30%"},
              {"sequence", "BOS + text cut to n_ctx tokens"},
              {"tokenizer", {{"kind", "byte-level BPE trained by mechscope"}, {"vocab", bpe.vocab.size()},
                             {"corpus_chars", corpus.size()}}}};
    } else {
      tokenizer_json = bpe_tokenizer_json(ascii_bpe_model(), true);
      if (r.name == "induction")
        data = {{"task", "BOS + random tokens 1..127 with one span repeated at a random distance"},
                {"seq_len", r.repeat.seq_len}, {"min_span", r.repeat.min_span}};
      else
        data = {{"task", "needle episodes (English-like lowercase filler, needles <K123>, question ?K "
                         "and its value), mixed with repeated random-token sequences"},
                {"seq_len", r.needle.seq_len}, {"needles", r.needle.n_needles},
                {"value_len", r.needle.value_len}, {"repeat_share", r.needle.repeat_share},
                {"repeat_only_first", r.needle.repeat_only},
                {"loss", r.needle.train_all ? "every position" : "episodes: answer tokens and the final '.'; repeats: every position"}};
    }
    std::unique_ptr<Tokenizer> tok = tokenizer_from_text(tokenizer_json);
    Result<std::unique_ptr<Model>> made = Model::from_weights(cfg, init_weights(cfg, r.train.seed, r.train.init_std, r.train.sinusoidal_positions), std::move(tok));
    if (!made) throw InputError(made.error().message, made.error().code);
    Model& model = **made;

    // The seeded data stream.
    auto rng = std::make_shared<TaskRng>(r.data_seed);
    auto text = std::make_shared<TextGenerator>(r.data_seed);
    BatchFn next;
    if (r.name == "induction") next = [&r, rng](int64_t) { return repeat_batch(r.repeat, r.train.batch, *rng); };
    else if (r.name == "retrieval")
      next = [&r, rng](int64_t step) {
        const bool first_phase = static_cast<double>(step) < r.needle.repeat_only * static_cast<double>(r.train.steps);
        return needle_batch(r.needle, r.train.batch, *rng, first_phase ? 1.0 : -1.0);
      };
    else next = [&r, &model, text](int64_t) { return corpus_batch(*model.tokenizer(), *text, r.train.batch, r.config.n_ctx); };

    phase("training");
    ZooTrainResult res;
    res.outcome = value_of(train_model(model, r.train, next, s.callbacks));
    if (res.outcome.cancelled) {
      res.cancelled = true;
      return res;
    }
    phase("measuring");
    json measured = value_of(measure_zoo_model(r.name, model, r.data_seed + kZooMeasureSeedOffset, r.eval_batch));
    json curve = json::array();
    const size_t stride = std::max<size_t>(1, res.outcome.loss_curve.size() / 25);
    for (size_t i = 0; i < res.outcome.loss_curve.size(); i += stride)
      curve.push_back({res.outcome.loss_curve[i].first, res.outcome.loss_curve[i].second});
    json expected;
    if (r.name == "induction")
      expected = {"a previous-token head in layer 0", "an induction head in layer 1 (induction score > 0.7)",
                  "loss on the repeated half near zero"};
    else if (r.name == "retrieval")
      expected = {"retrieval heads: top-1 attention on the needle token being copied",
                  "answer accuracy collapses when they are ablated, not when as many random heads are"};
    else
      expected = {"an induction head", "at least one retrieval head", "a first-token attention sink (alpha_0 > 0.3)"};
    res.zoo = {{"name", r.name},
               {"generator", "mechscope zoo train"},
               {"expected_mechanisms", expected},
               {"config", json::parse(cfg.to_json())},
               {"training", train_json(r.train)},
               {"data", data},
               {"seed", r.train.seed},
               {"data_seed", r.data_seed},
               {"eval_batch", r.eval_batch},
               {"threads", r.train.threads},
               {"result", {{"steps", res.outcome.steps_done}, {"tokens", res.outcome.tokens},
                           {"seconds", res.outcome.seconds}, {"tokens_per_s", res.outcome.tokens_per_s},
                           {"first_loss", res.outcome.first_loss}, {"final_loss", res.outcome.final_loss},
                           {"loss_curve", curve}}},
               {"measured", measured},
               {"command", s.command},
               {"reproducible", "bit for bit with the same command, thread count and LibTorch/OpenBLAS build"},
               {"versions", {{"mechscope", MECHSCOPE_VERSION},
                             {"libtorch", std::to_string(TORCH_VERSION_MAJOR) + "." +
                                              std::to_string(TORCH_VERSION_MINOR) + "." +
                                              std::to_string(TORCH_VERSION_PATCH)}}}};
    phase("saving");
    Status st = save_model_hf(cfg, model.weights(), out_dir,
                              {{"tokenizer.json", tokenizer_json}, {"zoo.json", res.zoo.dump(2) + "\n"}},
                              s.overwrite);
    if (!st) throw InputError(st.error().message, st.error().code);
    return res;
  });
}

}  // namespace ms
