#!/usr/bin/env bash
# Regenerates the committed seed corpora (Tests/Fuzz/corpus/progressive_dc, …/resample). Not needed to fuzz:
# run.sh only copies them. Needs libvips-tools, ImageMagick and python3, and the shared corpus.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
corpus=${PINHOLE_CORPUS:-$repo/../shared/corpus}
dc=$repo/Tests/Fuzz/corpus/progressive_dc
rs=$repo/Tests/Fuzz/corpus/resample
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dc" "$rs"

# Small JPEGs from the corpus photos: progressive 4:4:4 (the DC decoder), with restart markers and with
# optimised Huffman tables, grey, 4:2:2 (libjpeg's buffered-image path), 4:2:0 and baseline (TurboJPEG).
export VIPS_WARNING=0
vips thumbnail "$corpus/photo-eveningglow-2560x1600.jpg" "$tmp/a.v" 48
vips thumbnail "$corpus/photo-colorfulcups-2560x1600.jpg" "$tmp/b.v" 37 --height 23 --size force
vips thumbnail "$corpus/photo-kite-2560x1600.jpg" "$tmp/c.v" 64
vips colourspace "$tmp/a.v" "$tmp/grey.v" b-w
vips jpegsave "$tmp/a.v" "$dc/prog444-48x30.jpg" --interlace --subsample-mode off --strip --Q 75
vips jpegsave "$tmp/b.v" "$dc/prog444-37x23-optimized.jpg" --interlace --subsample-mode off --strip --Q 90 --optimize-coding
vips jpegsave "$tmp/c.v" "$dc/prog444-restart-64x40.jpg" --interlace --subsample-mode off --strip --Q 60 --restart-interval 3
vips jpegsave "$tmp/grey.v" "$dc/prog-gray-48x30.jpg" --interlace --strip --Q 75
vips jpegsave "$tmp/a.v" "$dc/prog420-48x30.jpg" --interlace --subsample-mode on --strip --Q 75
vips jpegsave "$tmp/b.v" "$dc/baseline444-37x23.jpg" --subsample-mode off --strip --Q 75
vips copy "$tmp/c.v" "$tmp/c.png"
convert "$tmp/c.png" -sampling-factor 2x1 -interlace JPEG -quality 70 -strip "$dc/prog422-64x40.jpg"

# A hand-made one: non-interleaved DC scans only (no AC), the three components sharing quantisation slot 0,
# redefined between the first component's scan and the others' (legal: libjpeg latches each component's
# table at its first scan).
python3 - "$dc/prog444-dc-only-shared-qslot-16x8.jpg" <<'PY'
import struct, sys
def seg(marker, body): return bytes([0xFF, marker]) + struct.pack('>H', len(body) + 2) + body
def dqt(slot, dc):  # 8-bit table, DC value `dc`, the rest 1
    return seg(0xDB, bytes([slot, dc] + [1] * 63))
def dht():  # DC table 0: symbols 0..11, all 4-bit codes
    counts = [0] * 16; counts[3] = 12
    return seg(0xC4, bytes([0x00] + counts + list(range(12))))
class Bits:
    def __init__(s): s.bits = []
    def put(s, value, n):
        for i in range(n - 1, -1, -1): s.bits.append((value >> i) & 1)
    def bytes(s):
        b = s.bits + [1] * (-len(s.bits) % 8); out = bytearray()
        for i in range(0, len(b), 8):
            v = int(''.join(map(str, b[i:i + 8])), 2); out.append(v)
            if v == 0xFF: out.append(0)
        return bytes(out)
def category(v):
    a = abs(v); n = 0
    while a: n += 1; a >>= 1
    return n
def dc_scan(comp_id, values):
    b = Bits(); prev = 0
    for v in values:
        d = v - prev; prev = v; n = category(d)
        b.put(n, 4)
        if n: b.put(d if d >= 0 else d + (1 << n) - 1, n)
    return seg(0xDA, bytes([1, comp_id, 0x00, 0, 0, 0x00])) + b.bytes()
W, H = 16, 8   # 2 blocks
sof = seg(0xC2, bytes([8]) + struct.pack('>HH', H, W) + bytes([3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]))
y, cb, cr = [40, -40], [10, -10], [-20, 20]
data = b'\xFF\xD8' + dqt(0, 8) + sof + dht() + dc_scan(1, y)
# The second and third components use slot 0 too, redefined after the first component's scan: legal
# (the spec only forbids changing a slot between scans *of a component using it*).
data += dqt(0, 2) + dc_scan(2, cb) + dc_scan(3, cr) + b'\xFF\xD9'
open(sys.argv[1], 'wb').write(data)
PY

# Resampler parameter records, in fuzz_resample.c's layout: flags, format, bands, input width and
# height (2 bytes each), output width and height (3 bytes each: mode, value), then pixel bytes.
python3 - "$rs" <<'PY'
import os, random, struct, sys
out = sys.argv[1]
rnd = random.Random(15)
def record(name, flags, fmt, bands, in_w, in_h, out_w, out_h, pixels):
    data = bytes([flags, fmt, bands]) + struct.pack('>HH', in_w, in_h)
    data += bytes([out_w[0]]) + struct.pack('>H', out_w[1]) + bytes([out_h[0]]) + struct.pack('>H', out_h[1])
    open(os.path.join(out, name), 'wb').write(data + bytes(pixels))
noise = [rnd.randrange(256) for _ in range(600)]
# (mode < 160: scale (value % 1024 + 1) / 64 of the input size; < 224: value % 2048 - 8; else an edge size)
record('rgb-64x40-to-3q', 0x00, 0, 2, 63, 39, (0, 47), (0, 47), noise)                # RGB, ¾
record('grey-const-300x17-up2', 0x21, 0, 0, 299, 16, (0, 127), (0, 127), [200])        # constant grey, ×2
record('tall-3x2000-down', 0x30, 0, 2, 2, 1999, (0, 40), (0, 1), noise[:90])          # 100:1 tall strip
record('rgba-lazy-33x33-to-100x7', 0x04, 0, 3, 32, 32, (200, 108), (200, 15), noise)  # RGBA, a lazy copy
record('crop-view-20x20-shrink', 0x06, 0, 1, 19, 19, (0, 3), (0, 9), noise[:200])     # a crop view, 1/16
record('edge-width-0', 0x00, 0, 2, 15, 15, (224, 0), (0, 63), noise[:100])            # width 0: refused
record('int-format', 0x00, 0xE1, 0, 7, 7, (0, 63), (0, 63), noise[:256])              # 32-bit ints: refused
PY
ls -l "$dc" "$rs"
