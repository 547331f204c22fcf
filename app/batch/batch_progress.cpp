// Batch progress: two TTY bars, plain lines, or JSON events (see batch_progress.h).
#include "app/batch/batch_progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace ms::app::batch {
namespace {

std::string bar(double frac, int width) {
  int filled = static_cast<int>(frac * width);
  if (filled > width) filled = width;
  return std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.');
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

BatchProgress::BatchProgress(bool json, int64_t n_items)
    : m_json(json), m_tty(!json && ::isatty(2) != 0), m_total(n_items > 0 ? n_items : 0),
      m_start(std::chrono::steady_clock::now()), m_item_start(m_start), m_last_draw(m_start) {}

BatchProgress::~BatchProgress() {
  if (m_tty && m_drawn) std::fputc('\n', stderr);
}

void BatchProgress::event(const std::string& name, nlohmann::json fields) {
  if (!m_json) return;
  for (auto it = m_context.begin(); it != m_context.end(); ++it) fields[it.key()] = it.value();
  fields["event"] = name;
  fields["t"] = since(m_start);
  std::cout << fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n" << std::flush;
}

void BatchProgress::message(const std::string& text) {
  if (m_json) return event("message", {{"text", text}});
  if (m_tty && m_drawn) std::fprintf(stderr, "\033[1A\r\033[K");  // print above the bars
  std::fprintf(stderr, "%s\n", text.c_str());
  if (m_tty && m_drawn) {
    m_drawn = false;
    draw(true);
  }
}

void BatchProgress::item_start(const std::string& key) {
  m_key = key;
  m_item_done = 0;
  m_item_total = 0;
  m_item_decile = -1;
  m_item_start = std::chrono::steady_clock::now();
  event("item_start", {{"key", key}, {"index", m_done}, {"items", m_total}});
  if (m_tty) draw(true);
  else if (!m_json)
    std::fprintf(stderr, "[%lld/%lld] %s: started\n", static_cast<long long>(m_done + 1), static_cast<long long>(m_total), key.c_str());
}

void BatchProgress::item_progress(int64_t done, int64_t total) {
  m_item_done = done;
  m_item_total = total;
  int64_t decile = total > 0 ? done * 10 / total : 0;
  bool new_decile = decile != m_item_decile;
  m_item_decile = decile;
  if (m_json) {
    if (new_decile) event("item_progress", {{"key", m_key}, {"done", done}, {"total", total}});
  } else if (m_tty) {
    draw(false);
  } else if (new_decile && done < total && since(m_item_start) > 2.0) {  // long items only
    std::fprintf(stderr, "[%lld/%lld] %s: %lld/%lld\n", static_cast<long long>(m_done + 1), static_cast<long long>(m_total),
                 m_key.c_str(), static_cast<long long>(done), static_cast<long long>(total));
  }
}

void BatchProgress::item_end(const std::string& status, nlohmann::json fields) {
  ++m_done;
  double secs = since(m_item_start);
  fields["key"] = m_key;
  fields["status"] = status;
  fields["seconds"] = secs;
  event("item_" + status, fields);
  if (m_tty) {
    draw(true);
  } else if (!m_json) {
    std::fprintf(stderr, "[%lld/%lld] %s: %s (%.1fs)\n", static_cast<long long>(m_done), static_cast<long long>(m_total),
                 m_key.c_str(), status.c_str(), secs);
  }
}

void BatchProgress::finish() {
  if (m_tty && m_drawn) {
    draw(true);
    std::fputc('\n', stderr);
    m_drawn = false;
  }
}

void BatchProgress::draw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - m_last_draw < std::chrono::milliseconds(100)) return;
  m_last_draw = now;
  if (m_drawn) std::fprintf(stderr, "\033[1A\r");
  double all = m_total > 0 ? static_cast<double>(m_done) / static_cast<double>(m_total) : 1.0;
  std::fprintf(stderr, "batch [%s] %lld/%lld items %.0fs\033[K\n", bar(all, 30).c_str(), static_cast<long long>(m_done),
               static_cast<long long>(m_total), since(m_start));
  double item = m_item_total > 0 ? static_cast<double>(m_item_done) / static_cast<double>(m_item_total) : 0.0;
  std::fprintf(stderr, "item  [%s] %lld/%lld %s\033[K", bar(item, 30).c_str(), static_cast<long long>(m_item_done),
               static_cast<long long>(m_item_total), m_key.c_str());
  std::fflush(stderr);
  m_drawn = true;
}

}  // namespace ms::app::batch
