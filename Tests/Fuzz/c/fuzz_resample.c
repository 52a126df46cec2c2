/* libFuzzer target: the Lanczos resampler's entry point, cvips_resample_lanczos (Sources/CVipsShim/
   lanczos_resample.c), with every argument drawn from the fuzz bytes: the input image's size, band count
   and sample format, how it is held (in memory, or a lazy view libvips must render first), the output
   size (small and plausible, any scale from a 1/64 reduction to a 16× enlargement, or an edge value:
   0, negative, INT_MAX, 10^7, sizes whose byte counts overflow 32 bits) and the pixels. Input buffers are
   real and small (at most 256 KiB); outputs are allowed up to what a memory-limited process gets
   (allocations over ASAN_OPTIONS' max_allocation_size_mb fail, as they would there).

   What must hold:
   - a non-8-bit image, or a width or height below 1, is refused (-1, *out == NULL, a libvips error);
   - on success *out is exactly width×height, with the input's band count, 8-bit, and readable in full;
   - a constant image stays that constant (every band, every pixel) at moderate scales, where the
     fixed-point weights sum to 1 closely enough: a wrong tap, a stale or uninitialised buffer shows;
   - no out-of-bounds access, no undefined behaviour, no leak (ASan, UBSan, LSan).

   Input layout (missing bytes read as 0): see `struct params` below. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cvips_shim.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void) argc;
    setenv("VIPS_WARNING", "0", 0);
    if (cvips_init((*argv)[0])) {
        fprintf(stderr, "vips_init failed\n");
        abort();
    }
    cvips_configure(1, 1);
    return 0;
}

struct reader {
    const uint8_t *data;
    size_t size, at;
};

static uint32_t take(struct reader *r, int bytes) {
    uint32_t value = 0;
    for (int i = 0; i < bytes; i++) value = value << 8 | (r->at < r->size ? r->data[r->at++] : 0);
    return value;
}

/* Output sizes a caller could pass by mistake, or an attacker through a URL the Swift side did not bound. */
static const int edge_sizes[] = {
    0, -1, -2, INT_MIN, INT_MAX, INT_MAX - 1, 1, 2, 3, 7, 8, 9, 65535, 65536, 46341, 10000000, 10000001,
    1 << 24, (1 << 24) + 1, 1 << 30, 100000, 32767, 32768,
};

/* An output size from its 3 bytes: mostly a scale of the input size (so the fuzzer explores factors,
   not just sizes), sometimes any small size, sometimes an edge value. */
static int output_size(uint32_t code, int in_size) {
    int mode = code >> 16, value = code & 0xFFFF;
    if (mode < 160) {
        /* scale in 1/64 … 16 by 1/64 steps */
        double scale = (value % 1024 + 1) / 64.0;
        long size = (long) (in_size * scale + 0.5);
        return size < 1 ? 1 : size > 1 << 16 ? 1 << 16 : (int) size;
    }
    if (mode < 224) return value % 2048 - 8;   /* -8 … 2039: zero and negatives included */
    return edge_sizes[value % (sizeof edge_sizes / sizeof edge_sizes[0])];
}

static const VipsBandFormat formats[] = {
    VIPS_FORMAT_UCHAR, VIPS_FORMAT_CHAR, VIPS_FORMAT_USHORT, VIPS_FORMAT_SHORT, VIPS_FORMAT_UINT,
    VIPS_FORMAT_INT, VIPS_FORMAT_FLOAT, VIPS_FORMAT_COMPLEX, VIPS_FORMAT_DOUBLE, VIPS_FORMAT_DPCOMPLEX,
};

#define MAX_INPUT_BYTES (256 << 10)

/* The allocator's limit run.sh sets (ASAN_OPTIONS max_allocation_size_mb): larger requests return NULL,
   as in a memory-limited process, and the resampler must refuse the size. */
#define ALLOCATION_LIMIT (512.0 * (1 << 20))

