// Storage round trips: everything stored reads back equal (tensors bitwise), run life cycle,
// deletes cascade, model identity by content hash, the database path rules, SHA-256 vectors.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/model/model.h"
#include "core/zoo/zoo_random.h"
#include "storage/compare.h"
#include "storage/model_hash.h"
#include "storage/sha256.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

std::unique_ptr<Database> fresh_db(const std::string& tag = "db") {
  auto db = Database::open(test::temp_dir("storage") + "/" + tag + ".db");
  EXPECT_TRUE(db.ok()) << db.error().message;
  return std::move(db.value());
}

int64_t count_rows(const std::string& path, const char* sql) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(h, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(h);
  return n;
}

bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == cb.nbytes() && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

void expect_equal_values(const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) {
      EXPECT_TRUE(std::isnan(b[i])) << i;
    } else if (a[i] == 0) {
      EXPECT_EQ(b[i], 0.0) << i;  // SQLite keeps whole-number REALs as integers: -0.0 reads back 0.0
    } else {
      EXPECT_EQ(std::memcmp(&a[i], &b[i], sizeof(double)), 0) << i << ": " << a[i] << " vs " << b[i];
    }
  }
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // one million 'a', fed in uneven pieces
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Storage, DbPathPrecedence) {
  const char* keep_db = std::getenv("MECHSCOPE_DB");
  const char* keep_xdg = std::getenv("XDG_DATA_HOME");
  std::string saved_db = keep_db ? keep_db : "", saved_xdg = keep_xdg ? keep_xdg : "";
  ::setenv("MECHSCOPE_DB", "/tmp/env.db", 1);
  ::setenv("XDG_DATA_HOME", "/tmp/xdg", 1);
  EXPECT_EQ(resolve_db_path("/tmp/flag.db"), "/tmp/flag.db");
  EXPECT_EQ(resolve_db_path(), "/tmp/env.db");
  ::unsetenv("MECHSCOPE_DB");
  EXPECT_EQ(resolve_db_path(), "/tmp/xdg/mechscope/mechscope.db");
  ::unsetenv("XDG_DATA_HOME");
  std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  if (!home.empty()) {
    EXPECT_EQ(resolve_db_path(), home + "/.local/share/mechscope/mechscope.db");
  }
  if (keep_db) ::setenv("MECHSCOPE_DB", saved_db.c_str(), 1);
  if (keep_xdg) ::setenv("XDG_DATA_HOME", saved_xdg.c_str(), 1);
}

TEST(Storage, CreatesParentFolders) {
  std::string path = test::temp_dir("storage") + "/a/b/c/mechscope.db";
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ((*db)->schema_version(), kSchemaVersion);
}

TEST(Storage, ModelsDedupByHashAndConfig) {
  auto db = fresh_db();
  int64_t a = db->register_model(test::demo_model("sha256:aa")).value();
  int64_t again = db->register_model(test::demo_model("sha256:aa")).value();
  int64_t b = db->register_model(test::demo_model("sha256:bb")).value();
  ModelInfo moved = test::demo_model("sha256:aa");
  moved.path = "/elsewhere/tiny-gpt2";
  int64_t same = db->register_model(moved).value();
  EXPECT_EQ(a, again);
  EXPECT_EQ(a, same);
  EXPECT_NE(a, b);
  ModelInfo back = db->get_model(a).value();
  EXPECT_EQ(back.path, "/elsewhere/tiny-gpt2");
  EXPECT_EQ(back.architecture, "gpt2");
  EXPECT_EQ(back.content_hash, "sha256:aa");
  EXPECT_EQ(back.n_params, 1234567);
  EXPECT_EQ(back.config_json, test::demo_model().config_json);
  EXPECT_FALSE(back.created_at.empty());
  EXPECT_EQ(db->list_models().value().size(), 2u);
}

