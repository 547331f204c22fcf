// GuiWindow: the GLFW window, OpenGL 3 context and Dear ImGui backends the workbench runs in, with
// a framebuffer read-back for headless screenshots. Only `mechscope gui` and bench_gui create one,
// so the batch CLI never needs a display.
#pragma once

#include <string>

#include "core/base/colormap.h"
#include "core/base/result.h"

struct GLFWwindow;

namespace ms::views {

struct WindowOptions {
  int width = 1280, height = 800;
  std::string title = "mechscope";
  bool vsync = true;
  std::string ini_file;  // imgui.ini path; "" keeps no layout file (screenshots, benchmarks)
  float font_size = 15;
  bool ignore_mouse = false;  // headless: a cursor parked over the window must not hover anything
};

class GuiWindow {
 public:
  // Opens the window; kBadInput error with the reason (no display, no OpenGL 3) on failure.
  static Result<std::unique_ptr<GuiWindow>> open(const WindowOptions& opts);
  ~GuiWindow();
  GuiWindow(const GuiWindow&) = delete;
  GuiWindow& operator=(const GuiWindow&) = delete;

  bool should_close() const;
  // Poll events (or, when idle, wait up to idle_wait_s for one: an idle workbench does not spin a
  // core at hundreds of frames per second) and start an ImGui frame.
  void begin_frame(double idle_wait_s = 0);
  // Headless tests: the next frame sees the mouse at (x, y) in window pixels with the left button
  // down or up, instead of the real pointer (which a headless window ignores). Down on one frame
  // and up on the next is a click.
  void inject_mouse(float x, float y, bool left_down);
  void render();       // ImGui::Render and draw into the back buffer (call read_pixels after it)
  void present();      // swap buffers
  void finish();       // glFinish: wait until the GPU (llvmpipe: the CPU rasteriser) is done
  RgbImage read_pixels() const;  // the back buffer as drawn by render(), rows top to bottom
  std::string font_description() const { return m_font; }

 private:
  GuiWindow() = default;
  GLFWwindow* m_window = nullptr;
  std::string m_ini;
  std::string m_font;
  bool m_ignore_mouse = false, m_injected = false, m_inject_down = false;
  float m_inject_x = 0, m_inject_y = 0;
};

}  // namespace ms::views
