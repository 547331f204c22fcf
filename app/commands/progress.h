// A progress bar on stderr for long commands: redrawn in place on a terminal, a plain line every
// tenth of the work (and at the end) otherwise, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ms::app {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool quiet = false);
  ~ProgressBar();
  // done of total; note is shown after the bar (e.g. "loss 2.31, 1.2k tok/s").
  void update(int64_t done, const std::string& note = "");
  void finish(const std::string& note = "");

 private:
  std::string m_label;
  int64_t m_total;
  bool m_quiet, m_tty, m_finished = false;
  int64_t m_last_decile = -1;
  int64_t m_last_done = -1;
  std::chrono::steady_clock::time_point m_start, m_last_draw;
};

}  // namespace ms::app
