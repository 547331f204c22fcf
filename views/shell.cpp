// Shell: menu, shortcuts, error popup and status bar around the registered views.
#include "views/shell.h"

#include <imgui.h>

#include "views/registry.h"

namespace ms::views {

Shell::Shell(Settings settings) : m_settings(std::move(settings)) {
  m_wb = std::make_unique<Workbench>(m_tasks, m_settings);
  m_wb->db_path = m_settings.db;
  HeatScale s;
  if (parse_heat_scale(m_settings.scale, &s)) m_wb->scale = s;
  m_views = make_views(*m_wb);
}

Shell::~Shell() {
  m_settings.scale = heat_scale_name(m_wb->scale);
  m_settings.save();
  m_tasks.cancel_all();
}

View* Shell::find(const std::string& key) {
  for (auto& v : m_views)
    if (v->key() == key) return v.get();
  return nullptr;
}

std::vector<std::string> Shell::view_keys() const {
  std::vector<std::string> k;
  for (const auto& v : m_views) k.push_back(v->key());
  return k;
}

bool Shell::solo(const std::string& key) {
  m_solo = find(key);
  if (m_solo) {
    m_solo->set_fullscreen(true);
    m_solo->open() = true;  // also a window closed at start
  }
  return m_solo != nullptr;
}

std::string Shell::export_selected_run() { return m_wb->export_run(m_wb->selected_run); }

void Shell::handle_shortcuts() {
  ImGuiIO& io = ImGui::GetIO();
  if (io.KeyCtrl && ImGui::IsKeyPressed('O', false)) {
    m_wb->focus_window = "Model";
    m_wb->focus_model_path = true;
  }
  if (io.KeyCtrl && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Enter), false)) m_wb->run_prompt();
  if (io.KeyCtrl && ImGui::IsKeyPressed('E', false)) export_selected_run();
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape), false)) m_tasks.cancel_all();
}

void Shell::draw_menu() {
  if (!ImGui::BeginMainMenuBar()) return;
  if (ImGui::BeginMenu("File")) {
    if (ImGui::MenuItem("Open model...", "Ctrl+O")) {
      m_wb->focus_window = "Model";
      m_wb->focus_model_path = true;
    }
    if (ImGui::MenuItem("Run prompt", "Ctrl+Enter")) m_wb->run_prompt();
    if (ImGui::MenuItem("Export report of the selected run", "Ctrl+E")) export_selected_run();
    if (ImGui::MenuItem("Cancel all tasks", "Esc")) m_tasks.cancel_all();
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("View")) {
    for (auto& v : m_views) ImGui::MenuItem(v->title().c_str(), nullptr, &v->open());
    ImGui::Separator();
    ImGui::MenuItem("ImGui demo", nullptr, &m_show_demo);
    ImGui::EndMenu();
  }
  ImGui::EndMainMenuBar();
}

void Shell::draw_status_bar() {
  ImGuiViewport* vp = ImGui::GetMainViewport();
  float h = ImGui::GetFrameHeight() + 4;
  ImGui::SetNextWindowPos(ImVec2(vp->Pos.x, vp->Pos.y + vp->Size.y - h));
  ImGui::SetNextWindowSize(ImVec2(vp->Size.x, h));
  ImGuiWindowFlags f = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                       ImGuiWindowFlags_NoFocusOnAppearing | ImGuiWindowFlags_NoBringToFrontOnFocus;
  ImGui::PushStyleVar(ImGuiStyleVar_WindowPadding, ImVec2(6, 2));
  if (ImGui::Begin("##status", nullptr, f)) {
    const auto& m = m_wb->model();
    ImGui::Text("%s", m ? m_wb->model_path().c_str() : "no model");
    ImGui::SameLine();
    ImGui::TextDisabled("| db: %s", resolve_db_path(m_wb->db_path).c_str());
    int running = 0;
    for (const TaskSnapshot& t : m_tasks.snapshot())
      if (t.running) ++running;
    ImGui::SameLine();
    if (running) ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "| %d task%s running (Esc cancels)", running, running > 1 ? "s" : "");
    ImGui::SameLine();
    ImGui::TextDisabled("| %.0f fps", ImGui::GetIO().Framerate);
  }
  ImGui::End();
  ImGui::PopStyleVar();
}

void Shell::draw_error_popup() {
  if (m_wb->take_error(&m_error_title, &m_error_message)) m_open_error = true;
  if (m_open_error) {
    ImGui::OpenPopup("##error");
    m_open_error = false;
  }
  ImGui::SetNextWindowSizeConstraints(ImVec2(360, 0), ImVec2(720, 480));
  if (ImGui::BeginPopupModal("##error", nullptr, ImGuiWindowFlags_AlwaysAutoResize)) {
    ImGui::TextUnformatted(m_error_title.c_str());
    ImGui::Separator();
    ImGui::PushTextWrapPos(680);
    ImGui::TextUnformatted(m_error_message.c_str());
    ImGui::PopTextWrapPos();
    if (ImGui::Button("OK", ImVec2(120, 0)) || ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Enter)))
      ImGui::CloseCurrentPopup();
    ImGui::EndPopup();
  }
}

void Shell::frame() {
  m_wb->poll();
  // Finished tasks stay listed (Analyses window) until there are many; then the oldest go.
  if (m_tasks.snapshot().size() > 24) m_tasks.clear_finished();
  if (m_solo) {
    m_solo->draw();
    draw_error_popup();
    return;
  }
  handle_shortcuts();
  draw_menu();
  for (auto& v : m_views) v->draw();
  draw_status_bar();
  draw_error_popup();
  if (m_show_demo) ImGui::ShowDemoWindow(&m_show_demo);
}

}  // namespace ms::views
