// Task generators (ioi, induction, greater-than) and the task metrics. Custom files are read in
// circuit_task_file.cpp.
#include "core/analysis/circuits/circuit_task.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <random>

#include "core/tokenizer/tokenizer.h"

namespace ms {

Result<TaskPairs> read_custom_task(const std::string& path, const Tokenizer* tok, int64_t d_vocab, bool bos);

namespace {

// Our own IOI templates in Wang et al.'s form. {X} and {Y} are the first two names (BABA: X = S,
// Y = IO; ABBA: X = IO, Y = S), {S} the repeated subject; the answer is the indirect object.
const char* kIoiTemplates[] = {
    "Then, {X} and {Y} went to the {PLACE}. {S} gave a {OBJECT} to",
    "When {X} and {Y} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "After {X} and {Y} went to the {PLACE}, {S} gave a {OBJECT} to",
    "While {X} and {Y} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "Then, {X} and {Y} had a long day at the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Friends {X} and {Y} found a {OBJECT} at the {PLACE}. {S} gave it to",
    "The {PLACE} was quiet when {X} and {Y} arrived. {S} handed a {OBJECT} to",
    "Afterwards, {X} and {Y} went to the {PLACE}. {S} brought a {OBJECT} to",
};
const char* kNames[] = {
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Kate", "Paul", "Mark", "Anna",
    "Lisa", "Sarah", "David", "Michael", "Laura", "Emma", "Jack", "Peter", "Alice", "Bob", "Rose",
    "George", "Henry", "Susan", "Ben", "Sam", "Joe", "Jane", "Adam", "Eric", "Ryan", "Kevin",
    "Brian", "Alex", "Chris", "Steve", "Linda", "Grace", "Leo", "Max", "Oscar", "Ruth", "Ivy",
    "Hannah", "Victoria", "Theodore", "Bartholomew", "Gwendolyn"};
const char* kPlaces[] = {"store", "garden", "restaurant", "school", "hospital", "office", "house",
                         "station", "park", "market", "library", "beach"};
const char* kObjects[] = {"ring", "kiss", "bone", "basketball", "computer", "necklace", "drink",
                          "snack", "book", "letter", "flower", "ball"};

std::string fill(std::string t, const std::map<std::string, std::string>& v) {
  for (const auto& [k, s] : v) {
    std::string key = "{" + k + "}";
    for (size_t p = t.find(key); p != std::string::npos; p = t.find(key, p + s.size()))
      t.replace(p, key.size(), s);
  }
  return t;
}

int32_t single_token(const Tokenizer& tok, const std::string& s) {
  std::vector<int32_t> ids = tok.encode(s, false, false);
  return ids.size() == 1 ? ids[0] : -1;
}

std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& s, bool bos) {
  std::vector<int32_t> ids = tok.encode(s, false, false);
  if (bos && tok.special().bos >= 0) ids.insert(ids.begin(), tok.special().bos);
  return ids;
}

// Stacks pairs into right-padded [N, T] tensors.
void stack_pairs(TaskPairs& t, const std::vector<std::vector<int32_t>>& clean,
                 const std::vector<std::vector<int32_t>>& corrupted, int32_t pad) {
  size_t T = 0;
  for (const auto& c : clean) T = std::max(T, c.size());
  const int64_t N = static_cast<int64_t>(clean.size());
  t.clean = at::full({N, static_cast<int64_t>(T)}, std::max(pad, 0), at::kLong);
  t.corrupted = t.clean.clone();
  auto a = t.clean.accessor<int64_t, 2>(), b = t.corrupted.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i)
    for (size_t j = 0; j < clean[i].size(); ++j) {
      a[i][j] = clean[i][j];
      b[i][j] = corrupted[i][j];
    }
}

