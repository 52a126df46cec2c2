/* libFuzzer target: the progressive-JPEG DC decoder (Sources/CVipsShim/progressive_dc.c).

   Each input is taken as a JPEG file and goes through
   1. cvips_turbojpeg_load(bytes, len, 1, fast_dct) — exactly what Image.decodeJPEG(eighths: 1, …) calls
      when a render plan decodes a JPEG at 1/8 (RenderPlan: turbo JPEG decode, smallest scale in eighths).
      The Swift side only gets there after libvips read the header and the plan checked the source size
      against maxPixels (75 MP by default), so inputs whose header libjpeg cannot read, or that claim more
      than 75 MP, skip this call, as the service would. Behind it: libjpeg's header check, then
      cvips_progressive_dc_decode for 4:4:4 / grey, libjpeg's buffered-image mode for 4:2:2, TurboJPEG
      at 1/8 for everything else;
   2. cvips_progressive_dc_decode(bytes, len) directly, on every input: its own parser must refuse
      whatever it cannot decode, whether or not libjpeg's header reader would have let it through.

   A decoded image must be 1 or 3 bands of 8-bit pixels, ceil(w/8)×ceil(h/8) of the frame header, and
   every pixel is read (ASan checks the buffer libvips owns).

   The oracle (on unless PINHOLE_FUZZ_DC_ORACLE=0): a successful DC decode is compared with libjpeg's
   own 1/8 decode of the DC scans (buffered-image mode, block smoothing off, stopped once every DC is
   complete: what the shim's 4:2:2 path does), when libjpeg decodes the file without a warning. The pixels
   must be equal, which is what progressive_dc.c promises; a difference aborts with both values. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <turbojpeg.h>
#include "cvips_shim.h"

#define MAX_PIXELS 75000000L   /* RenderSettings.maxPixels' default */

static int oracle = 0;
static volatile unsigned sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void) argc;
    setenv("VIPS_WARNING", "0", 0);
    if (cvips_init((*argv)[0])) {
        fprintf(stderr, "vips_init failed\n");
        abort();
    }
    cvips_configure(1, 1);   /* as VipsRuntime.start: one thread per pipeline, untrusted loaders blocked */
    const char *o = getenv("PINHOLE_FUZZ_DC_ORACLE");
    oracle = !(o && *o == '0');
    return 0;
}

/* Reads every pixel: a libvips image whose buffer is shorter than its header says would be found here. */
static void check_image(VipsImage *image, const char *what) {
    int bands = vips_image_get_bands(image), width = vips_image_get_width(image), height = vips_image_get_height(image);
    if (vips_image_get_format(image) != VIPS_FORMAT_UCHAR || (bands != 1 && bands != 3) || width < 1 || height < 1 ||
        width > 8192 || height > 8192) {
        fprintf(stderr, "%s: unexpected image %dx%d, %d bands, format %d\n", what, width, height, bands,
                vips_image_get_format(image));
        abort();
    }
    size_t size = 0;
    unsigned char *pixels = vips_image_write_to_memory(image, &size);
    if (!pixels || size != (size_t) width * height * bands) {
        fprintf(stderr, "%s: cannot read back %dx%dx%d pixels\n", what, width, height, bands);
        abort();
    }
    unsigned sum = 0;
    for (size_t i = 0; i < size; i++) sum += pixels[i];
    sink = sum;
    g_free(pixels);
}

/* The frame header's size, as libjpeg reads it (the DC decoder reads the same SOF2). */
static int frame_size(const uint8_t *data, size_t size, int *width, int *height) {
    tjhandle handle = tjInitDecompress();
    if (!handle) return -1;
    int subsampling = 0, colorspace = 0;
    int status = tjDecompressHeader3(handle, data, (unsigned long) size, width, height, &subsampling, &colorspace);
    tjDestroy(handle);
    return status;
}

/* ---- The oracle: libjpeg's 1/8 decode of the DC scans, warnings as errors. ---- */

struct oracle_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
};

