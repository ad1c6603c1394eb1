#include "worker/core/npz.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mixcal::core {
namespace {

uint16_t U16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) |
                               static_cast<uint8_t>(p[1]) << 8);
}
uint32_t U32(const char* p) {
  return static_cast<uint32_t>(U16(p)) | static_cast<uint32_t>(U16(p + 2))
                                             << 16;
}
uint64_t U64(const char* p) {
  return static_cast<uint64_t>(U32(p)) | static_cast<uint64_t>(U32(p + 4))
                                             << 32;
}

struct Dtype {
  const char* code;  // the descr without its byte-order mark
  const char* name;
  size_t size;
};
constexpr Dtype kDtypes[] = {
    {"b1", "bool", 1},    {"u1", "uint8", 1},   {"i1", "int8", 1},
    {"u2", "uint16", 2},  {"i2", "int16", 2},   {"u4", "uint32", 4},
    {"i4", "int32", 4},   {"u8", "uint64", 8},  {"i8", "int64", 8},
    {"f2", "float16", 2}, {"f4", "float32", 4}, {"f8", "float64", 8},
};

// The value of `key` in a .npy header ({'descr': '<f4', 'fortran_order':
// False, 'shape': (3, 4), }), as written.
std::string HeaderValue(absl::string_view header, absl::string_view key) {
  const size_t k = header.find(absl::StrCat("'", key, "'"));
  if (k == absl::string_view::npos) return "";
  size_t v = header.find(':', k);
  if (v == absl::string_view::npos) return "";
  absl::string_view rest =
      absl::StripLeadingAsciiWhitespace(header.substr(v + 1));
  if (!rest.empty() && rest[0] == '(') {
    const size_t end = rest.find(')');
    return std::string(
        rest.substr(0, end == absl::string_view::npos ? 0 : end + 1));
  }
  const size_t end = rest.find_first_of(",}");
  return std::string(absl::StripAsciiWhitespace(rest.substr(0, end)));
}

}  // namespace

int64_t NpyArray::count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<NpzFile> NpzFile::Open(const std::string& path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not an .npz file as NumPy writes it: ", why));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size < 22) {
    ::close(fd);
    return bad("too short for a ZIP archive");
  }
  const uint64_t length = static_cast<uint64_t>(st.st_size);
  void* mapped = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) {
    return absl::InternalError(
        absl::StrCat("cannot map ", path, ": ", std::strerror(errno)));
  }
  NpzFile f;
  f.path_ = path;
  f.map_ = std::shared_ptr<const void>(mapped, [length](const void* p) {
    ::munmap(const_cast<void*>(p), length);
  });
  f.base_ = static_cast<const char*>(mapped);
  f.length_ = length;
  const char* b = f.base_;
  // The end of central directory record: the last 22 bytes plus a comment
  // of at most 64 KiB.
  int64_t eocd = -1;
  for (int64_t at = static_cast<int64_t>(length) - 22;
       at >= 0 && at >= static_cast<int64_t>(length) - 22 - 65535; --at) {
    if (U32(b + at) == 0x06054b50) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) return bad("no ZIP directory at its end");
  uint64_t entries = U16(b + eocd + 10);
  uint64_t dir_offset = U32(b + eocd + 16);
  // ZIP64: the locator just before it points at the ZIP64 record.
  if (eocd >= 20 && U32(b + eocd - 20) == 0x07064b50) {
    const uint64_t z64 = U64(b + eocd - 20 + 8);
    if (z64 + 56 > length || U32(b + z64) != 0x06064b50)
      return absl::DataLossError(
          absl::StrCat(path, ": a damaged ZIP64 directory"));
    entries = U64(b + z64 + 32);
    dir_offset = U64(b + z64 + 48);
  }
  uint64_t at = dir_offset;
  for (uint64_t i = 0; i < entries; ++i) {
    if (at + 46 > length || U32(b + at) != 0x02014b50)
      return absl::DataLossError(
          absl::StrCat(path, ": a damaged ZIP directory"));
    Member m;
    const uint16_t flags = U16(b + at + 8);
    m.method = U16(b + at + 10);
    m.compressed = U32(b + at + 20);
    m.size = U32(b + at + 24);
    const uint16_t name_len = U16(b + at + 28), extra_len = U16(b + at + 30),
                   comment_len = U16(b + at + 32);
    m.header_offset = U32(b + at + 42);
    if (at + 46 + name_len + extra_len > length)
      return absl::DataLossError(
          absl::StrCat(path, ": a damaged ZIP directory"));
    std::string name(b + at + 46, name_len);
    // ZIP64 sizes and offset, in this order, for the fields that are full.
    const char* extra = b + at + 46 + name_len;
    for (uint16_t e = 0; e + 4 <= extra_len;) {
      const uint16_t id = U16(extra + e), len = U16(extra + e + 2);
      if (id == 0x0001) {
        const char* z = extra + e + 4;
        const char* end = z + len;
        if (m.size == 0xffffffff && z + 8 <= end) {
          m.size = U64(z);
          z += 8;
        }
        if (m.compressed == 0xffffffff && z + 8 <= end) {
          m.compressed = U64(z);
          z += 8;
        }
        if (m.header_offset == 0xffffffff && z + 8 <= end) {
          m.header_offset = U64(z);
        }
      }
      e += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (flags & 1) return bad(absl::StrCat("member ", name, " is encrypted"));
    if (m.method != 0 && m.method != 8) {
      return bad(absl::StrCat("member ", name, " is compressed with method ",
                              m.method, " (only stored or deflated)"));
    }
    absl::string_view array = name;
    if (!absl::ConsumeSuffix(&array, ".npy")) continue;  // not an array
    m.name = std::string(array);
    f.members_.push_back(std::move(m));
  }
  return f;
}