TEST(Storage, RunRoundTrip) {
  auto db = fresh_db();
  int64_t model = db->register_model(test::demo_model()).value();
  RunResults res = test::demo_results();
  res.scores[0].values[5] = NAN;  // a head not computed
  res.scores[1].values[3] = 1e-300;
  res.scores[1].values[4] = -0.0;
  res.scores[1].values[6] = INFINITY;
  RunSpec spec = test::demo_spec(model);
  spec.resume_key = "item-7";
  int64_t id = db->store_run(spec, res).value();

  RunInfo r = db->get_run(id).value();
  EXPECT_EQ(r.spec.kind, "sinks");
  EXPECT_EQ(r.spec.model_id, model);
  EXPECT_EQ(r.spec.params_json, spec.params_json);
  EXPECT_EQ(r.spec.command, spec.command);
  EXPECT_EQ(r.spec.label, "demo");
  EXPECT_EQ(r.spec.resume_key, "item-7");
  EXPECT_EQ(r.mechscope_version, MECHSCOPE_VERSION);
  EXPECT_EQ(r.status, RunStatus::kDone);
  EXPECT_EQ(r.progress, 1.0);
  EXPECT_FALSE(r.started_at.empty());
  EXPECT_FALSE(r.finished_at.empty());
  EXPECT_TRUE(r.error.empty());

  std::vector<InputRecord> inputs = db->get_inputs(id).value();
  ASSERT_EQ(inputs.size(), res.inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(inputs[i].index, res.inputs[i].index);
    EXPECT_EQ(inputs[i].text, res.inputs[i].text);
    EXPECT_EQ(inputs[i].token_ids, res.inputs[i].token_ids);
    EXPECT_EQ(inputs[i].tokens, res.inputs[i].tokens);
  }

  std::vector<HeadScores> scores = db->get_head_scores(id).value();
  ASSERT_EQ(scores.size(), 4u);  // sorted by metric name
  std::map<std::string, const HeadScores*> want;
  for (const auto& s : res.scores) want[s.metric] = &s;
  for (const HeadScores& s : scores) {
    ASSERT_TRUE(want.count(s.metric)) << s.metric;
    EXPECT_EQ(s.n_layers, 4);
    EXPECT_EQ(s.n_heads, 8);
    expect_equal_values(want[s.metric]->values, s.values);
  }
  EXPECT_EQ(scores.front().metric, "dla");
  HeadScores one = db->get_head_scores(id, "retrieval_score").value();
  EXPECT_EQ(one.metric, "retrieval_score");
  EXPECT_TRUE(std::isinf(one.values[6]));
  EXPECT_EQ(one.values[4], 0.0);
  EXPECT_EQ(db->get_head_scores(id, "nope").error().code, ErrorCode::kUsage);

  std::vector<TensorInfo> tensors = db->list_tensors(id).value();
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[0].name, "attn.L1.H2");
  EXPECT_EQ(tensors[0].dtype, "float32");
  EXPECT_EQ(tensors[0].shape, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(tensors[0].raw_bytes, 400);
  EXPECT_LT(tensors[0].stored_bytes, tensors[0].raw_bytes);  // compressed
  EXPECT_EQ(tensors[0].meta_json, res.tensors[0].meta_json);
  for (const auto& t : res.tensors) EXPECT_TRUE(bitwise_equal(db->get_tensor(id, t.name).value(), t.tensor)) << t.name;

  std::vector<Circuit> circuits = db->get_circuits(id).value();
  ASSERT_EQ(circuits.size(), 1u);
  const Circuit& c = circuits[0];
  const Circuit want_c = test::demo_circuit();
  EXPECT_EQ(c.name, want_c.name);
  EXPECT_EQ(c.meta_json, want_c.meta_json);
  ASSERT_EQ(c.nodes.size(), want_c.nodes.size());
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    EXPECT_EQ(c.nodes[i].name, want_c.nodes[i].name);
    EXPECT_EQ(c.nodes[i].kind, want_c.nodes[i].kind);
    EXPECT_EQ(c.nodes[i].layer, want_c.nodes[i].layer);
    EXPECT_EQ(c.nodes[i].head, want_c.nodes[i].head);
    EXPECT_EQ(c.nodes[i].score, want_c.nodes[i].score);
  }
  ASSERT_EQ(c.edges.size(), want_c.edges.size());
  for (size_t i = 0; i < c.edges.size(); ++i) {
    EXPECT_EQ(c.edges[i].src, want_c.edges[i].src);
    EXPECT_EQ(c.edges[i].dst, want_c.edges[i].dst);
    EXPECT_EQ(c.edges[i].score, want_c.edges[i].score);
  }
}