// One clean/corrupted text pair whose answer is read at the last position.
void add_text_pair(TaskPairs& t, int32_t answer, int32_t distractor, const std::string& clean_text,
                   const std::string& corrupted_text, std::vector<int32_t> clean_ids,
                   std::vector<int32_t> corrupted_ids, std::vector<std::vector<int32_t>>& clean,
                   std::vector<std::vector<int32_t>>& corrupted) {
  t.answer.push_back(answer);
  t.distractor.push_back(distractor);
  t.answer_pos.push_back(static_cast<int64_t>(clean_ids.size()) - 1);
  t.clean_text.push_back(clean_text);
  t.corrupted_text.push_back(corrupted_text);
  clean.push_back(std::move(clean_ids));
  corrupted.push_back(std::move(corrupted_ids));
}

// Stacks the surviving pairs (padded with EOS), or says that none survived the filter.
Result<TaskPairs> finish_text_task(TaskPairs t, const std::vector<std::vector<int32_t>>& clean,
                                   const std::vector<std::vector<int32_t>>& corrupted, const Tokenizer& tok,
                                   const std::string& none_survived) {
  t.n_kept = static_cast<int64_t>(clean.size());
  if (clean.empty()) return Error{ErrorCode::kBadInput, none_survived};
  stack_pairs(t, clean, corrupted, tok.special().eos >= 0 ? tok.special().eos : 0);
  return t;
}

