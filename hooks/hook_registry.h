// Hook registry: forward and backward hooks attached to hook points by exact name or glob, an
// RAII scope that removes them, and the per-run resolution that makes an unused point free.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ms {

// The hook points of one model, in forward order. Ids are indexes into this table; the forward
// pass refers to points by id so no string is built or compared while it runs.
class HookPointTable {
 public:
  int add(std::string name);
  int find(const std::string& name) const;  // -1 when absent
  const std::string& name(int id) const { return m_names[static_cast<size_t>(id)]; }
  const std::vector<std::string>& names() const { return m_names; }
  size_t size() const { return m_names.size(); }

 private:
  std::vector<std::string> m_names;
};

// What a hook is told besides the activation.
struct HookContext {
  const std::string& name;  // the hook point's full name
  int layer;                // -1 for top-level points
  int64_t pos_offset;       // absolute position of the activation's first position (KV-cached runs)
};

// Returns a tensor to replace the activation (same shape), or an undefined tensor to keep it.
using ForwardHook = std::function<at::Tensor(const at::Tensor& act, const HookContext& ctx)>;
// Sees d(output)/d(activation); returns a replacement gradient or an undefined tensor.
using BackwardHook = std::function<at::Tensor(const at::Tensor& grad, const HookContext& ctx)>;

using HookHandle = uint64_t;

class HookRegistry {
 public:
  // Attaches fn to every hook point whose name matches pattern (exact name or glob, see
  // glob_match). Hooks on one point run in the order they were added.
  HookHandle add_forward(std::string pattern, ForwardHook fn);
  HookHandle add_backward(std::string pattern, BackwardHook fn);
  void remove(HookHandle handle);
  void clear();
  bool empty() const { return m_entries.empty(); }

  struct Entry {
    HookHandle handle;
    std::string pattern;
    ForwardHook forward;    // set for forward hooks
    BackwardHook backward;  // set for backward hooks
  };
  const std::vector<Entry>& entries() const { return m_entries; }

 private:
  std::vector<Entry> m_entries;
  HookHandle m_next = 1;
};

// Hooks added through a scope are removed when it ends (TransformerLens reset_hooks_end).
class HookScope {
 public:
  explicit HookScope(HookRegistry& registry) : m_registry(registry) {}
  ~HookScope();
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;
  HookHandle add_forward(std::string pattern, ForwardHook fn);
  HookHandle add_backward(std::string pattern, BackwardHook fn);

 private:
  HookRegistry& m_registry;
  std::vector<HookHandle> m_handles;
};

// The registry resolved against a model's hook points, once per run: which points are live and
// which hooks each one calls. A point with nothing attached costs one branch.
class ActiveHooks {
 public:
  ActiveHooks() = default;
  ActiveHooks(const HookRegistry* registry, const HookPointTable& table);

  bool live(int id) const { return id >= 0 && !m_points.empty() && m_points[id].live; }
  bool any() const { return m_any; }
  bool any_backward() const { return m_any_backward; }
  void set_pos_offset(int64_t offset) { m_pos_offset = offset; }

  // Runs the forward hooks of a live point and arms its backward hooks on the result.
  at::Tensor apply(int id, at::Tensor act) const;

 private:
  struct Point {
    bool live = false;
    std::vector<const ForwardHook*> forward;
    std::vector<const BackwardHook*> backward;
  };
  const HookPointTable* m_table = nullptr;
  std::vector<Point> m_points;
  bool m_any = false;
  bool m_any_backward = false;
  int64_t m_pos_offset = 0;
};

// In the forward pass: x = hp(hooks, id, x). Free when the point is not live.
inline at::Tensor hp(const ActiveHooks& hooks, int id, at::Tensor x) {
  return hooks.live(id) ? hooks.apply(id, std::move(x)) : x;
}

}  // namespace ms
