// Progress bar on stderr (TTY-aware).
#include "app/commands/progress.h"

#include <unistd.h>

#include <cstdio>

namespace ms::app {

ProgressBar::ProgressBar(std::string label, int64_t total, bool quiet)
    : m_label(std::move(label)), m_total(total > 0 ? total : 1), m_quiet(quiet),
      m_tty(::isatty(2) != 0), m_start(std::chrono::steady_clock::now()), m_last_draw(m_start) {}

ProgressBar::~ProgressBar() {
  if (!m_finished && m_tty && !m_quiet) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done, const std::string& note) {
  if (m_quiet) return;
  m_last_done = done;
  auto now = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(now - m_start).count();
  const double frac = static_cast<double>(done) / static_cast<double>(m_total);
  if (m_tty) {
    if (done < m_total && now - m_last_draw < std::chrono::milliseconds(100)) return;
    m_last_draw = now;
    const int width = 30, filled = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar += std::string(static_cast<size_t>(width - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %.0fs %s\033[K", m_label.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(m_total), secs, note.c_str());
  } else {
    int64_t decile = static_cast<int64_t>(frac * 10);
    if (decile == m_last_decile && done < m_total) return;
    m_last_decile = decile;
    std::fprintf(stderr, "%s: %lld/%lld (%.0f%%) %.0fs %s\n", m_label.c_str(), static_cast<long long>(done),
                 static_cast<long long>(m_total), 100 * frac, secs, note.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish(const std::string& note) {
  if (m_finished) return;
  if (m_last_done != m_total || !note.empty() || m_tty) update(m_total, note);
  if (m_tty && !m_quiet) std::fputc('\n', stderr);
  m_finished = true;
}



ControlBar::ControlBar(RunControl& control, std::string label, bool quiet)
    : m_control(control), m_state(std::make_shared<State>()) {
  m_state->label = std::move(label);
  m_state->quiet = quiet;
  std::shared_ptr<State> s = m_state;
  m_control.set_listener([s](int64_t done, int64_t total) {
    if (total != s->total || !s->bar) {
      if (s->bar) s->bar->finish();
      s->total = total;
      ++s->phase;
      s->bar = std::make_unique<ProgressBar>(s->phase == 1 ? s->label : s->label + " (" + std::to_string(s->phase) + ")",
                                             total, s->quiet);
    }
    s->bar->update(done);
  });
}

void ControlBar::finish(const std::string& note) {
  if (m_state->bar) m_state->bar->finish(note);
  m_state->bar.reset();
}

ControlBar::~ControlBar() {
  m_control.set_listener({});
  finish();
}

}  // namespace ms::app
