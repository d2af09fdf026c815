// JPEG files: a structural check of the marker segments, run before stb_image sees the bytes (stb_image is
// not hardened against hostile files; this check is what the jpeg fuzz target protects). Decoding and
// encoding are in image.cpp.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "dyad/data.h"

namespace dyad::data {

namespace {

constexpr int kMaxSide = 16384;

std::string hex2(unsigned v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02X", v & 0xffu);
    return buf;
}

std::string marker_name(unsigned m) { return "FF" + hex2(m); }

unsigned be16(const uint8_t* p) { return (unsigned(p[0]) << 8) | p[1]; }

// Names the SOF markers that stb_image cannot decode.
const char* unsupported_sof(unsigned m) {
    switch (m) {
        case 0xC3:
            return "lossless (SOF3)";
        case 0xC5:
            return "hierarchical differential sequential (SOF5)";
        case 0xC6:
            return "hierarchical differential progressive (SOF6)";
        case 0xC7:
            return "hierarchical differential lossless (SOF7)";
        case 0xC9:
            return "arithmetic-coded extended sequential (SOF9)";
        case 0xCA:
            return "arithmetic-coded progressive (SOF10)";
        case 0xCB:
            return "arithmetic-coded lossless (SOF11)";
        case 0xCD:
            return "arithmetic-coded hierarchical sequential (SOF13)";
        case 0xCE:
            return "arithmetic-coded hierarchical progressive (SOF14)";
        case 0xCF:
            return "arithmetic-coded hierarchical lossless (SOF15)";
        case 0xCC:
            return "arithmetic coding (DAC)";
        default:
            return nullptr;
    }
}

struct Frame {
    bool seen = false;
    bool progressive = false;
    int components = 0;
    unsigned w = 0, h = 0;
    int hmax = 1, vmax = 1;
    int id[4] = {0, 0, 0, 0};
    int tq[4] = {0, 0, 0, 0};
    int hs[4] = {1, 1, 1, 1}, vs[4] = {1, 1, 1, 1};   // sampling factors
    bool dc_coded[4] = {false, false, false, false};  // in a sequential scan or a progressive DC-first scan
};

// The 8x8 blocks of component c (its own sampled size, without the padding to whole MCUs).
uint64_t component_blocks(const Frame& f, int c) {
    const uint64_t cw = (uint64_t(f.w) * uint64_t(f.hs[c]) + uint64_t(f.hmax) - 1) / uint64_t(f.hmax);
    const uint64_t ch = (uint64_t(f.h) * uint64_t(f.vs[c]) + uint64_t(f.vmax) - 1) / uint64_t(f.vmax);
    return ((cw + 7) / 8) * ((ch + 7) / 8);
}

}  // namespace

// ---------------------------------------------------------------------------- check
std::string check_jpeg(const uint8_t* b, size_t n) {
    if (b == nullptr || n == 0) return "empty (0 bytes)";
    if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) {
        if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "a PNG file, not a JPEG";
        std::string head;
        for (size_t i = 0; i < n && i < 4; i++) head += (i ? " " : "") + hex2(b[i]);
        return "not a JPEG: it starts with " + head + " instead of the SOI marker FF D8";
    }
    Frame frame;
    bool dc_defined[4] = {false, false, false, false}, ac_defined[4] = {false, false, false, false};
    bool q_defined[4] = {false, false, false, false};
    int scans = 0;
    uint64_t scan_bytes = 0;  // entropy-coded bytes of all scans
    size_t pos = 2;
    auto at = [](size_t p) { return "at byte " + std::to_string(p); };
    for (;;) {
        // A marker: FF, any number of fill FFs, then the code.
        if (pos >= n) return "truncated: the file ends at byte " + std::to_string(n) + " without an EOI marker";
        if (b[pos] != 0xFF)
            return "expected a marker " + at(pos) + ", found the byte " + hex2(b[pos]) + " (corrupt segment lengths?)";
        const size_t marker_pos = pos;
        while (pos < n && b[pos] == 0xFF) pos++;
        if (pos >= n) return "truncated: the file ends inside a marker " + at(marker_pos);
        const unsigned m = b[pos++];
        if (m == 0xD9) {  // EOI; anything after it is ignored, as decoders do
            if (!frame.seen) return "EOI " + at(marker_pos) + " before any frame header";
            if (scans == 0) return "EOI " + at(marker_pos) + " before any scan";
            // Every block of every component codes its DC coefficient (at least one bit) in a sequential
            // scan or a progressive DC-first scan. A file short of that bound is damaged, and it would
            // make the decoder allocate and fill a frame far larger than the file could describe.
            uint64_t blocks = 0;
            for (int c = 0; c < frame.components; c++) {
                if (!frame.dc_coded[c])
                    return "component " + std::to_string(frame.id[c]) + " is in no scan that codes its DC coefficients";
                blocks += component_blocks(frame, c);
            }
            if (scan_bytes * 8 < blocks)
                return "the scan data (" + std::to_string(scan_bytes) + " bytes) is too short for the " +
                       std::to_string(blocks) + " blocks of a " + std::to_string(frame.w) + "x" +
                       std::to_string(frame.h) + " frame (each needs at least one bit)";
            return "";
        }
        if (m == 0x00) return "a stuffed FF 00 " + at(marker_pos) + " outside of scan data";
        if (m == 0xD8) return "a second SOI marker " + at(marker_pos);
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // TEM, RSTn: no length
        if (const char* what = unsupported_sof(m))
            return std::string("unsupported JPEG process: ") + what + " " + at(marker_pos);

        // Every other marker starts a segment with a 2-byte length that counts itself.
        if (n - pos < 2)
            return "truncated: the file ends inside the length of " + marker_name(m) + " " + at(marker_pos);
        const size_t len = be16(b + pos);
        if (len < 2) return "segment " + marker_name(m) + " " + at(marker_pos) + " has length " + std::to_string(len);
        if (len > n - pos)
            return "segment " + marker_name(m) + " " + at(marker_pos) + " has length " + std::to_string(len) +
                   ", running past the end of the file (" + std::to_string(n) + " bytes)";
        const uint8_t* s = b + pos + 2;
        const size_t sl = len - 2;  // payload bytes
        const size_t seg_end = pos + len;
        const std::string seg = marker_name(m) + " " + at(marker_pos);

        if (m == 0xC0 || m == 0xC1 || m == 0xC2) {  // SOF0/1/2: baseline, extended, progressive Huffman
            if (frame.seen) return "a second frame header " + seg;
            if (sl < 6) return "frame header " + seg + " is too short (" + std::to_string(len) + " bytes)";
            if (s[0] != 8) return "frame header " + seg + ": precision " + std::to_string(s[0]) + " (8 bits only)";
            const unsigned h = be16(s + 1), w = be16(s + 3), nc = s[5];
            if (h < 1 || h > kMaxSide || w < 1 || w > kMaxSide)
                return "frame header " + seg + ": size " + std::to_string(w) + "x" + std::to_string(h) +
                       " is outside 1.." + std::to_string(kMaxSide);
            if (nc != 1 && nc != 3)
                return "frame header " + seg + ": " + std::to_string(nc) + " components (1 or 3 supported" +
                       (nc == 4 ? "; 4 is CMYK or YCCK, which this reader does not convert: save the image as RGB)"
                                : ")");
            if (sl != 6 + 3 * nc)
                return "frame header " + seg + ": length " + std::to_string(len) + " does not match " +
                       std::to_string(nc) + " components";
            int hmax = 1, vmax = 1;
            for (unsigned i = 0; i < nc; i++) {
                const unsigned hs = s[7 + 3 * i] >> 4, vs = s[7 + 3 * i] & 15, tq = s[8 + 3 * i];
                if (hs < 1 || hs > 4 || vs < 1 || vs > 4)
                    return "frame header " + seg + ": component " + std::to_string(i) + " has sampling factors " +
                           std::to_string(hs) + "x" + std::to_string(vs) + " (1..4)";
                if (tq > 3)
                    return "frame header " + seg + ": component " + std::to_string(i) + " uses quantisation table " +
                           std::to_string(tq) + " (0..3)";
                for (unsigned j = 0; j < i; j++)
                    if (frame.id[j] == s[6 + 3 * i])
                        return "frame header " + seg + ": duplicate component id " + std::to_string(s[6 + 3 * i]);
                frame.id[i] = s[6 + 3 * i];
                frame.tq[i] = int(tq);
                frame.hs[i] = int(hs);
                frame.vs[i] = int(vs);
                hmax = std::max(hmax, int(hs));
                vmax = std::max(vmax, int(vs));
            }
            for (unsigned i = 0; i < nc; i++) {
                if (hmax % (s[7 + 3 * i] >> 4) != 0 || vmax % (s[7 + 3 * i] & 15) != 0)
                    return "frame header " + seg + ": sampling factors that are not integer ratios";
            }
            frame.seen = true;
            frame.progressive = m == 0xC2;
            frame.components = int(nc);
            frame.w = w, frame.h = h;
            frame.hmax = hmax, frame.vmax = vmax;
        } else if (m == 0xC4) {  // DHT: one or more Huffman tables
            size_t p = 0;
            if (sl == 0) return "Huffman table segment " + seg + " is empty";
            while (p < sl) {
                const unsigned tc = s[p] >> 4, th = s[p] & 15;
                if (tc > 1 || th > 3)
                    return "Huffman table " + seg + ": class " + std::to_string(tc) + " id " + std::to_string(th) +
                           " (class 0..1, id 0..3)";
                if (sl - p < 17) return "Huffman table " + seg + ": the segment ends inside the code counts";
                unsigned total = 0, code = 0;
                for (unsigned j = 0; j < 16; j++) {
                    const unsigned count = s[p + 1 + j];
                    total += count;
                    code += count;
                    if (code > (1u << (j + 1)))
                        return "Huffman table " + seg + ": more codes of length " + std::to_string(j + 1) +
                               " than fit (the code lengths are over-subscribed)";
                    code <<= 1;
                }
                if (total > 256)
                    return "Huffman table " + seg + ": the code counts sum to " + std::to_string(total) +
                           " symbols (256 at most)";
                if (sl - p - 17 < total)
                    return "Huffman table " + seg + ": " + std::to_string(total) + " symbols do not fit in the segment";
                // The symbols' values: a DC symbol is the bit count of a DC difference (0..11 for 8-bit
                // samples), an AC symbol a zero run (high nibble) and the bit count of the coefficient (low
                // nibble, 0..10). Decoders use these counts as shift amounts; larger ones never occur in a
                // valid 8-bit file.
                for (unsigned i = 0; i < total; i++) {
                    const unsigned v = s[p + 17 + i];
                    if (tc == 0 && v > 11)
                        return "Huffman table " + seg + ": DC table (class 0) id " + std::to_string(th) +
                               " has the symbol value " + std::to_string(v) +
                               " (a DC difference of 8-bit samples has at most 11 bits)";
                    if (tc == 1 && (v & 15) > 10)
                        return "Huffman table " + seg + ": AC table (class 1) id " + std::to_string(th) +
                               " has the symbol value " + std::to_string(v) + " (0x" + hex2(v) + ": a coefficient of " +
                               std::to_string(v & 15) + " bits; 8-bit samples have at most 10)";
                }
                (tc == 0 ? dc_defined : ac_defined)[th] = true;
                p += 17 + total;
            }
        } else if (m == 0xDB) {  // DQT: one or more quantisation tables
            size_t p = 0;
            if (sl == 0) return "quantisation table segment " + seg + " is empty";
            while (p < sl) {
                const unsigned pq = s[p] >> 4, tq = s[p] & 15;
                if (pq > 1 || tq > 3)
                    return "quantisation table " + seg + ": precision " + std::to_string(pq) + " id " +
                           std::to_string(tq) + " (precision 0..1, id 0..3)";
                const size_t size = pq == 0 ? 64 : 128;
                if (sl - p - 1 < size)
                    return "quantisation table " + seg + ": " + std::to_string(size) +
                           " bytes of table do not fit in the segment";
                q_defined[tq] = true;
                p += 1 + size;
            }
        } else if (m == 0xDD) {  // DRI
            if (sl != 2) return "restart interval segment " + seg + " has length " + std::to_string(len) + " (4)";
        } else if (m == 0xDA) {  // SOS, then the entropy-coded data
            if (!frame.seen) return "scan " + seg + " before any frame header";
            if (sl < 1) return "scan header " + seg + " is empty";
            const unsigned ns = s[0];
            if (ns < 1 || ns > 4 || int(ns) > frame.components)
                return "scan header " + seg + ": " + std::to_string(ns) + " components (1.." +
                       std::to_string(frame.components) + ")";
            if (sl != 1 + 2 * ns + 3)
                return "scan header " + seg + ": length " + std::to_string(len) + " does not match " +
                       std::to_string(ns) + " components";
            const unsigned ss = s[1 + 2 * ns], se = s[2 + 2 * ns], ah = s[3 + 2 * ns] >> 4, al = s[3 + 2 * ns] & 15;
            if (frame.progressive) {
                if (ss > 63 || se > 63 || ss > se || ah > 13 || al > 13)
                    return "scan header " + seg + ": invalid progressive parameters";
            } else if (ss != 0 || ah != 0 || al != 0) {
                return "scan header " + seg + ": a sequential scan with progressive parameters";
            }
            for (unsigned i = 0; i < ns; i++) {
                const int id = s[1 + 2 * i];
                const unsigned td = s[2 + 2 * i] >> 4, ta = s[2 + 2 * i] & 15;
                int which = -1;
                for (int c = 0; c < frame.components; c++)
                    if (frame.id[c] == id) which = c;
                if (which < 0)
                    return "scan header " + seg + ": component id " + std::to_string(id) + " is not in the frame";
                if (td > 3 || ta > 3) return "scan header " + seg + ": Huffman table ids above 3";
                if (!q_defined[frame.tq[which]])
                    return "scan " + seg + ": quantisation table " + std::to_string(frame.tq[which]) +
                           " was never defined";
                const bool needs_dc = !frame.progressive || (ss == 0 && ah == 0);
                const bool needs_ac = !frame.progressive || se > 0;
                if (needs_dc && !dc_defined[td])
                    return "scan " + seg + ": DC Huffman table " + std::to_string(td) + " was never defined";
                if (needs_ac && !ac_defined[ta])
                    return "scan " + seg + ": AC Huffman table " + std::to_string(ta) + " was never defined";
                if (!frame.progressive || (ss == 0 && ah == 0)) frame.dc_coded[which] = true;
            }
            // Entropy-coded data: FF 00 (a stuffed FF) and FF D0..D7 (restarts) belong to it; any other FF
            // starts the next marker.
            size_t p = seg_end;
            for (;;) {
                while (p < n && b[p] != 0xFF) p++;
                if (p + 1 >= n)
                    return "truncated: the file ends inside the scan data of the scan " + at(marker_pos) +
                           " (no EOI marker)";
                const uint8_t next = b[p + 1];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                    p += 2;
                    continue;
                }
                break;
            }
            scans++;
            scan_bytes += p - seg_end;
            pos = p;
            continue;
        } else if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) {  // APPn, COM: skipped
        } else if (m == 0xDC) {                              // DNL
            if (sl != 2) return "DNL segment " + seg + " has length " + std::to_string(len) + " (4)";
        } else {
            return "unsupported or invalid marker " + seg;
        }
        pos = seg_end;
    }
}

}  // namespace dyad::data
