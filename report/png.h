// PNG encoding of RGB images (stb_image_write) for reports; base64 for data URIs.
#pragma once

#include <string>

#include "core/base/colormap.h"

namespace ms {

// The PNG file bytes of an image; throws std::runtime_error when the encoder fails.
std::string encode_png(const RgbImage& image);
std::string base64(const std::string& bytes);
// "data:image/png;base64,..." for embedding in HTML / SVG.
std::string png_data_uri(const RgbImage& image);
// PNG bytes to RGB pixels (for tests and screenshots); throws std::runtime_error when undecodable.
RgbImage decode_png(const std::string& bytes);

}  // namespace ms
