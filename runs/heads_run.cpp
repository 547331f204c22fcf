// heads_spec and run_heads: the head detectors declared once and run the same way everywhere.
#include "runs/heads_run.h"

#include <ATen/ATen.h>

#include <sstream>

#include "core/zoo/zoo_text.h"
#include "runs/run_inputs.h"

namespace ms {
namespace {

// The parameters of each input: only the one that ran is stored.
const std::vector<std::string> kSequenceParams = {"seq_len", "n", "seed", "vocab_range", "bos", "draw"};
const std::vector<std::string> kPromptParams = {"max_tokens"};

// "LO:HI" -> [lo, hi) within the vocabulary; "" -> the whole vocabulary.
std::string parse_vocab_range(const std::string& text, int64_t d_vocab, int64_t* lo, int64_t* hi) {
  *lo = 0, *hi = d_vocab;
  if (text.empty()) return "";
  const size_t colon = text.find(':');
  try {
    size_t a = 0, b = 0;
    if (colon == std::string::npos) throw std::invalid_argument(text);
    *lo = std::stoll(text.substr(0, colon), &a);
    *hi = std::stoll(text.substr(colon + 1), &b);
    if (a != colon || b != text.size() - colon - 1) throw std::invalid_argument(text);
  } catch (const std::logic_error&) {
    return "vocab_range '" + text + "': expected LO:HI";
  }
  if (*lo < 0 || *hi > d_vocab || *lo >= *hi)
    return "vocab_range '" + text + "': expected 0 <= LO < HI <= " + std::to_string(d_vocab);
  return "";
}

DetectOptions detect_options(const nlohmann::json& p) {
  DetectOptions o;
  o.exclude_bos = p["exclude_bos"].get<bool>();
  o.exclude_current_token = p["exclude_current_token"].get<bool>();
  o.error_measure = p["error_measure"].get<std::string>() == "abs" ? ErrorMeasure::kAbs : ErrorMeasure::kMul;
  return o;
}

at::Tensor detect_or_throw(const Model& m, const at::Tensor& tokens, HeadPattern p, const DetectOptions& o) {
  Result<at::Tensor> s = detect_heads(m, tokens, p, o);
  if (!s) throw InputError(s.error().message, s.error().code);
  return *s;
}

}  // namespace

std::vector<HeadPattern> parse_detect(const std::string& text, std::string* canonical) {
  std::vector<HeadPattern> out;
  std::string canon;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    const std::string full = item == "previous" ? "previous_token_head" : item == "duplicate" ? "duplicate_token_head"
                             : item == "induction" ? "induction_head" : item;
    Result<HeadPattern> p = parse_head_pattern(full);
    if (!p) fail_usage("detect: '" + item + "' is not previous, duplicate or induction");
    out.push_back(*p);
    std::string name = head_pattern_name(*p);
    canon += (canon.empty() ? "" : ",") + name.substr(0, name.find('_'));
  }
  if (out.empty()) fail_usage("detect: no detector (previous, duplicate, induction)");
  if (canonical) *canonical = canon;
  return out;
}

const AnalysisSpec& heads_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "heads";
    s.summary = "previous-token, duplicate-token and induction head scores (TransformerLens' detectors)";
    s.uses_prompts = true;
    const unsigned seq = kOnCli | kInGui | kStored;  // the repeated random sequences: not in batch jobs
    s.params = {
        {"detect", ParamType::kString, "previous,duplicate,induction", true,
         "previous, duplicate, induction (comma separated; or TransformerLens' names)"},
        {"error_measure", ParamType::kChoice, "mul", true, "mul (sum(A*D)/sum(A)) or abs (TransformerLens)"},
        {"exclude_bos", ParamType::kBool, false, true, "ignore attention to position 0"},
        {"exclude_current_token", ParamType::kBool, false, true, "ignore each query's attention to itself"},
        {"seq_len", ParamType::kInt, 20, false, "random tokens per half of each repeated sequence", seq},
        {"n", ParamType::kInt, 16, false, "repeated sequences", seq},
        {"seed", ParamType::kInt, 0, false, "sequence seed", seq},
        {"vocab_range", ParamType::kString, "", false, "token ids LO:HI to draw from (default: the whole vocabulary)", seq},
        {"bos", ParamType::kBool, true, false, "prepend BOS to the repeated sequences", seq},
        {"max_tokens", ParamType::kInt, 0, false, "prompts: cut each to this many tokens (0: no limit)"},
        {"draw", ParamType::kChoice, "random", false,
         "what the repeated sequences repeat: random token ids (random, TransformerLens' probe) or random "
         "words of an English-like lexicon, tokenized by the model's tokenizer, each half ending in '.' (words)",
         seq},
    };
    s.params[8].flag = "--no-bos";
    s.params[3].flag = "--exclude-current";
    s.params[4].lo = 1, s.params[4].hi = 1 << 20;
    s.params[5].lo = 1, s.params[5].hi = 1 << 16;
    s.params[6].lo = 0, s.params[6].hi = 9e15;
    s.params[9].lo = 0;
    s.params[1].choices = {"mul", "abs"};
    s.params[10].choices = {"random", "words"};
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      try {
        (void)parse_detect(p["detect"].get<std::string>());
      } catch (const InputError& e) {
        return *param = "detect", std::string(e.what());
      }
      if (!c) return "";
      if (p.value("draw", std::string("random")) == "words" && !p.value("vocab_range", std::string()).empty())
        return *param = "vocab_range", std::string("vocab_range applies to draw=random only");
      int64_t lo = 0, hi = 0;
      std::string e = parse_vocab_range(p.value("vocab_range", std::string()), c->d_vocab, &lo, &hi);  // not in batch jobs
      if (!e.empty()) return *param = "vocab_range", e;
      return "";
    };
    return s;
  }();
  return spec;
}

