// Data sets and batches: image data sets held in memory as uint8, the readers that fill them (Fashion-MNIST
// IDX files, Tiny ImageNet's JPEG (or PNG) files, a generated set in Tiny ImageNet's layout), a binary cache, and a
// loader that shuffles, augments, normalises and prefetches batches on the CPU or the GPU.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dyad/export.h"
#include "dyad/ops.h"  // ImageAugment
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::data {

// ---------------------------------------------------------------------------- data sets
// Images as decoders produce them: uint8 (count, h, w, c), with int32 labels in [0, classes).
struct Dataset {
    Tensor images;                         // uint8 (count, h, w, c), on the CPU (or uploaded: see Loader)
    Tensor labels;                         // int32 (count), on the CPU
    std::vector<std::string> class_ids;    // e.g. Tiny ImageNet's wnids ("n01443537") or "0".."9"
    std::vector<std::string> class_names;  // readable names ("goldfish"; "T-shirt/top")
    int64_t size() const { return images.defined() ? images.size(0) : 0; }
    int64_t classes() const { return int64_t(class_ids.size()); }
    int64_t height() const { return images.size(1); }
    int64_t width() const { return images.size(2); }
    int64_t channels() const { return images.size(3); }
    // The first n images (all when n <= 0 or n >= size()): a view, no copy.
    Dataset head(int64_t n) const;
};

struct Split {
    Dataset train, val;
};

// ---------------------------------------------------------------------------- IDX (MNIST-style) files
// Reads an IDX file, gzip-compressed (".gz", read with zlib) or plain: type 0x08 (uint8) only, 1 dim
// (labels) or 3 dims (images: n, rows, cols). Errors name the file and the problem (bad magic, wrong type,
// truncated data, trailing bytes).
Tensor read_idx(const std::string& path);

// Fashion-MNIST from `dir` (the Debian package dataset-fashion-mnist installs it in the default dir):
// train 60000 and val (the test set) 10000 images of 28x28x1, 10 classes with their names.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
Split load_fashion_mnist(const std::string& dir = kFashionMnistDir);

// ---------------------------------------------------------------------------- JPEG
// Checks a JPEG's segment structure before any decoder sees it: SOI first, every marker and segment length
// inside the file, a frame header (SOF0/SOF1/SOF2) with sane dimensions and 1 or 3 components, Huffman
// tables whose code counts sum to at most 256 symbols (a file with more overruns stb_image 2.27's table)
// and whose symbol values fit 8-bit samples (DC tables: 0..11; AC tables: a coefficient size, the low
// nibble, of 0..10; decoders use them as shift counts), quantisation tables of valid size, and scans that
// code every component's DC coefficients with enough entropy-coded data for at least one bit per 8x8 block
// (so the frame a decoder allocates is bounded by the file's size). Returns "" when the file passes, else
// the reason.
std::string check_jpeg(const uint8_t* bytes, size_t n);

// Decodes a JPEG file (checked first) to 8-bit pixels with `channels` channels (1 or 3; grayscale files
// are expanded to 3, colour ones converted to luminance for 1). Throws dyad::Error naming the file and the
// reason.
struct Image {
    int64_t h = 0, w = 0, c = 0;
    std::vector<uint8_t> pixels;  // h * w * c, HWC
};
Image decode_jpeg_file(const std::string& path, int channels = 3);
Image decode_jpeg(const uint8_t* bytes, size_t n, int channels = 3);  // errors without a file name

// Writes an HWC uint8 image as a JPEG (quality 1-100) with stb_image_write: baseline YCbCr, chroma subsampled
// 2x2 at quality 90 and below. stb writes three components always: a 1-channel image gets neutral chroma and
// decodes to three equal channels (or back to its one channel). Throws naming the file on failure.
void write_jpeg_file(const std::string& path, const Image& image, int quality = 90);

// ---------------------------------------------------------------------------- PNG, and either format
// Checks a PNG's chunk structure before any decoder sees it: the signature, every chunk's length within the
// file and its CRC, IHDR first (1..16384 on each side, a valid bit depth for the colour type, compression,
// filter and interlace methods known), PLTE where the colour type allows it and before the image data,
// tRNS of the right length, consecutive IDAT chunks, no unknown critical chunk, an IEND, and image data
// long enough to inflate to the declared size (deflate expands at most 1032 times: so what the decoder
// allocates is bounded by the file's size). Bytes after IEND are ignored. Returns "" when the file
// passes, else the reason.
std::string check_png(const uint8_t* bytes, size_t n);

// Decodes a JPEG or a PNG, told apart by their first bytes, after its format's check: 8-bit pixels with
// `channels` channels (1 or 3). PNGs of every colour type and bit depth (16-bit samples are reduced to 8,
// palettes expanded, interlacing undone); an alpha channel is dropped (transparent pixels keep their stored
// colour). Anything else is refused naming what it is (GIF, BMP, WebP, TIFF, or its first bytes). Throws
// dyad::Error naming the file and the reason.
Image decode_image_file(const std::string& path, int channels = 3);
Image decode_image(const uint8_t* bytes, size_t n, int channels = 3);  // errors without a file name

// torchvision's evaluation transform, Resize(size) then CenterCrop(size): the shorter side scaled to `size`
// (the longer one keeping the aspect ratio, truncated), then the centred size x size window, its offsets
// rounded half to even as Python does. Bilinear (a triangle filter, widened when shrinking, as PIL's
// antialiased bilinear), on the stored values (no gamma conversion); only the window is resampled. An image
// already size x size is returned as it is. 1 to 4 channels.
Image resize_and_crop(const Image& image, int64_t size);

// ---------------------------------------------------------------------------- Tiny ImageNet
// The layout of an unzipped tiny-imagenet-200: wnids.txt (label order), words.txt (names),
// train/<wnid>/images/*.JPEG, val/images/*.JPEG with val/val_annotations.txt (file, wnid, box). test/ is
// ignored. Images are 64x64 JPEGs, or PNGs (files named .png, or any listed file whose bytes are a PNG),
// read with decode_image_file; grayscale ones come out with 3 identical channels. An image of another size
// is brought to 64x64 as predict treats a photo (resize_and_crop: shorter side scaled, centre cropped) and
// listed in the report's `resized`. Files that cannot be used (unreadable, missing, not a valid JPEG or
// PNG) are skipped and listed in the report with the reason, up to max_failure_fraction per split;
// directories inside an images folder are ignored. A listed class whose images folder is missing or holds no JPEG or
// PNG files is an error naming the folder, and so is (when limit_train cuts nothing) a class left without any image
// after its failed files are skipped.
struct TinyImageNetOptions {
    int threads = 0;                         // decoding threads; 0 = all cores
    double max_failure_fraction = 0.01;      // more failed files than this aborts with an error
    bool use_cache = true;                   // read/write the decoded set as a cache file
    std::string cache_path;                  // "" = <root>/dyad-cache.bin
    int64_t limit_train = 0, limit_val = 0;  // decode at most this many (0 = all; per split, in file order)
};
struct LoadReport {
    bool from_cache = false;
    int64_t decoded = 0;                                        // files decoded (0 when read from the cache)
    std::vector<std::pair<std::string, std::string>> failures;  // (path, reason) of skipped files
    std::vector<std::pair<std::string, std::string>> resized;   // (path, "WxH" as stored) of resized files
    double seconds = 0;
    std::string summary() const;  // one line, plus one per resized file (at most 5) and failure (at most 20)
};
Split load_tiny_imagenet(const std::string& root, const TinyImageNetOptions& options = {},
                         LoadReport* report = nullptr);

// Writes a small data set in Tiny ImageNet's exact layout: `classes` classes of learnable patterns (each
// class a different stripe orientation and frequency with a class colour, random phase and noise), size x
// size JPEGs, every 7th image grayscale (three equal channels); wnids "n00000000"..., words.txt names "pattern 0"...
void write_generated_tiny_imagenet(const std::string& root, int classes, int train_per_class, int val_per_class,
                                   uint64_t seed, int size = 64);

// ---------------------------------------------------------------------------- cache files
// A Split stored as one binary file: magic "DYADDSET", format version, the source's fingerprint (e.g.
// file count and total size of the source files, so a changed source is detected), shapes, class ids and
// names, the pixels and labels, and a checksum of everything before it (FNV-1a 64 over 8-byte words in four
// interleaved lanes, fast enough for gigabytes: see lib/data/cache.cpp). read_cache returns
// false (and says why in *why) when the file is missing, from another version or source, truncated or
// damaged; it never returns partial data.
void write_cache(const std::string& path, const Split& split, const std::string& fingerprint);
bool read_cache(const std::string& path, const std::string& fingerprint, Split* split, std::string* why = nullptr);

// ---------------------------------------------------------------------------- batches
struct LoaderOptions {
    int64_t batch_size = 128;
    bool shuffle = true;            // a new seeded permutation every epoch
    bool drop_last = false;         // drop a final partial batch
    uint64_t seed = 0;              // permutation and augmentation both follow from (seed, epoch)
    ImageAugment augment;           // crop/flip/pad/out size (no augmentation by default)
    std::vector<float> mean, std;   // per channel, in [0, 1] pixel units (empty: 0 and 1)
    int prefetch = 2;               // batches prepared ahead by a background thread (0: on the caller's thread)
    Device device = Device::cpu();  // where batches are made; on a GPU the data set is uploaded once
    // Data-parallel training (PyTorch's DistributedSampler): this loader's share of each epoch for rank
    // `rank` of `world_size` (dist::rank(), dist::world_size()). Every rank draws the same permutation from
    // (seed, epoch), pads it with its own first indices to a multiple of world_size (with drop_last: cuts
    // it to one instead) and takes every world_size-th index from position rank, so the ranks' shares are
    // equal in size and together cover the epoch. drop_last then also drops a rank's final partial batch.
    int rank = 0, world_size = 1;
};

struct Batch {
    Tensor x;           // float32 (n, c, out_h, out_w) on the loader's device
    Tensor y;           // int32 (n) on the loader's device
    int64_t index = 0;  // batch number within the epoch
};

// Batches of a Dataset. Every batch is a pure function of (data, options, epoch, batch index): the same on
// any device and for any prefetch depth. Not copyable; one epoch at a time. The permutation comes from a
// generator of the loader's own (the one behind manual_seed is not touched). The loader keeps handles to
// the pixels (the Dataset object may go away). Bad options or data throw from the constructor; next()
// before start_epoch() throws; an error while a batch is made in the background is rethrown by next().
class Loader {
public:
    Loader(const Dataset& data, LoaderOptions options);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    int64_t batches_per_epoch() const;
    // Starts epoch `epoch` (any order; restarting stops the background work of the previous one).
    void start_epoch(int64_t epoch);
    // The next batch of the current epoch; false at its end.
    bool next(Batch& batch);
    const LoaderOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dyad::data

DYAD_PUBLIC_END