TEST(Storage, TensorsOfEveryDtypeBitwise) {
  auto db = fresh_db();
  at::manual_seed(3);
  RunResults res;
  at::Tensor f = at::randn({3, 5, 7});
  f[0][0][0] = NAN;
  f[0][0][1] = -INFINITY;
  res.tensors.push_back({"f32", f});
  res.tensors.push_back({"f64", at::randn({4, 4}, at::kDouble)});
  res.tensors.push_back({"f16", at::randn({8, 3}).to(at::kHalf)});
  res.tensors.push_back({"bf16", at::randn({8, 3}).to(at::kBFloat16)});
  res.tensors.push_back({"i64", at::randint(-1000000, 1000000, {17}, at::kLong)});
  res.tensors.push_back({"i32", at::randint(-1000, 1000, {2, 9}, at::kInt)});
  res.tensors.push_back({"i16", at::randint(-1000, 1000, {5}, at::kShort)});
  res.tensors.push_back({"i8", at::randint(-100, 100, {5}, at::kChar)});
  res.tensors.push_back({"u8", at::randint(0, 255, {6}, at::kByte)});
  res.tensors.push_back({"bool", at::rand({11}) > 0.5});
  res.tensors.push_back({"scalar", at::scalar_tensor(3.25)});
  res.tensors.push_back({"empty", at::empty({0, 4})});
  res.tensors.push_back({"strided", at::randn({6, 4}).t()});  // non-contiguous
  res.tensors.push_back({"big_zeros", at::zeros({512, 512})});
  int64_t id = db->store_run({"heads"}, res).value();
  for (const auto& t : res.tensors) {
    at::Tensor back = db->get_tensor(id, t.name).value();
    EXPECT_TRUE(bitwise_equal(back, t.tensor)) << t.name;
  }
  std::vector<TensorInfo> infos = db->list_tensors(id).value();
  EXPECT_EQ(infos.back().raw_bytes, 512 * 512 * 4);
  EXPECT_LT(infos.back().stored_bytes, 10000);  // zeros compress
  EXPECT_EQ(db->get_tensor(id, "missing").error().code, ErrorCode::kUsage);
  RunResults bad;
  bad.tensors.push_back({"complex", at::randn({2}, at::kComplexFloat)});
  Result<int64_t> r = db->store_run({"heads"}, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("complex"), std::string::npos) << r.error().message;
}

TEST(Storage, RunLifeCycle) {
  auto db = fresh_db();
  int64_t id = db->begin_run({"retrieval", 0, "{\"depths\":[0.1,0.5]}"}).value();
  RunInfo r = db->get_run(id).value();
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_EQ(r.pid, static_cast<int64_t>(::getpid()));
  EXPECT_TRUE(r.finished_at.empty());
  ASSERT_TRUE(db->set_progress(id, 0.25).ok());
  EXPECT_DOUBLE_EQ(db->get_run(id).value().progress, 0.25);
  std::vector<int64_t> seen;
  ASSERT_TRUE(db->finish_run(id, test::demo_results(), [&](int64_t rows) { seen.push_back(rows); }).ok());
  EXPECT_FALSE(seen.empty());
  r = db->get_run(id).value();
  EXPECT_EQ(r.status, RunStatus::kDone);
  EXPECT_EQ(r.progress, 1.0);
  EXPECT_FALSE(r.finished_at.empty());
  Status again = db->finish_run(id, test::demo_results());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already done"), std::string::npos) << again.error().message;

  int64_t failed = db->begin_run({"sinks"}).value();
  ASSERT_TRUE(db->fail_run(failed, "out of memory on cuda:0").ok());
  r = db->get_run(failed).value();
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_EQ(r.error, "out of memory on cuda:0");

  int64_t queued = db->queue_run(test::keyed_spec("batch-item", "prompt-3")).value();
  EXPECT_EQ(db->get_run(queued).value().status, RunStatus::kQueued);
  EXPECT_TRUE(db->get_run(queued).value().started_at.empty());
  ASSERT_TRUE(db->start_run(queued).ok());
  EXPECT_EQ(db->get_run(queued).value().status, RunStatus::kRunning);
  EXPECT_FALSE(db->start_run(queued).ok());
  ASSERT_TRUE(db->cancel_run(queued).ok());
  EXPECT_EQ(db->get_run(queued).value().status, RunStatus::kCancelled);
  EXPECT_EQ(db->get_run(queued).value().error, "cancelled by the user");

  Result<RunInfo> none = db->get_run(12345);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kUsage);
  EXPECT_NE(none.error().message.find("no run 12345"), std::string::npos);
}

