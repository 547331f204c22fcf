// View::draw: placement, Begin/End pairing, focus requests.
#include "views/view.h"

#include <imgui.h>

#include "views/workbench.h"

namespace ms::views {

View::View(Workbench& wb, std::string title, std::string key)
    : m_wb(wb), m_title(std::move(title)), m_key(std::move(key)) {}

void View::default_rect(float* x, float* y, float* w, float* h) const {
  *x = 0.3f, *y = 0.05f, *w = 0.4f, *h = 0.5f;
}

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
    float x, y, w, h;
    default_rect(&x, &y, &w, &h);
    ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + x * vp->WorkSize.x, vp->WorkPos.y + y * vp->WorkSize.y),
                            ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * vp->WorkSize.x, h * vp->WorkSize.y), ImGuiCond_FirstUseEver);
  }
  if (m_wb.focus_window == m_title) {
    ImGui::SetNextWindowFocus();
    ImGui::SetNextWindowCollapsed(false);
    m_wb.focus_window.clear();
  }
  if (ImGui::Begin(m_title.c_str(), m_fullscreen ? nullptr : &m_open, flags)) draw_content();
  ImGui::End();
}

}  // namespace ms::views
