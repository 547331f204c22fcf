// A per-operation time profile for the benchmarks, from LibTorch's RecordFunction callbacks: every
// ATen operation and every mechscope scope (RECORD_USER_SCOPE, e.g. "mechscope::fused_attention")
// is timed; self time is its time minus the time of the operations it called, so the self times
// add up to the profiled wall time (less what ran outside any operation). Call counts included.
#pragma once

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ms::bench {

class OpProfile {
 public:
  OpProfile() {
    instance() = this;
    m_t0 = Clock::now();
    m_handle = at::addGlobalCallback(at::RecordFunctionCallback(&OpProfile::on_start, &OpProfile::on_end)
                                         .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
  }
  ~OpProfile() { stop(); }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  void stop() {
    if (!m_handle) return;
    at::removeCallback(m_handle);
    m_handle = 0;
    m_wall = std::chrono::duration<double>(Clock::now() - m_t0).count();
    instance() = nullptr;
  }

  // The operations with the largest self time, as a table of at most top rows.
  void print(const char* title, size_t top = 14) const {
    std::vector<std::pair<std::string, Entry>> rows(m_ops.begin(), m_ops.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.self > b.second.self; });
    double total = 0;
    for (const auto& r : rows) total += r.second.self;
    std::printf("  per-operation profile, %s: wall %.2f s, inside operations %.2f s (self times, one thread's view)\n",
                title, m_wall, total);
    std::printf("    %-34s %8s %10s %7s\n", "operation", "calls", "self s", "share");
    for (size_t i = 0; i < rows.size() && i < top; ++i)
      std::printf("    %-34s %8lld %10.3f %6.1f%%\n", rows[i].first.c_str(), static_cast<long long>(rows[i].second.calls),
                  rows[i].second.self, 100.0 * rows[i].second.self / std::max(1e-12, m_wall));
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    int64_t calls = 0;
    double self = 0;
  };
  struct Frame {
    std::string name;
    Clock::time_point start;
    double children = 0;
  };
  struct Context : at::ObserverContext {};

  static OpProfile*& instance() {
    static OpProfile* p = nullptr;
    return p;
  }
  static std::vector<Frame>& stack() {
    thread_local std::vector<Frame> s;
    return s;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    stack().push_back(Frame{fn.name(), Clock::now(), 0.0});
    return std::make_unique<Context>();
  }
  static void on_end(const at::RecordFunction&, at::ObserverContext*) {
    std::vector<Frame>& s = stack();
    if (s.empty()) return;
    Frame f = std::move(s.back());
    s.pop_back();
    const double total = std::chrono::duration<double>(Clock::now() - f.start).count();
    if (!s.empty()) s.back().children += total;
    OpProfile* p = instance();
    if (!p) return;
    std::lock_guard<std::mutex> lock(p->m_mutex);
    Entry& e = p->m_ops[f.name];
    ++e.calls;
    e.self += total - f.children;
  }

  at::CallbackHandle m_handle = 0;
  Clock::time_point m_t0;
  double m_wall = 0;
  mutable std::mutex m_mutex;
  std::map<std::string, Entry> m_ops;
};

}  // namespace ms::bench
