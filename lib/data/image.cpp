// Image files: reading one whole, decoding JPEG and PNG with stb_image after each format's structural check
// (check_jpeg, check_png: stb_image is not hardened against hostile files), writing JPEGs with
// stb_image_write, and resizing with stb_image_resize. This is the one translation unit that compiles stb.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/data.h"
#include "dyad/error.h"
#include "lib/io/file.h"

// stb: JPEG and PNG only, decoding from memory and encoding through a callback (this file does its own file
// I/O). The decoder's size limit matches check_jpeg's and check_png's, as a second line of defence.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 16384
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
// The encoder's bit writer shifts negative ints left (well defined on every target, undefined in C++17):
// exempt from UBSan's shift check, in the encoder only.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift"))), apply_to = function)
#endif
#include <stb_image_write.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

namespace dyad::data {

namespace {

constexpr int64_t kMaxSide = 16384;

// The whole file; throws naming `path` on any failure.
std::vector<uint8_t> read_file(const std::string& path, const char* op) {
    const io::detail::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        const int err = errno;
        DYAD_CHECK(false, op, ": '", path, "': cannot open: ", std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        DYAD_CHECK(false, op, ": '", path, "': cannot stat: ", std::strerror(err));
    }
    DYAD_CHECK(S_ISREG(st.st_mode), op, ": '", path, "': not a regular file");
    // Images of at most 16384 x 16384 pixels; anything over 1 GiB is not one of ours.
    DYAD_CHECK(st.st_size <= (int64_t(1) << 30), op, ": '", path, "': the file is ", int64_t(st.st_size),
               " bytes, too large for an image this reader accepts (1 GiB at most)");
    std::vector<uint8_t> bytes(size_t(st.st_size));
    errno = 0;  // read_all stops short at the end of the file (errno untouched) or at an error (errno set)
    const size_t done = io::detail::read_all(fd.get(), bytes.data(), bytes.size());
    if (done < bytes.size() && errno != 0) {
        const int err = errno;
        DYAD_CHECK(false, op, ": '", path, "': read error: ", std::strerror(err));
    }
    DYAD_CHECK(done == bytes.size(), op, ": '", path, "': the file shrank while being read (", done, " of ",
               bytes.size(), " bytes)");
    return bytes;
}

bool is_png(const uint8_t* b, size_t n) { return n >= 1 && b[0] == 0x89; }  // check_png reads the rest
bool is_jpeg(const uint8_t* b, size_t n) { return n >= 2 && b[0] == 0xFF && b[1] == 0xD8; }

// What a file that is neither a JPEG nor a PNG is, by its first bytes.
std::string other_format(const uint8_t* b, size_t n) {
    auto starts = [&](const std::string& magic, size_t at = 0) {
        return n >= at + magic.size() && std::memcmp(b + at, magic.data(), magic.size()) == 0;
    };
    if (n == 0) return "empty (0 bytes)";
    const char* what = starts("GIF8")                                                       ? "a GIF file"
                       : starts("BM")                                                       ? "a BMP file"
                       : starts("RIFF") && starts("WEBP", 8)                                ? "a WebP file"
                       : starts(std::string("II*\0", 4)) || starts(std::string("MM\0*", 4)) ? "a TIFF file"
                                                                                            : nullptr;
    if (what) return std::string(what) + ", not a JPEG or PNG (the formats this reader takes)";
    std::string head;
    char buf[4];
    for (size_t i = 0; i < n && i < 4; i++) {
        std::snprintf(buf, sizeof buf, "%02X", unsigned(b[i]));
        head += (i ? " " : "") + std::string(buf);
    }
    return "not a JPEG or PNG: it starts with " + head + " instead of FF D8 (JPEG) or 89 50 4E 47 (PNG)";
}

// Decodes bytes that passed their format's check; `where` prefixes every error ("decode_image",
// "decode_jpeg_file: 'path'" ...).
Image decode_checked(const uint8_t* bytes, size_t n, int channels, const std::string& where) {
    DYAD_CHECK(n <= size_t(INT_MAX), where, ": ", n, " bytes are too many for the decoder");
    int w = 0, h = 0, file_channels = 0;
    stbi_uc* pixels = stbi_load_from_memory(bytes, int(n), &w, &h, &file_channels, channels);
    if (pixels == nullptr) {
        const char* why = stbi_failure_reason();
        DYAD_CHECK(false, where, ": the decoder failed: ", why ? why : "unknown reason");
    }
    Image image;
    image.h = h, image.w = w, image.c = channels;
    try {
        image.pixels.assign(pixels, pixels + size_t(h) * size_t(w) * size_t(channels));
    } catch (...) {
        stbi_image_free(pixels);
        throw;
    }
    stbi_image_free(pixels);
    return image;
}

// A JPEG (only_jpeg) or a JPEG or PNG: checked by its format's check, then decoded.
Image decode_bytes(const uint8_t* bytes, size_t n, int channels, const std::string& where, bool only_jpeg) {
    DYAD_CHECK(channels == 1 || channels == 3, where, ": channels must be 1 or 3, got ", channels);
    if (only_jpeg || is_jpeg(bytes, n)) {
        const std::string problem = check_jpeg(bytes, n);
        DYAD_CHECK(problem.empty(), where, ": not a valid JPEG: ", problem);
    } else if (is_png(bytes, n)) {
        const std::string problem = check_png(bytes, n);
        DYAD_CHECK(problem.empty(), where, ": not a valid PNG: ", problem);
    } else {
        DYAD_CHECK(false, where, ": ", other_format(bytes, n));
    }
    return decode_checked(bytes, n, channels, where);
}

void append_bytes(void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
}

}  // namespace

// ---------------------------------------------------------------------------- decode
Image decode_jpeg(const uint8_t* bytes, size_t n, int channels) {
    return decode_bytes(bytes, n, channels, "decode_jpeg", /*only_jpeg=*/true);
}

Image decode_jpeg_file(const std::string& path, int channels) {
    const std::vector<uint8_t> bytes = read_file(path, "decode_jpeg_file");
    return decode_bytes(bytes.data(), bytes.size(), channels, "decode_jpeg_file: '" + path + "'", true);
}

Image decode_image(const uint8_t* bytes, size_t n, int channels) {
    return decode_bytes(bytes, n, channels, "decode_image", /*only_jpeg=*/false);
}

Image decode_image_file(const std::string& path, int channels) {
    const std::vector<uint8_t> bytes = read_file(path, "decode_image_file");
    return decode_bytes(bytes.data(), bytes.size(), channels, "decode_image_file: '" + path + "'", false);
}

// ---------------------------------------------------------------------------- encode
void write_jpeg_file(const std::string& path, const Image& image, int quality) {
    DYAD_CHECK(quality >= 1 && quality <= 100, "write_jpeg_file: '", path, "': quality ", quality,
               " is outside 1..100");
    DYAD_CHECK(image.c == 1 || image.c == 3, "write_jpeg_file: '", path, "': ", image.c,
               " channels (1 or 3 supported)");
    DYAD_CHECK(image.h >= 1 && image.h <= 65535 && image.w >= 1 && image.w <= 65535, "write_jpeg_file: '", path,
               "': size ", image.w, "x", image.h, " is outside 1..65535");
    DYAD_CHECK(int64_t(image.pixels.size()) == image.h * image.w * image.c, "write_jpeg_file: '", path,
               "': ", image.pixels.size(), " pixel bytes for a ", image.h, "x", image.w, "x", image.c, " image (",
               image.h * image.w * image.c, " expected)");
    // stb_image_write writes baseline YCbCr with three components; a grayscale image gets neutral chroma
    // (Cb = Cr = 128 exactly), so it decodes to three equal channels.
    std::vector<uint8_t> encoded;
    encoded.reserve(size_t(image.h * image.w * image.c) / 4 + 1024);
    const int ok = stbi_write_jpg_to_func(append_bytes, &encoded, int(image.w), int(image.h), int(image.c),
                                          image.pixels.data(), quality);
    DYAD_CHECK(ok != 0 && !encoded.empty(), "write_jpeg_file: '", path, "': the encoder failed");

    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        const int err = errno;
        DYAD_CHECK(false, "write_jpeg_file: cannot create '", path, "': ", std::strerror(err));
    }
    if (!io::detail::write_all(fd, encoded.data(), encoded.size())) {
        const int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        DYAD_CHECK(false, "write_jpeg_file: cannot write '", path, "': ", std::strerror(err));
    }
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        DYAD_CHECK(false, "write_jpeg_file: cannot write '", path, "': close failed: ", std::strerror(err));
    }
}