TEST(Storage, ResumeKeysAndBatches) {
  auto db = fresh_db();
  std::vector<RunWrite> batch;
  for (int i = 0; i < 5; ++i) {
    RunWrite w;
    w.spec = test::keyed_spec("batch-item", "prompt-" + std::to_string(i));
    w.results.scores.push_back(test::demo_scores("sink_rate", 2, 2, i));
    batch.push_back(w);
  }
  std::vector<int64_t> ids = db->store_runs(batch).value();
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(db->find_done_run("batch-item", "prompt-3").value(), ids[3]);
  EXPECT_FALSE(db->find_done_run("batch-item", "prompt-9").value().has_value());
  EXPECT_FALSE(db->find_done_run("sinks", "prompt-3").value().has_value());
  EXPECT_FALSE(db->find_done_run("batch-item", "").value().has_value());
  // A failing item makes the whole batch write roll back.
  batch[2].results.scores[0].values.pop_back();
  EXPECT_FALSE(db->store_runs(batch).ok());
  EXPECT_EQ(db->list_runs().value().size(), 5u);
}

TEST(Storage, ListRunsWithCountsAndFilters) {
  auto db = fresh_db();
  int64_t model = db->register_model(test::demo_model()).value();
  int64_t a = db->store_run(test::demo_spec(model, "sinks"), test::demo_results()).value();
  int64_t b = db->store_run(test::demo_spec(model, "retrieval"), test::demo_results()).value();
  int64_t c = db->begin_run({"heads"}).value();
  std::vector<RunSummary> all = db->list_runs().value();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].run.id, c);  // newest first
  EXPECT_EQ(all[2].run.id, a);
  EXPECT_EQ(all[2].n_inputs, 2);
  EXPECT_EQ(all[2].n_scores, 4 * 4 * 8);
  EXPECT_EQ(all[2].n_metrics, 4);
  EXPECT_EQ(all[2].n_tensors, 2);
  EXPECT_EQ(all[2].n_circuits, 1);
  EXPECT_EQ(all[2].model_path, "/models/tiny-gpt2");
  EXPECT_EQ(all[0].model_path, "");
  RunFilter f;
  f.kind = "retrieval";
  EXPECT_EQ(db->list_runs(f).value().at(0).run.id, b);
  f = {};
  f.status = RunStatus::kRunning;
  EXPECT_EQ(db->list_runs(f).value().size(), 1u);
  f = {};
  f.limit = 2;
  EXPECT_EQ(db->list_runs(f).value().size(), 2u);
  f = {};
  f.model_id = model;
  EXPECT_EQ(db->list_runs(f).value().size(), 2u);
}

TEST(Storage, LinksAndDeleteCascade) {
  auto db = fresh_db();
  int64_t base = db->store_run({"heads"}, test::demo_results()).value();
  RunResults derived = test::demo_results();
  derived.links.push_back({0, "masked-from", base});
  int64_t masked = db->store_run({"heads", 0, "{\"ablate\":[[1,2]]}"}, derived).value();
  int64_t cal = db->store_run({"sinks"}, {}).value();
  ASSERT_TRUE(db->add_link({cal, "calibrated-from", base}).ok());
  std::vector<RunLink> links = db->get_links(base).value();
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0].run_id, masked);
  EXPECT_EQ(links[0].relation, "masked-from");
  EXPECT_EQ(links[0].source_run_id, base);
  EXPECT_EQ(links[1].run_id, cal);
  EXPECT_EQ(db->get_links(masked).value().size(), 1u);
  EXPECT_FALSE(db->add_link({cal, "derived-from", 999}).ok());

  ASSERT_TRUE(db->delete_run(base).ok());
  EXPECT_FALSE(db->get_run(base).ok());
  EXPECT_TRUE(db->get_links(masked).value().empty());
  std::string p = db->path();
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM head_scores WHERE run_id = 1"), 0);
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM inputs WHERE run_id = 1"), 0);
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM tensors WHERE run_id = 1"), 0);
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM circuits WHERE run_id = 1"), 0);
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM circuit_nodes"), 6);  // the masked run's circuit
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM circuit_edges"), 7);
  ASSERT_TRUE(db->delete_run(masked).ok());
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM circuit_nodes"), 0);
  EXPECT_EQ(count_rows(p, "SELECT count(*) FROM circuit_edges"), 0);
  EXPECT_EQ(db->delete_run(masked).error().code, ErrorCode::kUsage);

  int64_t live = db->begin_run({"sinks"}).value();  // this process is alive: refused
  EXPECT_FALSE(db->delete_run(live).ok());
  EXPECT_EQ(db->integrity_check().value(), "ok");
}