static void oracle_error_exit(j_common_ptr cinfo) { longjmp(((struct oracle_error *) cinfo->err)->jump, 1); }
static void oracle_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) oracle_error_exit(cinfo);
}
static void oracle_output_message(j_common_ptr cinfo) { (void) cinfo; }

static unsigned char *libjpeg_dc_decode(const uint8_t *data, size_t size, int *width, int *height, int *bands) {
    struct jpeg_decompress_struct cinfo;
    struct oracle_error error;
    unsigned char *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&error.base);
    error.base.error_exit = oracle_error_exit;
    error.base.emit_message = oracle_emit_message;
    error.base.output_message = oracle_output_message;
    jpeg_create_decompress(&cinfo);
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return NULL;
    }
    jpeg_mem_src(&cinfo, data, (unsigned long) size);
    jpeg_read_header(&cinfo, TRUE);
    if (!cinfo.progressive_mode) longjmp(error.jump, 1);
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    cinfo.buffered_image = TRUE;
    cinfo.do_block_smoothing = FALSE;
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    for (;;) {
        int status = jpeg_consume_input(&cinfo);
        if (status == JPEG_REACHED_EOI || status == JPEG_SUSPENDED) break;
        if (status != JPEG_SCAN_COMPLETED) continue;
        int complete = 1;
        for (int c = 0; c < cinfo.num_components; c++)
            if (cinfo.coef_bits[c][0] != 0) complete = 0;
        if (complete) break;
    }
    jpeg_start_output(&cinfo, cinfo.input_scan_number);
    *width = (int) cinfo.output_width;
    *height = (int) cinfo.output_height;
    *bands = cinfo.output_components;
    size_t row = (size_t) *width * *bands;
    pixels = malloc(row * *height);
    if (!pixels) longjmp(error.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW line = pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &line, 1);
    }
    jpeg_finish_output(&cinfo);
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return pixels;
}

static void compare_with_libjpeg(const uint8_t *data, size_t size, VipsImage *image) {
    int width = 0, height = 0, bands = 0;
    unsigned char *expected = libjpeg_dc_decode(data, size, &width, &height, &bands);
    if (!expected) return;   /* libjpeg refuses (or warns about) this file: nothing to compare */
    size_t length = 0;
    unsigned char *actual = vips_image_write_to_memory(image, &length);
    if (width != vips_image_get_width(image) || height != vips_image_get_height(image) ||
        bands != vips_image_get_bands(image)) {
        fprintf(stderr, "oracle: DC decoder %dx%dx%d, libjpeg %dx%dx%d\n", vips_image_get_width(image),
                vips_image_get_height(image), vips_image_get_bands(image), width, height, bands);
        abort();
    }
    for (size_t i = 0; i < length; i++) {
        if (actual[i] != expected[i]) {
            fprintf(stderr, "oracle: pixel %zu band %zu: DC decoder %d, libjpeg %d (%dx%dx%d)\n", i / bands, i % bands,
                    actual[i], expected[i], width, height, bands);
            abort();
        }
    }
    g_free(actual);
    free(expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 1. As the service calls it (after its header and size checks). */
    int width = 0, height = 0;
    if (size > 0 && frame_size(data, size, &width, &height) == 0 && (long) width * height <= MAX_PIXELS) {
        VipsImage *image = cvips_turbojpeg_load(data, size, 1, (int) (size & 1));
        if (image) {
            check_image(image, "cvips_turbojpeg_load(eighths: 1)");
            if (vips_image_get_width(image) != (width + 7) / 8 || vips_image_get_height(image) != (height + 7) / 8) {
                fprintf(stderr, "cvips_turbojpeg_load: %dx%d from a %dx%d frame at 1/8\n", vips_image_get_width(image),
                        vips_image_get_height(image), width, height);
                abort();
            }
            g_object_unref(image);
        }
        vips_error_clear();
    }

    /* 2. The DC decoder on its own, whatever the bytes. */
    VipsImage *image = cvips_progressive_dc_decode(data, size);
    if (image) {
        check_image(image, "cvips_progressive_dc_decode");
        if (oracle) compare_with_libjpeg(data, size, image);
        g_object_unref(image);
    }
    vips_error_clear();
    return 0;
}