// ---------------------------------------------------------------------------- resize
Image resize_and_crop(const Image& image, int64_t size) {
    DYAD_CHECK(size >= 1 && size <= kMaxSide, "resize_and_crop: size ", size, " is outside 1..", kMaxSide);
    DYAD_CHECK(image.h >= 1 && image.h <= kMaxSide && image.w >= 1 && image.w <= kMaxSide, "resize_and_crop: image ",
               image.w, "x", image.h, " is outside 1..", kMaxSide);
    DYAD_CHECK(image.c >= 1 && image.c <= 4 && int64_t(image.pixels.size()) == image.h * image.w * image.c,
               "resize_and_crop: ", image.pixels.size(), " pixel bytes for a ", image.h, "x", image.w, "x", image.c,
               " image (1 to 4 channels)");
    if (image.h == size && image.w == size) return image;
    // torchvision's Resize(size): the shorter side becomes `size`, the longer one keeps the aspect ratio
    // (truncated); then CenterCrop(size), its offsets rounded half to even as Python's round() does.
    const bool tall = image.w <= image.h;
    const double s = double(size), shorter = double(tall ? image.w : image.h),
                 longer = double(tall ? image.h : image.w);
    const int64_t rw = tall ? size : int64_t(s * longer / shorter), rh = tall ? int64_t(s * longer / shorter) : size;
    const double left = std::nearbyint(double(rw - size) / 2.0), top = std::nearbyint(double(rh - size) / 2.0);
    // Only the crop is resampled: stb maps the window [left, left + size) x [top, top + size) of the resized
    // image back to the source (in 0..1 coordinates) at the same scale, its filter reading the pixels around it.
    Image out;
    out.h = out.w = size;
    out.c = image.c;
    out.pixels.resize(size_t(size * size * image.c));
    const int ok = stbir_resize_region(
        image.pixels.data(), int(image.w), int(image.h), 0, out.pixels.data(), int(size), int(size), 0,
        STBIR_TYPE_UINT8, int(image.c), STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP,
        STBIR_FILTER_TRIANGLE, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr, float(left / double(rw)),
        float(top / double(rh)), float((left + s) / double(rw)), float((top + s) / double(rh)));
    DYAD_CHECK(ok != 0, "resize_and_crop: the resizer failed on a ", image.w, "x", image.h, " image");
    return out;
}

}  // namespace dyad::data