Result<TaskPairs> make_ioi(const TaskOptions& o, const Tokenizer& tok) {
  std::mt19937_64 rng(o.seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::vector<std::string> names;
  for (const char* n : kNames) names.push_back(n);
  TaskPairs t;
  t.name = "ioi";
  std::vector<std::vector<int32_t>> clean, corrupted;
  const int64_t max_attempts = 20 * o.n + 100;
  while (static_cast<int64_t>(clean.size()) < o.n && t.n_candidates < max_attempts) {
    ++t.n_candidates;
    const std::string tmpl = kIoiTemplates[pick(std::size(kIoiTemplates))];
    const std::string place = kPlaces[pick(std::size(kPlaces))], object = kObjects[pick(std::size(kObjects))];
    // Five distinct names: IO, S, and three unrelated ones for the ABC corruption.
    std::vector<size_t> idx;
    while (idx.size() < 5) {
      size_t k = pick(names.size());
      if (std::find(idx.begin(), idx.end(), k) == idx.end()) idx.push_back(k);
    }
    const std::string io = names[idx[0]], s = names[idx[1]];
    const bool baba = rng() % 2 == 0;
    std::map<std::string, std::string> cv = {{"X", baba ? s : io}, {"Y", baba ? io : s}, {"S", s},
                                             {"PLACE", place}, {"OBJECT", object}};
    std::map<std::string, std::string> xv = {{"X", names[idx[2]]}, {"Y", names[idx[3]]}, {"S", names[idx[4]]},
                                             {"PLACE", place}, {"OBJECT", object}};
    std::string ct = fill(tmpl, cv), xt = fill(tmpl, xv);
    int32_t a = single_token(tok, " " + io), d = single_token(tok, " " + s);
    bool ok = a >= 0 && d >= 0;
    for (size_t k = 2; k < 5 && ok; ++k) ok = single_token(tok, " " + names[idx[k]]) >= 0;
    if (!ok) continue;
    std::vector<int32_t> ci = encode_prompt(tok, ct, o.bos), xi = encode_prompt(tok, xt, o.bos);
    if (ci.size() != xi.size()) continue;
    add_text_pair(t, a, d, ct, xt, std::move(ci), std::move(xi), clean, corrupted);
  }
  return finish_text_task(std::move(t), clean, corrupted, tok,
                          "ioi: no prompt survived the single-token filter (none of the names is one token "
                          "with this tokenizer)");
}

Result<TaskPairs> make_greater_than(const TaskOptions& o, const Tokenizer& tok) {
  TaskPairs t;
  t.name = "greater-than";
  t.metric = MetricKind::kProbDiff;
  t.year_ids.assign(100, -1);
  char buf[8];
  for (int k = 0; k < 100; ++k) {
    std::snprintf(buf, sizeof buf, "%02d", k);
    t.year_ids[k] = single_token(tok, buf);
  }
  std::mt19937_64 rng(o.seed);
  const char* nouns[] = {"war", "expedition", "drought", "journey", "siege", "reign", "voyage", "famine"};
  std::vector<std::vector<int32_t>> clean, corrupted;
  const int64_t max_attempts = 20 * o.n + 100;
  while (static_cast<int64_t>(clean.size()) < o.n && t.n_candidates < max_attempts) {
    ++t.n_candidates;
    int yy = 2 + static_cast<int>(rng() % 97);  // 02..98: years on both sides exist
    const std::string noun = nouns[rng() % std::size(nouns)];
    std::snprintf(buf, sizeof buf, "%02d", yy);
    std::string ct = "The " + noun + " lasted from the year 17" + buf + " to the year 17";
    std::string xt = "The " + noun + " lasted from the year 1701 to the year 17";  // Hanna et al.: YY = 01
    std::vector<int32_t> ci = encode_prompt(tok, ct, o.bos), xi = encode_prompt(tok, xt, o.bos);
    // The start year must be " 17" + "YY" and the answer a two-digit token, as in the paper.
    std::vector<int32_t> tail = tok.encode(std::string(" 17") + buf, false, false);
    if (tail.size() != 2 || tail[1] != t.year_ids[yy] || ci.size() != xi.size()) continue;
    t.yy.push_back(yy);
    add_text_pair(t, t.year_ids[yy], t.year_ids[yy], ct, xt, std::move(ci), std::move(xi), clean, corrupted);
  }
  return finish_text_task(std::move(t), clean, corrupted, tok,
                          "greater-than: no prompt survived the single-token filter (two-digit years are not "
                          "single tokens with this tokenizer)");
}

Result<TaskPairs> make_induction(const TaskOptions& o, int64_t d_vocab, int32_t bos) {
  const int64_t lo = o.vocab_lo >= 0 ? o.vocab_lo : 0, hi = o.vocab_hi > 0 ? o.vocab_hi : d_vocab;
  if (hi - lo < 2 * o.half_len + 1 || hi > d_vocab)
    return Error{ErrorCode::kUsage, "induction: token range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                        ") is too small or outside the vocabulary of " + std::to_string(d_vocab)};
  if (o.half_len < 2) return Error{ErrorCode::kUsage, "induction: --seq-len must be at least 2"};
  std::mt19937_64 rng(o.seed);
  TaskPairs t;
  t.name = "induction";
  std::vector<std::vector<int32_t>> clean, corrupted;
  for (int64_t i = 0; i < o.n; ++i) {
    // Distinct tokens so the only way to predict the last one is to copy from the first half.
    std::vector<int32_t> pool;
    while (static_cast<int64_t>(pool.size()) < 2 * o.half_len + 1) {
      int32_t x = static_cast<int32_t>(lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo)));
      if (x != bos && std::find(pool.begin(), pool.end(), x) == pool.end()) pool.push_back(x);
    }
    std::vector<int32_t> r(pool.begin(), pool.begin() + o.half_len);
    std::vector<int32_t> s(pool.begin() + o.half_len, pool.begin() + 2 * o.half_len);
    std::vector<int32_t> c, x;
    if (bos >= 0) c.push_back(bos), x.push_back(bos);
    c.insert(c.end(), r.begin(), r.end());
    x.insert(x.end(), s.begin(), s.end());
    c.insert(c.end(), r.begin(), r.end() - 1);  // the last token of the repeat is the answer
    x.insert(x.end(), r.begin(), r.end() - 1);
    t.answer.push_back(r.back());
    t.distractor.push_back(pool.back());
    t.answer_pos.push_back(static_cast<int64_t>(c.size()) - 1);
    clean.push_back(std::move(c));
    corrupted.push_back(std::move(x));
  }
  t.n_candidates = t.n_kept = o.n;
  stack_pairs(t, clean, corrupted, 0);
  return t;
}

}  // namespace

