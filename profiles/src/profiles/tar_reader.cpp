#include "profiles/tar_reader.h"

#include <zlib.h>

#include <cstring>

namespace medicus::profiles {

tl::expected<std::string, std::string> gunzip(std::string_view compressed, size_t max_bytes) {
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header (packages are .tgz).
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) return tl::make_unexpected("zlib initialisation failed");
  std::string out;
  out.resize(std::min<size_t>(max_bytes, compressed.size() * 4 + 4096));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  int rc = Z_OK;
  while (true) {
    if (stream.total_out == out.size()) {
      if (out.size() >= max_bytes) {
        inflateEnd(&stream);
        return tl::make_unexpected("archive expands beyond " + std::to_string(max_bytes) + " bytes");
      }
      out.resize(std::min(max_bytes, out.size() * 2));
    }
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + stream.total_out);
    stream.avail_out = static_cast<uInt>(out.size() - stream.total_out);
    rc = inflate(&stream, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      std::string why = stream.msg ? stream.msg : "corrupt gzip data";
      inflateEnd(&stream);
      return tl::make_unexpected("gzip: " + why);
    }
    if (stream.avail_in == 0 && stream.avail_out != 0) {
      inflateEnd(&stream);
      return tl::make_unexpected("gzip: truncated archive");
    }
  }
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

namespace {
size_t parseOctal(const char* field, size_t width) {
  size_t value = 0;
  for (size_t i = 0; i < width && field[i]; ++i) {
    if (field[i] == ' ') continue;
    if (field[i] < '0' || field[i] > '7') break;
    value = value * 8 + static_cast<size_t>(field[i] - '0');
  }
  return value;
}
std::string cString(const char* field, size_t width) {
  return std::string(field, strnlen(field, width));
}
}  // namespace

tl::expected<std::vector<TarEntry>, std::string> readTar(std::string_view tar) {
  std::vector<TarEntry> entries;
  std::string long_name;
  size_t pos = 0;
  while (pos + 512 <= tar.size()) {
    const char* header = tar.data() + pos;
    if (header[0] == '\0') break;  // end-of-archive blocks
    size_t size = parseOctal(header + 124, 12);
    char type = header[156];
    size_t data = pos + 512;
    if (data + size > tar.size()) return tl::make_unexpected("tar: entry runs past the end of the archive");
    std::string name;
    if (!long_name.empty()) {
      name = std::move(long_name);
      long_name.clear();
    } else {
      std::string prefix = std::memcmp(header + 257, "ustar", 5) == 0 ? cString(header + 345, 155) : "";
      name = cString(header, 100);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (type == 'L') {  // GNU long name for the next entry
      long_name = cString(tar.data() + data, size);
    } else if (type == '0' || type == '\0') {
      entries.push_back({std::move(name), std::string(tar.substr(data, size))});
    }
    pos = data + (size + 511) / 512 * 512;
  }
  return entries;
}

}  // namespace medicus::profiles