TEST(Storage, InvalidResultsAreRefusedWhole) {
  auto db = fresh_db();
  RunResults bad = test::demo_results();
  bad.scores[2].values.resize(3);
  Result<int64_t> r = db->store_run({"sinks"}, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("induction_score"), std::string::npos) << r.error().message;
  bad = test::demo_results();
  bad.circuits[0].edges.push_back({0, 99, 1.0});
  EXPECT_FALSE(db->store_run({"circuit"}, bad).ok());
  bad = test::demo_results();
  bad.scores.push_back(bad.scores[0]);  // the same metric twice: constraint error, rolled back
  EXPECT_FALSE(db->store_run({"sinks"}, bad).ok());
  EXPECT_EQ(db->list_runs().value().size(), 0u);
  EXPECT_EQ(count_rows(db->path(), "SELECT count(*) FROM head_scores"), 0);
  EXPECT_FALSE(db->store_run({""}, {}).ok());  // a run needs a kind
}

TEST(Storage, ModelIdentityFromWeightFiles) {
  std::string dir = test::temp_dir("storage-model") + "/m";
  RandomModelSpec spec;
  spec.n_layers = 2;
  spec.d_model = 32;
  spec.n_heads = 4;
  spec.d_vocab = 64;
  ASSERT_TRUE(write_random_model(spec, dir, false).ok());
  auto model = Model::load(dir);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto db = fresh_db();
  int64_t id = db->register_model(**model).value();
  ModelInfo info = db->get_model(id).value();
  std::string weights = dir + "/model.safetensors";
  EXPECT_EQ(info.content_hash, combine_file_hashes({fs::absolute(weights).string()}, sha256_file));
  EXPECT_EQ(info.content_hash.rfind("sha256:", 0), 0u);
  EXPECT_EQ(info.architecture, "gpt2");
  EXPECT_EQ(info.n_params, (*model)->parameter_count());
  EXPECT_EQ(info.path, fs::absolute(dir).string());
  EXPECT_EQ(count_rows(db->path(), "SELECT count(*) FROM file_hashes"), 1);
  EXPECT_EQ(db->register_model(**model).value(), id);  // cached hash, same model

  // Change one byte of the weights (and the mtime): a different model.
  std::string bytes = test::read_file(weights);
  bytes[bytes.size() - 3] ^= 0x01;
  test::write_file(weights, bytes);
  fs::last_write_time(weights, fs::last_write_time(weights) + std::chrono::seconds(5));
  int64_t changed = db->register_model(**model).value();
  EXPECT_NE(changed, id);
  EXPECT_NE(db->get_model(changed).value().content_hash, info.content_hash);

  // In-memory models hash their tensors.
  ModelConfig cfg = (*model)->config();
  auto mem = Model::from_weights(cfg, random_weights(cfg, 1));
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  int64_t mem_id = db->register_model(**mem).value();
  EXPECT_EQ(db->get_model(mem_id).value().content_hash.rfind("sha256-tensors:", 0), 0u);
  auto mem2 = Model::from_weights(cfg, random_weights(cfg, 1));
  EXPECT_EQ(db->register_model(**mem2).value(), mem_id);
  auto mem3 = Model::from_weights(cfg, random_weights(cfg, 2));
  EXPECT_NE(db->register_model(**mem3).value(), mem_id);
}