Result<TaskPairs> make_task(const TaskOptions& o, const Tokenizer* tok, int64_t d_vocab) {
  Result<Result<TaskPairs>> out = guard([&]() -> Result<TaskPairs> {
    if (o.n < 1) return Error{ErrorCode::kUsage, "a task needs at least one prompt pair"};
    if (o.name == "induction") {
      int32_t bos = o.bos_id;
      if (bos < 0 && o.bos && tok) bos = tok->special().bos;
      return make_induction(o, d_vocab, bos);
    }
    if (o.name == "custom") return read_custom_task(o.file, tok, d_vocab, o.bos);
    if (o.name != "ioi" && o.name != "greater-than")
      return Error{ErrorCode::kUsage, "unknown task '" + o.name + "' (ioi, induction, greater-than, custom)"};
    if (!tok) return Error{ErrorCode::kUsage, o.name + " needs a model with a tokenizer"};
    Result<TaskPairs> r = o.name == "ioi" ? make_ioi(o, *tok) : make_greater_than(o, *tok);
    if (r) {
      int64_t hi = std::max(r->clean.max().item<int64_t>(), r->corrupted.max().item<int64_t>());
      if (hi >= d_vocab)
        return Error{ErrorCode::kBadInput, o.name + ": token id " + std::to_string(hi) +
                                               " is outside the model's vocabulary of " + std::to_string(d_vocab)};
    }
    return r;
  });
  if (!out) return out.error();
  return std::move(out).value();
}

at::Tensor answer_log_probs(const TaskPairs& t, const at::Tensor& logits) {
  at::Tensor pos = at::tensor(t.answer_pos, at::kLong).to(logits.device());
  at::Tensor rows = at::arange(logits.size(0), pos.options());
  return at::log_softmax(logits.index({rows, pos}).to(at::kFloat), -1);  // [N, V]
}

at::Tensor task_metric_per_pair(const TaskPairs& t, const at::Tensor& logits) {
  at::Tensor pos = at::tensor(t.answer_pos, at::kLong).to(logits.device());
  at::Tensor rows = at::arange(logits.size(0), pos.options());
  at::Tensor last = logits.index({rows, pos}).to(at::kFloat);  // [N, V]
  if (t.metric == MetricKind::kProbDiff) {
    at::Tensor p = at::softmax(last, -1);
    std::vector<float> sign(static_cast<size_t>(t.n()) * 100, 0.f);
    std::vector<int64_t> ids;
    for (int k = 0; k < 100; ++k) ids.push_back(std::max(t.year_ids[k], 0));
    for (int64_t i = 0; i < t.n(); ++i)
      for (int k = 0; k < 100; ++k)
        if (t.year_ids[k] >= 0) sign[i * 100 + k] = k > t.yy[i] ? 1.f : -1.f;
    at::Tensor py = p.index_select(1, at::tensor(ids, at::kLong).to(p.device()));  // [N, 100]
    return (py * at::tensor(sign).view({t.n(), 100}).to(p.device())).sum(1);
  }
  at::Tensor a = at::tensor(std::vector<int64_t>(t.answer.begin(), t.answer.end()), at::kLong).to(last.device());
  at::Tensor d = at::tensor(std::vector<int64_t>(t.distractor.begin(), t.distractor.end()), at::kLong).to(last.device());
  return last.gather(1, a.unsqueeze(1)).squeeze(1) - last.gather(1, d.unsqueeze(1)).squeeze(1);
}

at::Tensor task_metric(const TaskPairs& t, const at::Tensor& logits) { return task_metric_per_pair(t, logits).mean(); }

at::Tensor kl_to_reference(const TaskPairs& t, const at::Tensor& ref_log_probs, const at::Tensor& logits) {
  at::Tensor lp = answer_log_probs(t, logits);
  return (ref_log_probs.exp() * (ref_log_probs - lp)).sum(-1).mean();
}

}  // namespace ms
