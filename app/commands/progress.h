// A progress bar on stderr for long commands: redrawn in place on a terminal, a plain line every
// tenth of the work (and at the end) otherwise, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runs/run_control.h"

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



// Shows a RunControl's progress as bars on stderr: a new bar (label, then "label (2)", ...) each
// time the work's total changes (e.g. the analysis, then ACT's search); finished when destroyed.
class ControlBar {
 public:
  ControlBar(RunControl& control, std::string label, bool quiet);
  ~ControlBar();
  void finish(const std::string& note = "");

 private:
  struct State {
    std::string label;
    bool quiet;
    int64_t total = -1, phase = 0;
    std::unique_ptr<ProgressBar> bar;
  };
  RunControl& m_control;
  std::shared_ptr<State> m_state;
};

}  // namespace ms::app