TEST(Storage, CompareModelsOfDifferentShapes) {
  HeadScores a = test::demo_scores("sink_rate", 2, 4, 0), b = test::demo_scores("sink_rate", 3, 2, 0);
  b.values[0] = a.values[0] + 0.5;  // layer 0 head 0
  b.values[1] = a.values[1];        // layer 0 head 1
  b.values[2] = a.values[4] - 0.25; // layer 1 head 0
  b.values[3] = a.values[5];        // layer 1 head 1
  a.values[7] = NAN;                // not computed in a
  MetricComparison m = compare_scores(a, b);
  EXPECT_EQ(m.n_common, 4);
  EXPECT_EQ(m.only_a, 3);  // heads 2, 3 of layer 0 and head 2 of layer 1 (head 3 is NaN)
  EXPECT_EQ(m.only_b, 2);  // layer 2
  ASSERT_EQ(m.heads.size(), 4u);
  EXPECT_EQ(m.heads[0].layer, 0);
  EXPECT_EQ(m.heads[0].head, 0);
  EXPECT_DOUBLE_EQ(m.heads[0].diff, 0.5);
  EXPECT_EQ(m.heads[1].layer, 1);
  EXPECT_DOUBLE_EQ(m.heads[1].diff, -0.25);
  EXPECT_DOUBLE_EQ(m.max_abs_diff, 0.5);
  EXPECT_DOUBLE_EQ(m.mean_abs_diff, 0.75 / 4);
  EXPECT_TRUE(std::isnan(compare_scores(HeadScores{"x", 1, 1, {1.0}}, HeadScores{"x", 1, 1, {2.0}}).pearson));

  auto db = fresh_db();
  RunResults ra, rb;
  ra.scores = {a, test::demo_scores("dla", 2, 4, 1, true)};
  rb.scores = {b, test::demo_scores("induction_score", 3, 2, 1)};
  int64_t ia = db->store_run({"sinks"}, ra).value(), ib = db->store_run({"sinks"}, rb).value();
  RunComparison c = compare_runs(*db, ia, ib).value();
  ASSERT_EQ(c.metrics.size(), 1u);
  EXPECT_EQ(c.metrics[0].metric, "sink_rate");
  EXPECT_EQ(c.only_a, std::vector<std::string>{"dla"});
  EXPECT_EQ(c.only_b, std::vector<std::string>{"induction_score"});
  EXPECT_EQ(compare_runs(*db, ia, ib, CompareOptions{"dla"}).error().code, ErrorCode::kUsage);
}

// Runs of different models: refused unless asked, and never across different shapes.
TEST(Storage, CompareRunsOfDifferentModels) {
  auto db = fresh_db();
  int64_t m1 = db->register_model(test::demo_model("sha256:11", 4, 8)).value();
  int64_t m2 = db->register_model(test::demo_model("sha256:22", 4, 8)).value();
  int64_t m3 = db->register_model(test::demo_model("sha256:33", 2, 4)).value();
  int64_t r1 = db->store_run(test::demo_spec(m1), test::demo_results(4, 8, 0)).value();
  int64_t r1b = db->store_run(test::demo_spec(m1), test::demo_results(4, 8, 1)).value();
  int64_t r2 = db->store_run(test::demo_spec(m2), test::demo_results(4, 8, 0)).value();
  int64_t r3 = db->store_run(test::demo_spec(m3), test::demo_results(2, 4, 0)).value();
  RunComparison same = compare_runs(*db, r1, r1b).value();
  EXPECT_TRUE(same.same_model);
  EXPECT_EQ(same.note, "");
  Result<RunComparison> other = compare_runs(*db, r1, r2);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kUsage);
  EXPECT_NE(other.error().message.find("two different models"), std::string::npos) << other.error().message;
  RunComparison asked = compare_runs(*db, r1, r2, CompareOptions{"", true}).value();
  EXPECT_FALSE(asked.same_model);
  EXPECT_NE(asked.note.find("matched by layer.head"), std::string::npos);
  EXPECT_EQ(asked.metrics.size(), test::demo_results(4, 8, 0).scores.size());
  Result<RunComparison> shapes = compare_runs(*db, r1, r3, CompareOptions{"", true});
  ASSERT_FALSE(shapes.ok());
  EXPECT_NE(shapes.error().message.find("shapes differ (4x8 and 2x4"), std::string::npos) << shapes.error().message;
}

TEST(Storage, ShellJoinQuotes) {
  EXPECT_EQ(shell_join({"mechscope", "sinks", "--text", "it's <b>", "--n", "3"}),
            "mechscope sinks --text 'it'\\''s <b>' --n 3");
  EXPECT_EQ(shell_join({"a", ""}), "a ''");
}

}  // namespace
}  // namespace ms
