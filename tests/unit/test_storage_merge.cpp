// Database::merge_from: every table of a run (inputs, scores, tensors, circuits with nodes and
// edges, links) arrives intact, models are matched by content hash, unfinished runs stay behind,
// a second merge adds nothing, and a source at another schema version is refused untouched.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <map>

#include "storage/database.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace ms {
namespace {

template <class T>
T val(Result<T> r) {
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return std::move(r).value();
}

std::unique_ptr<Database> open_db(const std::string& path, int version = kSchemaVersion) {
  OpenOptions o;
  o.schema_version = version;
  Result<std::unique_ptr<Database>> db = Database::open(path, o);
  EXPECT_TRUE(db) << (db ? "" : db.error().message);
  return std::move(*db);
}

TEST(StorageMerge, CopiesEveryTableAndIsIdempotent) {
  std::string dir = test::temp_dir("merge");
  auto src = open_db(dir + "/src.db");
  int64_t m = val(src->register_model(test::demo_model("sha256:aaaa")));
  int64_t m2 = val(src->register_model(test::demo_model("sha256:bbbb", 2, 4)));
  RunSpec base = test::demo_spec(m);
  int64_t r1 = val(src->store_run(base, test::demo_results()));
  RunSpec keyed = test::keyed_spec("sinks", "sinks/m/p#1");
  keyed.model_id = m2;
  RunResults linked = test::demo_results(2, 4, 1.0);
  linked.links.push_back({0, "derived-from", r1});
  int64_t r2 = val(src->store_run(keyed, linked));
  int64_t running = val(src->begin_run(test::demo_spec(m, "retrieval")));  // never finished
  (void)running;

  auto dst = open_db(dir + "/dst.db");
  int64_t other = val(dst->register_model(test::demo_model("sha256:zzzz")));  // ids differ from src's
  (void)other;
  Result<MergeStats> st = dst->merge_from(dir + "/src.db");
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->runs_added, 2);
  EXPECT_EQ(st->runs_not_done, 1);
  EXPECT_EQ(st->models_added, 2);

  Result<std::vector<RunSummary>> runs = dst->list_runs();
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 2u);
  std::map<std::string, int64_t> by_label;
  for (const auto& s : *runs) by_label[s.run.spec.resume_key] = s.run.id;
  int64_t d1 = by_label[""], d2 = by_label["sinks/m/p#1"];
  for (auto [a, b] : {std::pair<int64_t, int64_t>{r1, d1}, {r2, d2}}) {
    RunInfo ra = val(src->get_run(a)), rb = val(dst->get_run(b));
    EXPECT_EQ(ra.spec.params_json, rb.spec.params_json);
    EXPECT_EQ(ra.spec.command, rb.spec.command);
    EXPECT_EQ(ra.created_at, rb.created_at);
    EXPECT_EQ(src->get_model(ra.spec.model_id)->content_hash, dst->get_model(rb.spec.model_id)->content_hash);
    auto ia = val(src->get_inputs(a)), ib = val(dst->get_inputs(b));
    ASSERT_EQ(ia.size(), ib.size());
    for (size_t i = 0; i < ia.size(); ++i) {
      EXPECT_EQ(ia[i].text, ib[i].text);
      EXPECT_EQ(ia[i].token_ids, ib[i].token_ids);
      EXPECT_EQ(ia[i].tokens, ib[i].tokens);
    }
    auto sa = val(src->get_head_scores(a)), sb = val(dst->get_head_scores(b));
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(sa[i].values, sb[i].values) << sa[i].metric;
    for (const auto& t : val(src->list_tensors(a)))
      EXPECT_TRUE(at::equal(val(src->get_tensor(a, t.name)), val(dst->get_tensor(b, t.name)))) << t.name;
    auto ca = val(src->get_circuits(a)), cb = val(dst->get_circuits(b));
    ASSERT_EQ(ca.size(), 1u);
    ASSERT_EQ(cb.size(), 1u);
    ASSERT_EQ(ca[0].nodes.size(), cb[0].nodes.size());
    ASSERT_EQ(ca[0].edges.size(), cb[0].edges.size());
    for (size_t i = 0; i < ca[0].edges.size(); ++i) {
      EXPECT_EQ(ca[0].edges[i].src, cb[0].edges[i].src);
      EXPECT_EQ(ca[0].edges[i].dst, cb[0].edges[i].dst);
      EXPECT_EQ(ca[0].edges[i].score, cb[0].edges[i].score);
    }
    EXPECT_EQ(ca[0].meta_json, cb[0].meta_json);
  }
  auto links = val(dst->get_links(d2));
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].relation, "derived-from");
  EXPECT_EQ(links[0].source_run_id, d1);

  Result<MergeStats> again = dst->merge_from(dir + "/src.db");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->runs_added, 0);
  EXPECT_EQ(again->runs_present, 2);
  EXPECT_EQ(dst->list_runs()->size(), 2u);
  EXPECT_EQ(val(dst->integrity_check()), "ok");
}

TEST(StorageMerge, RefusesOtherSchemaVersionsUntouched) {
  std::string dir = test::temp_dir("merge-old");
  { open_db(dir + "/old.db", 1); }
  std::string before = test::read_file(dir + "/old.db");
  auto dst = open_db(dir + "/dst.db");
  Result<MergeStats> st = dst->merge_from(dir + "/old.db");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kBadInput);
  EXPECT_NE(st.error().message.find("schema version 1"), std::string::npos) << st.error().message;
  EXPECT_EQ(test::read_file(dir + "/old.db"), before);
  EXPECT_FALSE(dst->merge_from(dir + "/dst.db")) << "merging a database into itself";
}

}  // namespace
}  // namespace ms