std::vector<std::string> NpzFile::Names() const {
  std::vector<std::string> out;
  for (const Member& m : members_) out.push_back(m.name);
  return out;
}

bool NpzFile::Has(absl::string_view name) const {
  for (const Member& m : members_)
    if (m.name == name) return true;
  return false;
}

absl::StatusOr<NpyArray> NpzFile::Read(absl::string_view name) const {
  const Member* m = nullptr;
  for (const Member& x : members_)
    if (x.name == name) m = &x;
  if (m == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path_, " has no array ", name,
                     " (it has: ", absl::StrJoin(Names(), ", "), ")"));
  }
  const std::string what = absl::StrCat(path_, " array ", name);
  const char* b = base_;
  const uint64_t h = m->header_offset;
  if (h + 30 > length_ || U32(b + h) != 0x04034b50)
    return absl::DataLossError(absl::StrCat(what, ": a damaged ZIP entry"));
  const uint64_t data_at = h + 30 + U16(b + h + 26) + U16(b + h + 28);
  if (data_at + m->compressed > length_)
    return absl::DataLossError(absl::StrCat(what, ": the archive ends early"));
  // The member's bytes: mapped when stored, inflated into a buffer else.
  std::shared_ptr<const void> owner = map_;
  const char* bytes = b + data_at;
  if (m->method == 8) {
    auto buffer = std::make_shared<std::string>(m->size, '\0');
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
      return absl::InternalError("zlib: cannot start inflating");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes));
    z.avail_in =
        static_cast<uInt>(std::min<uint64_t>(m->compressed, UINT32_MAX));
    z.next_out = reinterpret_cast<Bytef*>(buffer->data());
    z.avail_out = static_cast<uInt>(std::min<uint64_t>(m->size, UINT32_MAX));
    const int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out != m->size)
      return absl::DataLossError(absl::StrCat(what, ": cannot be inflated"));
    bytes = buffer->data();
    owner = buffer;
  }
  // The .npy header.
  if (m->size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a .npy array"));
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  const uint64_t header_len = major == 1 ? U16(bytes + 8) : U32(bytes + 8);
  const uint64_t header_at = major == 1 ? 10 : 12;
  if (header_at + header_len > m->size)
    return absl::DataLossError(absl::StrCat(what, ": its header is cut off"));
  const absl::string_view header(bytes + header_at, header_len);
  NpyArray a;
  const std::string quoted = HeaderValue(header, "descr");
  absl::string_view descr = quoted;
  absl::ConsumePrefix(&descr, "'");
  absl::ConsumeSuffix(&descr, "'");
  if (descr.size() < 2 || (descr[0] != '<' && descr[0] != '|')) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has dtype ", descr,
        ": give little-endian numbers (bool, int8..int64, uint8..uint64, "
        "float16, float32, float64)"));
  }
  for (const Dtype& d : kDtypes) {
    if (descr.substr(1) == d.code) {
      a.dtype = d.name;
      a.item_size = d.size;
    }
  }
  if (a.dtype.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has dtype ", descr,
        ", which mixcal does not read (bool, int8..int64, uint8..uint64, "
        "float16, float32, float64)"));
  }
  if (HeaderValue(header, "fortran_order") != "False") {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is in Fortran order: save np.ascontiguousarray(x)"));
  }
  const std::string shape_text = HeaderValue(header, "shape");
  absl::string_view shape = shape_text;
  if (!absl::ConsumePrefix(&shape, "(") || !absl::ConsumeSuffix(&shape, ")"))
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": no shape in its header"));
  for (absl::string_view dim :
       absl::StrSplit(shape, ',', absl::SkipWhitespace())) {
    int64_t d = 0;
    if (!absl::SimpleAtoi(dim, &d) || d < 0)
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": a bad shape (", shape, ")"));
    a.shape.push_back(d);
  }
  const uint64_t need = static_cast<uint64_t>(a.count()) * a.item_size;
  if (header_at + header_len + need != m->size) {
    return absl::DataLossError(
        absl::StrCat(what, ": holds ", m->size - header_at - header_len,
                     " bytes of data, its shape needs ", need));
  }
  a.data_ = bytes + header_at + header_len;
  a.owner_ = std::move(owner);
  return a;
}

}  // namespace mixcal::core
