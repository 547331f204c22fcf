// GuiWindow: GLFW + OpenGL 3 + Dear ImGui setup and teardown, frames, framebuffer read-back.
#include "views/gui_window.h"

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#include <filesystem>
#include <memory>

namespace ms::views {

namespace {
std::string g_glfw_error;
void on_glfw_error(int code, const char* msg) { g_glfw_error = "GLFW error " + std::to_string(code) + ": " + msg; }

// Debian's fonts-dejavu-core, else ImGui's built-in font.
std::string load_font(float size) {
  ImGuiIO& io = ImGui::GetIO();
  for (const char* f : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"}) {
    if (!std::filesystem::exists(f)) continue;
    // Latin, Greek, Cyrillic, punctuation, arrows, mathematical operators and box drawing: what token strings often hold.
    static const ImWchar ranges[] = {0x0020, 0x024F, 0x0370, 0x03FF, 0x0400, 0x052F, 0x2000, 0x206F,
                                     0x2190, 0x22FF, 0x2500, 0x257F, 0xFFFD, 0xFFFD, 0};
    if (io.Fonts->AddFontFromFileTTF(f, size, nullptr, ranges)) return f;
  }
  io.Fonts->AddFontDefault();
  return "ImGui built-in font";
}
}  // namespace

Result<std::unique_ptr<GuiWindow>> GuiWindow::open(const WindowOptions& opts) {
  glfwSetErrorCallback(on_glfw_error);
  if (!glfwInit())
    return Error{ErrorCode::kBadInput, "cannot start the GUI: " + (g_glfw_error.empty() ? std::string("glfwInit failed") : g_glfw_error) +
                                           " (no display? set DISPLAY, or run under xvfb-run)"};
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* w = glfwCreateWindow(opts.width, opts.height, opts.title.c_str(), nullptr, nullptr);
  if (!w) {
    std::string why = g_glfw_error;
    glfwTerminate();
    return Error{ErrorCode::kBadInput, "cannot open a window with OpenGL 3.0: " + why};
  }
  glfwMakeContextCurrent(w);
  glfwSwapInterval(opts.vsync ? 1 : 0);
  std::unique_ptr<GuiWindow> gw(new GuiWindow());
  gw->m_window = w;
  gw->m_ini = opts.ini_file;
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = gw->m_ini.empty() ? nullptr : gw->m_ini.c_str();
  io.ConfigFlags |= ImGuiConfigFlags_NavEnableKeyboard;
  if (opts.ignore_mouse) io.ConfigFlags |= ImGuiConfigFlags_NoMouse;
  gw->m_ignore_mouse = opts.ignore_mouse;
  ImGui::StyleColorsDark();
  gw->m_font = load_font(opts.font_size);
  ImGui_ImplGlfw_InitForOpenGL(w, true);
  ImGui_ImplOpenGL3_Init("#version 130");
  return gw;
}

GuiWindow::~GuiWindow() {
  if (!m_window) return;
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(m_window);
  glfwTerminate();
}

bool GuiWindow::should_close() const { return glfwWindowShouldClose(m_window); }

void GuiWindow::begin_frame(double idle_wait_s) {
  if (idle_wait_s > 0) glfwWaitEventsTimeout(idle_wait_s);
  else glfwPollEvents();
  ImGui_ImplOpenGL3_NewFrame();
  ImGui_ImplGlfw_NewFrame();
  ImGuiIO& io = ImGui::GetIO();
  if (m_injected) {  // over what the backend read from the real pointer
    io.ConfigFlags &= ~ImGuiConfigFlags_NoMouse;
    io.MousePos = ImVec2(m_inject_x, m_inject_y);
    io.MouseDown[0] = m_inject_down;
    m_injected = false;
  } else if (m_ignore_mouse) {
    io.ConfigFlags |= ImGuiConfigFlags_NoMouse;
  }
  ImGui::NewFrame();
}

void GuiWindow::inject_mouse(float x, float y, bool left_down) {
  m_injected = true;
  m_inject_x = x, m_inject_y = y, m_inject_down = left_down;
}

void GuiWindow::render() {
  ImGui::Render();
  int w, h;
  glfwGetFramebufferSize(m_window, &w, &h);
  glViewport(0, 0, w, h);
  glClearColor(0.08f, 0.08f, 0.1f, 1.f);
  glClear(GL_COLOR_BUFFER_BIT);
  ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

void GuiWindow::present() { glfwSwapBuffers(m_window); }
void GuiWindow::finish() { glFinish(); }

RgbImage GuiWindow::read_pixels() const {
  int w, h;
  glfwGetFramebufferSize(m_window, &w, &h);
  RgbImage img;
  img.width = w;
  img.height = h;
  std::vector<uint8_t> raw(static_cast<size_t>(w) * h * 3);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, raw.data());
  img.pixels.resize(raw.size());
  for (int y = 0; y < h; ++y)  // OpenGL rows are bottom to top
    std::copy(raw.begin() + static_cast<long>(y) * w * 3, raw.begin() + static_cast<long>(y + 1) * w * 3,
              img.pixels.begin() + static_cast<long>(h - 1 - y) * w * 3);
  return img;
}

}  // namespace ms::views
