// .npz reader: libzip walks the archive, core/io/npy.cpp parses each member from memory.
#include "core/io/npz.h"

#include <ATen/ATen.h>
#include <zip.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/io/npy.h"

namespace ms {
namespace {

// Deflate cannot expand data by more than about 1032:1; a member that claims more is lying.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr int64_t kMaxMembers = 4096;

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

std::string zip_message(int code) {
  zip_error_t err;
  zip_error_init_with_code(&err, code);
  std::string msg = zip_error_strerror(&err);
  zip_error_fini(&err);
  return msg;
}

// A member name as messages show it: bytes outside printable ASCII become '?' (a damaged archive's
// names are arbitrary bytes, and messages go to terminals and JSON).
std::string printable(const std::string& s) {
  std::string out = s.substr(0, 200);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

Result<std::map<std::string, at::Tensor>> read_npz(const std::string& path) {
  return guard([&] {
    std::error_code ec;
    const uintmax_t file_size = std::filesystem::file_size(path, ec);
    if (ec) fail_input(path + ": cannot read the file: " + ec.message());
    int code = 0;
    std::unique_ptr<zip_t, ZipCloser> zip(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
    if (!zip) fail_input(path + ": not a readable .npz (zip) archive: " + zip_message(code));
    const zip_int64_t n = zip_get_num_entries(zip.get(), 0);
    if (n < 0 || n > kMaxMembers)
      fail_input(path + ": .npz archive has " + std::to_string(n) + " members (at most " +
                 std::to_string(kMaxMembers) + " are read)");
    std::map<std::string, at::Tensor> out;
    for (zip_int64_t i = 0; i < n; ++i) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(zip.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0)
        fail_input(path + ": member " + std::to_string(i) + " cannot be read: " + zip_strerror(zip.get()));
      const std::string name = (st.valid & ZIP_STAT_NAME) && st.name ? st.name : "";
      const std::string where = path + ": member '" + printable(name) + "'";
      if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
        fail_input(where + " is not a .npy array (an .npz holds only NAME.npy members)");
      if (!(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE))
        fail_input(where + ": the archive does not record its size");
      const bool stored = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_STORE;
      const uint64_t bound = stored ? file_size : st.comp_size * kMaxDeflateRatio;
      if (st.comp_size > file_size || st.size > bound)
        fail_input(where + " claims " + std::to_string(st.size) + " bytes (" +
                   std::to_string(st.comp_size) + " compressed) in a file of " +
                   std::to_string(file_size) + " bytes; the archive is corrupt");
      std::unique_ptr<zip_file_t, ZipFileCloser> f(zip_fopen_index(zip.get(), static_cast<zip_uint64_t>(i), 0));
      if (!f) fail_input(where + " cannot be opened: " + zip_strerror(zip.get()));
      std::vector<uint8_t> bytes(static_cast<size_t>(st.size));
      uint64_t got = 0;
      while (got < st.size) {
        const zip_int64_t r = zip_fread(f.get(), bytes.data() + got, st.size - got);
        if (r < 0) fail_input(where + " cannot be decompressed: " + zip_file_strerror(f.get()));
        if (r == 0) break;
        got += static_cast<uint64_t>(r);
      }
      if (got != st.size)
        fail_input(where + " is truncated: " + std::to_string(got) + " of " + std::to_string(st.size) +
                   " bytes");
      Result<at::Tensor> t = parse_npy(bytes.data(), bytes.size(), where);
      if (!t) throw InputError(t.error().message, t.error().code);
      const std::string key = name.substr(0, name.size() - 4);
      if (!out.emplace(key, std::move(t.value())).second)
        fail_input(path + ": two members are named '" + printable(name) + "'");
    }
    return out;
  });
}

}  // namespace ms
