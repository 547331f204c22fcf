// TaskManager: one thread per background task, progress and cancel flags, snapshots for the UI.
#include "views/task_manager.h"

#include <chrono>
#include <exception>

namespace ms::views {

void TaskContext::set_status(const std::string& s) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_status = s;
}

TaskManager::~TaskManager() {
  cancel_all();
  std::vector<Entry> tasks;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    tasks.swap(m_tasks);
  }
  for (Entry& e : tasks)
    if (e.thread.joinable()) e.thread.join();
}

int64_t TaskManager::start(std::string name, std::function<void(TaskContext&)> fn) {
  auto ctx = std::make_shared<TaskContext>();
  std::lock_guard<std::mutex> lock(m_mutex);
  int64_t id = m_next_id++;
  std::thread t([ctx, fn = std::move(fn)]() {
    std::string error;
    try {
      fn(*ctx);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
    {
      std::lock_guard<std::mutex> l(ctx->m_mutex);
      if (!error.empty()) {
        ctx->m_failed = true;
        ctx->m_error = error;
      }
    }
    ctx->m_done.store(true);
  });
  m_tasks.push_back(Entry{id, std::move(name), ctx, std::move(t)});
  return id;
}

void TaskManager::cancel(int64_t id) {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (Entry& e : m_tasks)
    if (e.id == id) e.ctx->m_control.interrupt();
}

void TaskManager::cancel_all() {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (Entry& e : m_tasks) e.ctx->m_control.interrupt();
}

std::vector<TaskSnapshot> TaskManager::snapshot() {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::vector<TaskSnapshot> out;
  out.reserve(m_tasks.size());
  for (Entry& e : m_tasks) {
    TaskSnapshot s;
    s.id = e.id;
    s.name = e.name;
    s.progress = e.ctx->m_progress.load();
    s.running = !e.ctx->m_done.load();
    s.cancel_requested = e.ctx->m_control.interrupted();
    std::lock_guard<std::mutex> l(e.ctx->m_mutex);
    s.status = e.ctx->m_status;
    s.error = e.ctx->m_error;
    s.failed = e.ctx->m_failed;
    out.push_back(std::move(s));
  }
  return out;
}

bool TaskManager::busy() {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (Entry& e : m_tasks)
    if (!e.ctx->m_done.load()) return true;
  return false;
}

void TaskManager::clear_finished() {
  std::vector<Entry> done;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (size_t i = 0; i < m_tasks.size();) {
      if (m_tasks[i].ctx->m_done.load()) {
        done.push_back(std::move(m_tasks[i]));
        m_tasks.erase(m_tasks.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
  }
  for (Entry& e : done)
    if (e.thread.joinable()) e.thread.join();
}

bool TaskManager::wait_idle(double timeout_s) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (busy()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace ms::views