/* Taps per output position: 2 × ceil(3 × scale) + 1, scale = max(1, in / out). */
static double taps_for(int in, int out) {
    double scale = (double) in / out;
    return 2 * ceil(3 * (scale < 1 ? 1 : scale)) + 1;
}

/* The harness's budget, modelled on what the resampler allocates and computes. Weights whose allocation
   cannot succeed cost nothing (the size is refused), and neither does an output over the allocation
   limit; otherwise an output over 64 MB, or work over ~2·10^6 multiply-adds or weight evaluations (some
   milliseconds under ASan), is skipped: it would be computed, slowly, and tells the fuzzer nothing a
   smaller size does not. */
static int over_budget(int in_w, int in_h, int bands, int width, int height) {
    double htaps = taps_for(in_w, width), vtaps = taps_for(in_h, height);
    int h_refused = 8.0 * width > ALLOCATION_LIMIT || 4.0 * htaps * width > ALLOCATION_LIMIT;
    int v_refused = 8.0 * height > ALLOCATION_LIMIT || 4.0 * vtaps * height > ALLOCATION_LIMIT;
    double work = 0;
    if (!h_refused) work += 20 * (double) width * htaps;   /* a sin() pair per weight */
    if (!v_refused) work += 20 * (double) height * vtaps;
    double output_bytes = (double) width * height * bands;
    if (!h_refused && !v_refused && output_bytes <= ALLOCATION_LIMIT) {
        if (output_bytes > 64.0 * (1 << 20)) return 1;
        if (width != in_w) work += (double) width * (htaps < in_w ? htaps : in_w) * in_h * bands;
        if (height != in_h) work += output_bytes * (vtaps < in_h ? vtaps : in_h);
    }
    return work > 2e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct reader r = { data, size, 0 };
    uint32_t flags = take(&r, 1);
    uint32_t format_code = take(&r, 1), bands_code = take(&r, 1);
    uint32_t in_w_code = take(&r, 2), in_h_code = take(&r, 2);
    uint32_t out_w_code = take(&r, 3), out_h_code = take(&r, 3);

    /* 8-bit mostly; every other libvips format now and then (they must be refused). */
    VipsBandFormat format = format_code < 224 ? VIPS_FORMAT_UCHAR : formats[format_code % 10];
    /* 1…4 bands mostly (grey, grey+alpha, RGB, RGBA), up to 16 otherwise. */
    int bands = bands_code < 224 ? 1 + (int) (bands_code & 3) : 1 + (int) (bands_code % 16);
    /* Input size: mostly up to 64×64, up to 512×512 sometimes, or a very tall or very wide strip
       (Pillow's tall-image order, over 100:1). */
    int in_w, in_h;
    if ((flags & 0x30) == 0x30) {
        in_w = 1 + (int) (in_w_code % 8);
        in_h = 1 + (int) (in_h_code % 4096);
        if (flags & 0x40) { int t = in_w; in_w = in_h; in_h = t; }
    } else if ((flags & 0x30) == 0x20) {
        in_w = 1 + (int) (in_w_code % 512);
        in_h = 1 + (int) (in_h_code % 512);
    } else {
        in_w = 1 + (int) (in_w_code % 64);
        in_h = 1 + (int) (in_h_code % 64);
    }
    size_t pel = (size_t) bands * vips_format_sizeof(format);
    while ((size_t) in_w * in_h * pel > MAX_INPUT_BYTES) {
        if (in_w > in_h) in_w = (in_w + 1) / 2; else in_h = (in_h + 1) / 2;
    }
    int width = output_size(out_w_code, in_w), height = output_size(out_h_code, in_h);
    if (width >= 1 && height >= 1 && over_budget(in_w, in_h, bands, width, height)) return 0;
    int constant = (flags & 0x01) != 0;
    int view = (flags >> 1) & 3;   /* 0, 1: in memory; 2: a lazy copy; 3: a crop of a larger image */

    /* The pixels: the rest of the input, repeated (or one constant value per band). */
    size_t bytes = (size_t) in_w * in_h * pel;
    int pad = view == 3 ? 2 : 0;   /* the crop's margin on each side */
    size_t full_bytes = (size_t) (in_w + 2 * pad) * (in_h + 2 * pad) * pel;
    uint8_t *pixels = malloc(full_bytes);
    if (!pixels) return 0;
    uint8_t values[16 * 16];
    for (size_t i = 0; i < sizeof values; i++) values[i] = r.at + i < size ? data[r.at + i] : (uint8_t) (i * 37);
    if (constant) {
        for (size_t i = 0; i < full_bytes; i++) pixels[i] = values[i % pel];
    } else if (r.at < size) {
        for (size_t i = 0; i < full_bytes; i++) pixels[i] = data[r.at + i % (size - r.at)];
    } else {
        for (size_t i = 0; i < full_bytes; i++) pixels[i] = (uint8_t) (i * 131 + 7);
    }
    /* Floats made from arbitrary bytes can be NaN or infinite: fine, they are refused before any arithmetic. */

    VipsImage *memory = vips_image_new_from_memory_copy(pixels, full_bytes, in_w + 2 * pad, in_h + 2 * pad, bands, format);
    free(pixels);
    if (!memory) {
        fprintf(stderr, "cannot make the %dx%dx%d input\n", in_w, in_h, bands);
        abort();
    }
    memory->Type = bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    VipsImage *in = NULL;
    if (view == 2) {
        if (vips_copy(memory, &in, NULL)) abort();
        g_object_unref(memory);
    } else if (view == 3) {
        if (vips_crop(memory, &in, pad, pad, in_w, in_h, NULL)) abort();
        g_object_unref(memory);
    } else {
        in = memory;
    }

    VipsImage *out = (VipsImage *) (uintptr_t) 1;   /* must be overwritten either way */
    int status = cvips_resample_lanczos(in, &out, width, height);
    int must_refuse = format != VIPS_FORMAT_UCHAR || width < 1 || height < 1;
    if (status != 0) {
        if (status != -1 || out != NULL) {
            fprintf(stderr, "refusal: status %d, out %p\n", status, (void *) out);
            abort();
        }
        char *message = vips_error_buffer_copy();
        if (!message || !*message) {
            fprintf(stderr, "refusal without a libvips error (%dx%dx%d format %d → %dx%d)\n", in_w, in_h, bands, format,
                    width, height);
            abort();
        }
        g_free(message);
    } else {
        if (must_refuse) {
            fprintf(stderr, "accepted %dx%dx%d format %d → %dx%d\n", in_w, in_h, bands, format, width, height);
            abort();
        }
        if (!out || vips_image_get_width(out) != width || vips_image_get_height(out) != height ||
            vips_image_get_bands(out) != bands || vips_image_get_format(out) != VIPS_FORMAT_UCHAR) {
            fprintf(stderr, "wrong output for %dx%dx%d → %dx%d\n", in_w, in_h, bands, width, height);
            abort();
        }
        size_t length = 0;
        uint8_t *result = vips_image_write_to_memory(out, &length);
        if (!result || length != (size_t) width * height * bands) {
            fprintf(stderr, "cannot read the %dx%dx%d output back\n", width, height, bands);
            abort();
        }
        /* The weights of one output position are rounded one by one to 22-bit fixed point, so they sum to
           1 within taps/2 units; with at most ~100 taps a constant stays exact. */
        int moderate = in_w <= 16 * width && in_h <= 16 * height;
        if (constant && moderate) {
            for (size_t i = 0; i < length; i++) {
                if (result[i] != values[i % bands]) {
                    fprintf(stderr, "constant %dx%dx%d (view %d) → %dx%d: pixel %zu band %zu is %d, not %d\n", in_w, in_h,
                            bands, view, width, height, i / bands, i % bands, result[i], values[i % bands]);
                    abort();
                }
            }
        } else {
            volatile unsigned sum = 0;
            for (size_t i = 0; i < length; i++) sum += result[i];
        }
        g_free(result);
        g_object_unref(out);
    }
    g_object_unref(in);
    vips_error_clear();
    return 0;
}
