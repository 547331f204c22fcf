// Feature dashboards as stored rows (schema step 3): feature_cards (one per run and feature) and
// feature_examples (its top-activating windows). Histograms are int64 and window activations
// float32, little-endian blobs; token ids, labels and logit lists are JSON. Reading checks every
// length, so a damaged file is bad input (fuzz_database reads these rows).
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/json_input.h"
#include "storage/database_impl.h"

namespace ms {
namespace storage_detail {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "feature blobs are written in host order");

constexpr int64_t kMaxBins = 1 << 20;
constexpr int64_t kMaxWindow = 1 << 16;

nlohmann::json logits_json(const std::vector<LogitEffect>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const LogitEffect& e : v) j.push_back({e.token_id, e.token, e.value});
  return j;
}

std::vector<LogitEffect> logits_from(const std::string& text, const std::string& where) {
  nlohmann::json j = parse_json_or_discarded(text);
  if (!j.is_array()) throw InputError(where + ": the logit list is not a JSON list");
  std::vector<LogitEffect> out;
  for (const auto& e : j) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_number_integer() || !e[1].is_string() || !e[2].is_number())
      throw InputError(where + ": a logit entry is not [token_id, label, value]");
    const int64_t id = e[0].get<int64_t>();
    if (id < 0 || id > INT32_MAX) throw InputError(where + ": a logit entry's token id is out of range");
    out.push_back({static_cast<int32_t>(id), e[1].get<std::string>(), e[2].get<float>()});
  }
  return out;
}

