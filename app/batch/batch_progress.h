// What `mechscope batch` shows while it works: on a terminal two bars redrawn in place (all items,
// the current item); otherwise plain lines (item starts and ends, each tenth of an item); with
// --json one JSON object per line on stdout for every event, nothing else on stdout.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ms::app::batch {

class BatchProgress {
 public:
  BatchProgress(bool json, int64_t n_items);
  ~BatchProgress();
  // Fields added to every JSON event (e.g. the shard, when several processes share a log).
  void set_context(nlohmann::json fields) { m_context = std::move(fields); }
  // Any event: printed as a JSON line in --json mode (with "event": name), else ignored.
  void event(const std::string& name, nlohmann::json fields = nlohmann::json::object());
  // A plain message (stderr; a JSON "message" event in --json mode).
  void message(const std::string& text);
  void item_start(const std::string& key);
  void item_progress(int64_t done, int64_t total);
  // status: "done", "skipped" (already stored), "failed"; fields go into the JSON event.
  void item_end(const std::string& status, nlohmann::json fields);
  void finish();

 private:
  void draw(bool force);
  bool m_json, m_tty;
  nlohmann::json m_context = nlohmann::json::object();
  int64_t m_total, m_done = 0;
  std::string m_key;
  int64_t m_item_done = 0, m_item_total = 0, m_item_decile = -1;
  bool m_drawn = false;
  std::chrono::steady_clock::time_point m_start, m_item_start, m_last_draw;
};

}  // namespace ms::app::batch