HeadsRunOutcome run_heads(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                          nlohmann::json params) {
  std::string param, detect;
  std::string e = complete_params(heads_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  const std::vector<HeadPattern> patterns = parse_detect(params["detect"].get<std::string>(), &detect);
  params["detect"] = detect;
  const DetectOptions opts = detect_options(params);
  const bool on_prompts = !records.empty();

  // The input: the prompts (each on its own), or one batch of repeated random sequences.
  std::vector<at::Tensor> rows;
  RunResults res;
  if (on_prompts) {
    const int64_t max_tokens = params["max_tokens"].get<int64_t>();
    for (size_t i = 0; i < records.size(); ++i) {
      std::vector<int32_t> ids = prompt_tokens(m, records[i]);
      if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(static_cast<size_t>(max_tokens));
      if (ids.size() < 2) fail_usage("heads: prompt " + std::to_string(i) + " has fewer than 2 tokens");
      rows.push_back(m.tokens_tensor(ids));
      InputRecord in{static_cast<int>(i), records[i].text, ids, {}};
      for (int32_t id : ids) in.tokens.push_back(token_label(m, id));
      res.inputs.push_back(std::move(in));
    }
  } else {
    int64_t lo = 0, hi = 0;
    (void)parse_vocab_range(params["vocab_range"].get<std::string>(), m.config().d_vocab, &lo, &hi);
    at::Tensor seqs;
    if (params["draw"].get<std::string>() == "words") {
      // Random words, each half " w1 ... wn." of exactly seq_len tokens (the zoo's probe): a model
      // trained on text may ignore repeats of arbitrary ids it never saw (the default model does).
      if (!m.tokenizer()) fail_usage("draw=words needs the model's tokenizer, and this model has none");
      const int64_t half = params["seq_len"].get<int64_t>();
      const int64_t len = 2 * half + (params["bos"].get<bool>() ? 1 : 0);
      if (len > m.config().n_ctx)
        fail_usage("seq_len " + std::to_string(half) + ": " + std::to_string(len) + " tokens exceed the context (" +
                   std::to_string(m.config().n_ctx) + ")");
      TextGenerator gen(params["seed"].get<uint64_t>());
      try {
        seqs = repeated_word_probe(*m.tokenizer(), gen, params["n"].get<int64_t>(), half);
      } catch (const std::logic_error& e) {
        fail_usage(std::string("draw=words: ") + e.what());
      }
      if (!params["bos"].get<bool>() || m.tokenizer()->special().bos < 0) seqs = seqs.slice(1, 1).contiguous();
    } else {
      Result<at::Tensor> r = repeated_sequences(m, params["seq_len"].get<int64_t>(), params["n"].get<int64_t>(),
                                                params["seed"].get<uint64_t>(), lo, hi, !params["bos"].get<bool>());
      if (!r) throw InputError(r.error().message, r.error().code);
      seqs = *r;
    }
    rows.push_back(seqs);
    res.tensors.push_back({"tokens", seqs, R"({"kind":"tokens","axes":["sequence","position"]})"});
  }

  HeadsRunOutcome out;
  out.params = params;
  for (const at::Tensor& r : rows) {
    out.n_sequences += r.dim() == 2 ? r.size(0) : 1;
    out.n_tokens = std::max(out.n_tokens, r.size(-1));
  }
  nlohmann::json stored = stored_params(heads_spec(), params);
  for (const std::string& k : on_prompts ? kSequenceParams : kPromptParams) stored.erase(k);
  stored["input"] = on_prompts ? "prompts" : "sequences";
  session.begin(m, "heads", stored);
  const int64_t total = static_cast<int64_t>(patterns.size() * rows.size());
  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    int64_t done = 0;
    for (HeadPattern p : patterns) {
      std::vector<at::Tensor> per_row;
      for (const at::Tensor& r : rows) {
        if (session.cancelled()) {
          reason = "cancelled after " + std::to_string(done) + " of " + std::to_string(total) + " detector passes";
          return std::nullopt;
        }
        per_row.push_back(detect_or_throw(m, r, p, opts));
        session.progress(++done, total);
      }
      at::Tensor all = at::stack(per_row);  // [row, layer, head]
      at::Tensor score = all.mean(0);
      res.scores.push_back(head_scores_from_tensor(head_pattern_name(p), score));
      if (on_prompts)
        res.tensors.push_back({std::string(head_pattern_name(p)) + "_per_prompt", all,
                               R"({"kind":"head-score","axes":["prompt","layer","head"]})"});
      out.scores.emplace_back(p, score);
    }
    return res;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