std::vector<int32_t> ids_from(const std::string& text, const std::string& where) {
  nlohmann::json j = parse_json_or_discarded(text);
  if (!j.is_array()) throw InputError(where + ": token_ids is not a JSON list");
  std::vector<int32_t> out;
  for (const auto& v : j) {
    if (!v.is_number_integer()) throw InputError(where + ": token_ids holds a non-integer");
    const int64_t id = v.get<int64_t>();
    if (id < INT32_MIN || id > INT32_MAX) throw InputError(where + ": a token id is out of range");
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

std::vector<std::string> strings_from(const std::string& text, const std::string& where) {
  nlohmann::json j = parse_json_or_discarded(text);
  if (!j.is_array()) throw InputError(where + ": tokens is not a JSON list");
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) throw InputError(where + ": tokens holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

template <typename T>
std::vector<T> blob_values(const std::string& b, const std::string& where, const char* what) {
  if (b.size() % sizeof(T) != 0) throw InputError(where + ": " + what + " has " + std::to_string(b.size()) + " bytes, not a whole number of values");
  std::vector<T> out(b.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

}  // namespace

int64_t insert_feature_cards(sql::Connection& c, int64_t run_id, const std::vector<FeatureCard>& cards) {
  int64_t rows = 0;
  for (const FeatureCard& card : cards) {
    sql::Stmt& s = c.stmt(
        "INSERT INTO feature_cards (run_id, feature, n_tokens, n_firing, max_act, hist_max, histogram, top_logits, "
        "bottom_logits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run_id).bind(2, card.feature).bind(3, card.n_tokens).bind(4, card.n_firing);
    s.bind(5, static_cast<double>(card.max_act)).bind(6, card.hist_max);
    s.bind_blob(7, card.histogram.data(), card.histogram.size() * sizeof(int64_t));
    s.bind(8, logits_json(card.top_logits).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    s.bind(9, logits_json(card.bottom_logits).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    s.run();
    ++rows;
    for (const FeatureExample& e : card.examples) {
      if (e.acts.size() != e.token_ids.size() || (!e.tokens.empty() && e.tokens.size() != e.token_ids.size()))
        throw std::invalid_argument("feature " + std::to_string(card.feature) + " example " + std::to_string(e.rank) +
                                    ": window lengths differ");
      sql::Stmt& x = c.stmt(
          "INSERT INTO feature_examples (run_id, feature, rank, prompt, position, activation, window_start, token_ids, "
          "tokens, acts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      x.bind(1, run_id).bind(2, card.feature).bind(3, e.rank).bind(4, e.prompt).bind(5, e.position);
      x.bind(6, static_cast<double>(e.activation)).bind(7, e.window_start);
      x.bind(8, nlohmann::json(e.token_ids).dump());
      x.bind(9, nlohmann::json(e.tokens).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      x.bind_blob(10, e.acts.data(), e.acts.size() * sizeof(float));
      x.run();
      ++rows;
    }
  }
  return rows;
}

void copy_feature_rows(sql::Connection& src, sql::Connection& dst, int64_t from, int64_t to) {
  sql::Stmt& f = src.stmt(
      "SELECT feature, n_tokens, n_firing, max_act, hist_max, histogram, top_logits, bottom_logits FROM feature_cards "
      "WHERE run_id = ? ORDER BY feature");
  f.bind(1, from);
  while (f.step()) {
    sql::Stmt& w = dst.stmt(
        "INSERT INTO feature_cards (run_id, feature, n_tokens, n_firing, max_act, hist_max, histogram, top_logits, "
        "bottom_logits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const std::string hist = f.blob(5);
    w.bind(1, to).bind(2, f.i64(0)).bind(3, f.i64(1)).bind(4, f.i64(2)).bind(5, f.f64(3)).bind(6, f.f64(4));
    w.bind_blob(7, hist.data(), hist.size()).bind(8, f.text(6)).bind(9, f.text(7)).run();
  }
  f.reset();
  sql::Stmt& e = src.stmt(
      "SELECT feature, rank, prompt, position, activation, window_start, token_ids, tokens, acts FROM feature_examples "
      "WHERE run_id = ? ORDER BY feature, rank");
  e.bind(1, from);
  while (e.step()) {
    sql::Stmt& w = dst.stmt(
        "INSERT INTO feature_examples (run_id, feature, rank, prompt, position, activation, window_start, token_ids, "
        "tokens, acts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const std::string acts = e.blob(8);
    w.bind(1, to).bind(2, e.i64(0)).bind(3, e.i64(1)).bind(4, e.i64(2)).bind(5, e.i64(3)).bind(6, e.f64(4));
    w.bind(7, e.i64(5)).bind(8, e.text(6)).bind(9, e.text(7)).bind_blob(10, acts.data(), acts.size()).run();
  }
  e.reset();
}

}  // namespace storage_detail

using namespace storage_detail;

Result<std::vector<FeatureCard>> Database::get_feature_cards(int64_t run_id, const std::vector<int64_t>& features,
                                                             bool cards_only) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    std::vector<FeatureCard> out;
    std::map<int64_t, size_t> at;  // feature -> index in out
    auto read_card = [&](sql::Stmt& s) {
      FeatureCard card;
      card.feature = s.i64(0);
      const std::string where = path() + ": run " + std::to_string(run_id) + " feature " + std::to_string(card.feature);
      card.n_tokens = s.i64(1);
      card.n_firing = s.i64(2);
      card.max_act = static_cast<float>(s.f64(3));
      card.hist_max = s.f64(4);
      card.histogram = blob_values<int64_t>(s.blob(5), where, "histogram");
      if (static_cast<int64_t>(card.histogram.size()) > kMaxBins) throw InputError(where + ": the histogram has too many bins");
      card.top_logits = logits_from(s.text(6), where);
      card.bottom_logits = logits_from(s.text(7), where);
      at[card.feature] = out.size();
      out.push_back(std::move(card));
    };
    const char* kCard =
        "SELECT feature, n_tokens, n_firing, max_act, hist_max, histogram, top_logits, bottom_logits FROM feature_cards "
        "WHERE run_id = ?1 AND (?2 < 0 OR feature = ?2) ORDER BY feature";
    if (features.empty()) {
      sql::Stmt& s = c.stmt(kCard);
      s.bind(1, run_id).bind(2, int64_t{-1});
      while (s.step()) read_card(s);
      s.reset();
    } else {
      for (int64_t f : features) {
        if (f < 0 || at.count(f)) continue;
        sql::Stmt& s = c.stmt(kCard);
        s.bind(1, run_id).bind(2, f);
        while (s.step()) read_card(s);
        s.reset();
      }
    }
    if (cards_only) return out;
    for (FeatureCard& card : out) {
      sql::Stmt& s = c.stmt(
          "SELECT rank, prompt, position, activation, window_start, token_ids, tokens, acts FROM feature_examples "
          "WHERE run_id = ? AND feature = ? ORDER BY rank");
      s.bind(1, run_id).bind(2, card.feature);
      while (s.step()) {
        FeatureExample e;
        e.rank = static_cast<int>(s.i64(0));
        const std::string where = path() + ": run " + std::to_string(run_id) + " feature " +
                                  std::to_string(card.feature) + " example " + std::to_string(e.rank);
        e.prompt = s.i64(1);
        e.position = s.i64(2);
        e.activation = static_cast<float>(s.f64(3));
        e.window_start = s.i64(4);
        e.token_ids = ids_from(s.text(5), where);
        e.tokens = strings_from(s.text(6), where);
        e.acts = blob_values<float>(s.blob(7), where, "acts");
        if (static_cast<int64_t>(e.token_ids.size()) > kMaxWindow || e.acts.size() != e.token_ids.size() ||
            (!e.tokens.empty() && e.tokens.size() != e.token_ids.size()))
          throw InputError(where + ": the window's token ids, labels and activations differ in length");
        card.examples.push_back(std::move(e));
      }
      s.reset();
    }
    (void)at;
    return out;
  });
}

Result<int64_t> Database::count_feature_cards(int64_t run_id) {
  return guard([&]() {
    sql::Stmt& s = m_impl->conn.stmt("SELECT count(*) FROM feature_cards WHERE run_id = ?");
    s.bind(1, run_id);
    const int64_t n = s.step() ? s.i64(0) : 0;
    s.reset();
    return n;
  });
}

}  // namespace ms
