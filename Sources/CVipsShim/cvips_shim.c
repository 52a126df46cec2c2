#include "cvips_shim.h"

int cvips_init(const char *argv0) { return VIPS_INIT(argv0); }

void cvips_configure(int concurrency, int block_untrusted) {
    /* The operation cache would hold operations that point at request buffers: off, as in sharp and imgproxy. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(concurrency);
    vips_block_untrusted_set(block_untrusted ? TRUE : FALSE);
}

void cvips_set_operation_blocked(const char *name, int blocked) { vips_operation_block_set(name, blocked ? TRUE : FALSE); }

char *cvips_error_take(void) { return vips_error_buffer_copy(); }

VipsImage *cvips_open_buffer(const void *buf, size_t len, const char *options, int sequential, int fail_on) {
    return vips_image_new_from_buffer(buf, len, options,
        "access", sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM,
        "fail_on", (VipsFailOn) fail_on, NULL);
}

const char *cvips_find_loader(const void *buf, size_t len) { return vips_foreign_find_load_buffer(buf, len); }

int cvips_orientation(VipsImage *in) {
    int orientation = 1;
    if (vips_image_get_typeof(in, VIPS_META_ORIENTATION) && vips_image_get_int(in, VIPS_META_ORIENTATION, &orientation) == 0)
        return orientation;
    return 1;
}

int cvips_crop(VipsImage *in, VipsImage **out, int left, int top, int width, int height) {
    return vips_crop(in, out, left, top, width, height, NULL);
}

int cvips_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LANCZOS3, NULL);
}

int cvips_flip(VipsImage *in, VipsImage **out, int horizontal) {
    return vips_flip(in, out, horizontal ? VIPS_DIRECTION_HORIZONTAL : VIPS_DIRECTION_VERTICAL, NULL);
}

int cvips_autorot(VipsImage *in, VipsImage **out) { return vips_autorot(in, out, NULL); }

int cvips_rot(VipsImage *in, VipsImage **out, int quarter_turns) {
    static const VipsAngle angles[4] = { VIPS_ANGLE_D0, VIPS_ANGLE_D90, VIPS_ANGLE_D180, VIPS_ANGLE_D270 };
    return vips_rot(in, out, angles[((quarter_turns % 4) + 4) % 4], NULL);
}

int cvips_embed_extend(VipsImage *in, VipsImage **out, int x, int y, int width, int height) {
    return vips_embed(in, out, x, y, width, height, "extend", VIPS_EXTEND_COPY, NULL);
}

int cvips_to_srgb(VipsImage *in, VipsImage **out, int keep_gray) {
    VipsImage *current = in;
    g_object_ref(current);
    /* An embedded profile (CMYK, Adobe RGB, …) is the truth about the pixels: transform through it. */
    if (vips_image_get_typeof(current, VIPS_META_ICC_NAME)) {
        VipsImage *t = NULL;
        VipsInterpretation target = (keep_gray && vips_image_get_bands(current) <= 2) ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
        if (target == VIPS_INTERPRETATION_sRGB &&
            vips_icc_transform(current, &t, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_PERCEPTUAL, NULL) == 0) {
            g_object_unref(current);
            current = t;
        } else {
            /* A broken or unusable profile: fall back to the interpretation-based conversion below. */
            vips_error_clear();
        }
    }
    VipsInterpretation interpretation = vips_image_guess_interpretation(current);
    VipsInterpretation target = VIPS_INTERPRETATION_sRGB;
    if (keep_gray && (interpretation == VIPS_INTERPRETATION_B_W || interpretation == VIPS_INTERPRETATION_GREY16))
        target = VIPS_INTERPRETATION_B_W;
    if (interpretation != target || vips_image_get_format(current) != VIPS_FORMAT_UCHAR) {
        VipsImage *t = NULL;
        if (vips_colourspace(current, &t, target, NULL)) { g_object_unref(current); return -1; }
        g_object_unref(current);
        current = t;
        if (vips_image_get_format(current) != VIPS_FORMAT_UCHAR) {
            if (vips_cast(current, &t, VIPS_FORMAT_UCHAR, NULL)) { g_object_unref(current); return -1; }
            g_object_unref(current);
            current = t;
        }
    }
    *out = current;
    return 0;
}

int cvips_flatten(VipsImage *in, VipsImage **out, double r, double g, double b) {
    double bg[3] = { r, g, b };
    int n = vips_image_get_bands(in) >= 3 ? 3 : 1;
    VipsArrayDouble *background = vips_array_double_new(bg, n);
    int result = vips_flatten(in, out, "background", background, NULL);
    vips_area_unref(VIPS_AREA(background));
    return result;
}

int cvips_draw_rect(VipsImage *image, double r, double g, double b, int left, int top, int width, int height) {
    double ink[4] = { r, g, b, 255 };
    int bands = vips_image_get_bands(image);
    return vips_draw_rect(image, ink, bands > 4 ? 4 : bands, left, top, width, height, NULL);
}

int cvips_copy_memory(VipsImage *in, VipsImage **out) {
    *out = vips_image_copy_memory(in);
    return *out ? 0 : -1;
}

int cvips_jpegsave(VipsImage *in, int quality, int progressive, void **buf, size_t *len) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "interlace", progressive ? TRUE : FALSE,
        "optimize_coding", TRUE, "strip", TRUE, NULL);
}

int cvips_pngsave(VipsImage *in, int compression, void **buf, size_t *len) {
    return vips_pngsave_buffer(in, buf, len, "compression", compression, "strip", TRUE, NULL);
}

int cvips_webpsave(VipsImage *in, int quality, int lossless, void **buf, size_t *len) {
    return vips_webpsave_buffer(in, buf, len, "Q", quality, "lossless", lossless ? TRUE : FALSE, "strip", TRUE, NULL);
}

int cvips_gifsave(VipsImage *in, void **buf, size_t *len) { return vips_gifsave_buffer(in, buf, len, "strip", TRUE, NULL); }

int cvips_avifsave(VipsImage *in, int quality, void **buf, size_t *len) {
    return vips_heifsave_buffer(in, buf, len, "Q", quality, "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1,
        "strip", TRUE, NULL);
}

int cvips_jxlsave(VipsImage *in, int quality, void **buf, size_t *len) {
    return vips_jxlsave_buffer(in, buf, len, "Q", quality, "strip", TRUE, NULL);
}
