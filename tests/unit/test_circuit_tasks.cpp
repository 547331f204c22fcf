// Circuit task generators and custom task files: IOI and greater-than with the real GPT-2
// tokenizer (single-token filter, equal lengths, ABC corruption), induction, CSV/JSONL parsing
// and its error messages, and the metrics.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/analysis/circuits/circuit_task.h"
#include "core/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

std::unique_ptr<Tokenizer> gpt2_tokenizer() {
  std::string dir = test::reference_dir() + "/gpt2-tokenizer";
  Result<std::unique_ptr<Tokenizer>> t = load_vocab_merges(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? std::move(*t) : nullptr;
}

TEST(CircuitTasks, IoiPairsWithGpt2Tokenizer) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2_tokenizer();
  ASSERT_TRUE(tok);
  TaskOptions o;
  o.name = "ioi";
  o.n = 40;
  Result<TaskPairs> r = make_task(o, tok.get(), 50257);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const TaskPairs& t = *r;
  EXPECT_EQ(t.n(), 40);
  EXPECT_EQ(t.n_kept, 40);
  EXPECT_GT(t.n_candidates, t.n_kept);  // "Bartholomew" and "Gwendolyn" are not single GPT-2 tokens
  int baba = 0, abba = 0;
  for (int64_t i = 0; i < t.n(); ++i) {
    // The prompt ends just before the IO; the answer is " IO", the distractor " S".
    std::string io = tok->decode({t.answer[i]}), s = tok->decode({t.distractor[i]});
    const std::string& c = t.clean_text[i];
    EXPECT_EQ(c.find(io), c.rfind(io)) << c;       // IO appears once
    EXPECT_NE(c.find(s), c.rfind(s)) << c;         // S appears twice
    EXPECT_EQ(t.corrupted_text[i].find(io), std::string::npos) << t.corrupted_text[i];
    EXPECT_EQ(t.corrupted_text[i].find(s), std::string::npos) << t.corrupted_text[i];
    (c.find(s) < c.find(io) ? baba : abba)++;
    std::vector<int32_t> ids = tok->encode(c, false, false);
    if (tok->special().bos >= 0) ids.insert(ids.begin(), tok->special().bos);
    EXPECT_EQ(static_cast<int64_t>(ids.size()) - 1, t.answer_pos[i]);
    EXPECT_EQ(tok->encode(t.corrupted_text[i], false, false).size() + (tok->special().bos >= 0), ids.size());
    for (size_t j = 0; j < ids.size(); ++j) EXPECT_EQ(t.clean[i][static_cast<int64_t>(j)].item<int64_t>(), ids[j]);
  }
  EXPECT_GT(baba, 5);
  EXPECT_GT(abba, 5);
}

TEST(CircuitTasks, GreaterThanSignsAndMetric) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2_tokenizer();
  ASSERT_TRUE(tok);
  TaskOptions o;
  o.name = "greater-than";
  o.n = 16;
  Result<TaskPairs> r = make_task(o, tok.get(), 50257);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->n(), 16);
  // Logits that put all mass on year YY+1 give +1; on YY give -1.
  at::Tensor logits = at::full({r->n(), r->seq_len(), 50257}, -1e4);
  for (int64_t i = 0; i < r->n(); ++i) logits[i][r->answer_pos[i]][r->year_ids[r->yy[i] + 1]] = 0;
  EXPECT_NEAR(task_metric(*r, logits).item<double>(), 1.0, 1e-5);
  logits.fill_(-1e4);
  for (int64_t i = 0; i < r->n(); ++i) logits[i][r->answer_pos[i]][r->year_ids[r->yy[i]]] = 0;
  EXPECT_NEAR(task_metric(*r, logits).item<double>(), -1.0, 1e-5);
}

TEST(CircuitTasks, InductionRepeatsTheFirstHalf) {
  TaskOptions o;
  o.name = "induction";
  o.n = 4;
  o.half_len = 6;
  o.bos_id = 0;
  Result<TaskPairs> r = make_task(o, nullptr, 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->seq_len(), 1 + 6 + 5);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(r->clean[i][1 + j].item<int64_t>(), r->clean[i][7 + j].item<int64_t>());
    EXPECT_EQ(r->answer[i], r->clean[i][6].item<int64_t>());
    EXPECT_NE(r->corrupted[i][1].item<int64_t>(), r->clean[i][1].item<int64_t>());
    EXPECT_TRUE(r->corrupted[i].narrow(0, 7, 5).equal(r->clean[i].narrow(0, 7, 5)));
  }
  o.vocab_hi = 5;
  EXPECT_EQ(make_task(o, nullptr, 100).error().code, ErrorCode::kUsage);
}

TEST(CircuitTasks, CustomFiles) {
  std::string dir = test::temp_dir("circuit-tasks");
  test::write_file(dir + "/ok.csv", "clean,corrupted,answer,distractor\n\"[1, 2, 3]\",\"[4, 5, 6]\",[7],[8]\n\"[1,2]\",\"[3,4]\",[5],[6]\n");
  Result<TaskPairs> r = make_task({"custom", dir + "/ok.csv"}, nullptr, 10);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->n(), 2);
  EXPECT_EQ(r->answer_pos[1], 1);
  EXPECT_EQ(r->answer[0], 7);
  EXPECT_EQ(r->corrupted[0][2].item<int64_t>(), 6);
  test::write_file(dir + "/bad.jsonl", "{\"clean\": [1, 2, 3], \"corrupted\": [1, 2, 3], \"answer\": 4, \"distractor\": 5}\n"
                                       "{\"clean\": [1, 2, 3], \"corrupted\": [1, 2], \"answer\": 4, \"distractor\": 5}\n");
  Result<TaskPairs> bad = make_task({"custom", dir + "/bad.jsonl"}, nullptr, 10);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kBadInput);
  EXPECT_NE(bad.error().message.find("bad.jsonl line 2"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("same length"), std::string::npos) << bad.error().message;
  test::write_file(dir + "/text.jsonl", "{\"clean\": \"a b\", \"corrupted\": \"c d\", \"answer\": \"e\", \"distractor\": \"f\"}\n");
  Result<TaskPairs> text = make_task({"custom", dir + "/text.jsonl"}, nullptr, 10);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().message.find("no tokenizer"), std::string::npos) << text.error().message;
  test::write_file(dir + "/range.csv", "clean,corrupted,answer,distractor\n[1],[2],[30],[3]\n");
  EXPECT_NE(make_task({"custom", dir + "/range.csv"}, nullptr, 10).error().message.find("outside the vocabulary"),
            std::string::npos);
  if (!test::reference_dir().empty()) {  // text fields through a real tokenizer
    auto tok = gpt2_tokenizer();
    test::write_file(dir + "/t.csv", "clean,corrupted,answer,distractor\nWhen Mary and John,When Anna and Paul, Mary, John\n"
                                     "When Mary and John,When Bartholomew and Paul, Mary, John\n");
    Result<TaskPairs> tr = make_task({"custom", dir + "/t.csv"}, tok.get(), 50257);
    ASSERT_FALSE(tr.ok());
    EXPECT_NE(tr.error().message.find("t.csv line 3"), std::string::npos) << tr.error().message;
  }
}

}  // namespace
}  // namespace ms
