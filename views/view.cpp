// View::draw: placement, Begin/End pairing, focus requests.
#include "views/view.h"

#include <imgui.h>

#include "views/workbench.h"

namespace ms::views {

View::View(Workbench& wb, std::string title, std::string key)
    : m_wb(wb), m_title(std::move(title)), m_key(std::move(key)) {}

void View::draw() {
  if (m_wb.focus_window == m_title) m_open = true;
  if (!m_open) return;
  ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGuiWindowFlags flags = 0;
  if (m_fullscreen) {
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    flags |= ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize | ImGuiWindowFlags_NoCollapse |
             ImGuiWindowFlags_NoSavedSettings;
  } else {
    // Fractions of the area between the main menu bar and the status bar.
    const Rect& r = m_default;
    float bar = ImGui::GetFrameHeight();
    ImVec2 org(vp->Pos.x, vp->Pos.y + bar), size(vp->Size.x, vp->Size.y - 2 * bar - 4);
    ImGui::SetNextWindowPos(ImVec2(org.x + r.x * size.x, org.y + r.y * size.y), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(r.w * size.x, r.h * size.y), ImGuiCond_FirstUseEver);
  }
  if (m_wb.focus_window == m_title) {
    ImGui::SetNextWindowFocus();
    ImGui::SetNextWindowCollapsed(false);
    m_wb.focus_window.clear();
  }
  const bool shown = ImGui::Begin(m_title.c_str(), m_fullscreen ? nullptr : &m_open, flags);
  ImVec2 p = ImGui::GetWindowPos(), s = ImGui::GetWindowSize();
  m_last = {p.x, p.y, s.x, s.y};
  if (shown) draw_content();
  ImGui::End();
}

bool View::have_forward() const {
  if (m_wb.forward()) return true;
  ImGui::TextDisabled(m_wb.model() ? "waiting for the forward pass..." : "open a model first");
  return false;
}

}  // namespace ms::views
