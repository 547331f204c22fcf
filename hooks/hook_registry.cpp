// Hook registry, scopes and per-run resolution of live hook points.
#include "hooks/hook_registry.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>

#include "hooks/hook_names.h"

namespace ms {

int HookPointTable::add(std::string name) {
  m_names.push_back(std::move(name));
  return static_cast<int>(m_names.size()) - 1;
}

int HookPointTable::find(const std::string& name) const {
  auto it = std::find(m_names.begin(), m_names.end(), name);
  return it == m_names.end() ? -1 : static_cast<int>(it - m_names.begin());
}

HookHandle HookRegistry::add_forward(std::string pattern, ForwardHook fn) {
  m_entries.push_back({m_next, std::move(pattern), std::move(fn), nullptr});
  return m_next++;
}

HookHandle HookRegistry::add_backward(std::string pattern, BackwardHook fn) {
  m_entries.push_back({m_next, std::move(pattern), nullptr, std::move(fn)});
  return m_next++;
}

void HookRegistry::remove(HookHandle handle) {
  m_entries.erase(std::remove_if(m_entries.begin(), m_entries.end(),
                                 [&](const Entry& e) { return e.handle == handle; }),
                  m_entries.end());
}

void HookRegistry::clear() { m_entries.clear(); }

HookScope::~HookScope() {
  for (HookHandle h : m_handles) m_registry.remove(h);
}

HookHandle HookScope::add_forward(std::string pattern, ForwardHook fn) {
  m_handles.push_back(m_registry.add_forward(std::move(pattern), std::move(fn)));
  return m_handles.back();
}

HookHandle HookScope::add_backward(std::string pattern, BackwardHook fn) {
  m_handles.push_back(m_registry.add_backward(std::move(pattern), std::move(fn)));
  return m_handles.back();
}

ActiveHooks::ActiveHooks(const HookRegistry* registry, const HookPointTable& table)
    : m_table(&table) {
  if (!registry || registry->empty()) return;
  m_points.resize(table.size());
  for (const auto& entry : registry->entries()) {
    for (size_t id = 0; id < table.size(); ++id) {
      if (!glob_match(entry.pattern, table.name(static_cast<int>(id)))) continue;
      Point& p = m_points[id];
      p.live = true;
      m_any = true;
      if (entry.forward) p.forward.push_back(&entry.forward);
      if (entry.backward) {
        p.backward.push_back(&entry.backward);
        m_any_backward = true;
      }
    }
  }
}

at::Tensor ActiveHooks::apply(int id, at::Tensor act) const {
  const Point& p = m_points[static_cast<size_t>(id)];
  const std::string& name = m_table->name(id);
  HookContext ctx{name, hook_layer(name), m_pos_offset};
  for (const ForwardHook* fn : p.forward) {
    at::Tensor out = (*fn)(act, ctx);
    if (!out.defined()) continue;
    if (out.sizes() != act.sizes())
      throw std::invalid_argument("hook on " + name + " returned shape " +
                                  std::string(c10::str(out.sizes())) + ", expected " +
                                  std::string(c10::str(act.sizes())));
    act = out.to(act.scalar_type());
  }
  if (!p.backward.empty() && at::GradMode::is_enabled()) {
    // The first hooked point of a run without trainable inputs becomes a leaf so gradients
    // reach it; later points are downstream of it and stay in the graph.
    if (!act.requires_grad()) act = act.detach().requires_grad_(true);
    std::vector<BackwardHook> fns;  // copies: backward may run after the registry changed
    for (const BackwardHook* fn : p.backward) fns.push_back(*fn);
    std::string name_copy = name;
    int layer = ctx.layer;
    int64_t offset = m_pos_offset;
    act.register_hook([fns, name_copy, layer, offset](const at::Tensor& grad) -> at::Tensor {
      HookContext bctx{name_copy, layer, offset};
      at::Tensor g = grad;
      bool replaced = false;
      for (const BackwardHook& fn : fns) {
        at::Tensor r = fn(g, bctx);
        if (r.defined()) {
          g = r;
          replaced = true;
        }
      }
      return replaced ? g : at::Tensor();
    });
  }
  return act;
}

}  // namespace ms
