#include <string.h>
#include "cvips_shim.h"
#include <turbojpeg.h>
#include <setjmp.h>
#include <stdio.h>
#include <jpeglib.h>

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

VipsImage *cvips_open_file(const char *path, int sequential, int fail_on) {
    return vips_image_new_from_file(path,
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

int cvips_shrink(VipsImage *in, VipsImage **out, double factor) {
    return vips_shrink(in, out, factor, factor, NULL);
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

/* CMYK without a profile: the plain formula RGB = (255 - CMY) * (255 - K) / 255, as Pillow (and so
   Thumbor) converts it. Such files were almost always made with that formula, so a real press profile
   would shift their colours. */
/* CMYK without a profile, by the plain formula (R = (255 − C)(1 − K/255), …) its makers used; a fifth
   band (alpha, as in a CMYK PSD with transparency) is kept as it is. */
static int cvips_naive_cmyk_to_srgb(VipsImage *in, VipsImage **out) {
    VipsImage *t[10] = { NULL };
    int result = -1;
    if (vips_cast(in, &t[0], VIPS_FORMAT_FLOAT, NULL) ||
        vips_extract_band(t[0], &t[1], 0, "n", 3, NULL) ||
        vips_extract_band(t[0], &t[2], 3, NULL) ||
        vips_linear1(t[1], &t[3], -1.0, 255.0, NULL) ||
        vips_linear1(t[2], &t[4], -1.0 / 255.0, 1.0, NULL) ||
        vips_multiply(t[3], t[4], &t[5], NULL) ||
        vips_cast(t[5], &t[6], VIPS_FORMAT_UCHAR, NULL))
        goto done;
    if (vips_image_get_bands(in) == 5) {
        if (vips_extract_band(in, &t[7], 4, NULL) || vips_cast(t[7], &t[8], VIPS_FORMAT_UCHAR, NULL) ||
            vips_bandjoin2(t[6], t[8], &t[9], NULL) ||
            vips_copy(t[9], out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
            goto done;
    } else if (vips_copy(t[6], out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL)) {
        goto done;
    }
    result = 0;
done:
    for (int i = 0; i < 10; i++) if (t[i]) g_object_unref(t[i]);
    return result;
}

int cvips_premultiplied_linear_to_srgb(VipsImage *in, VipsImage **out) {
    /* OpenEXR stores linear light with premultiplied alpha: colour is divided by alpha in linear light
       (where the premultiplication happened), then converted to sRGB. Alpha is normally 0..1; files
       converted from 8-bit sources sometimes carry 0..255. */
    if (vips_image_get_bands(in) != 4) return cvips_to_srgb(in, out, 0);
    VipsImage *t[10] = { NULL };
    double alpha_max = 0;
    int result = -1;
    if (vips_cast(in, &t[0], VIPS_FORMAT_FLOAT, NULL) ||
        vips_extract_band(t[0], &t[1], 0, "n", 3, NULL) ||
        vips_extract_band(t[0], &t[2], 3, NULL) ||
        vips_max(t[2], &alpha_max, NULL) ||
        vips_linear1(t[2], &t[3], alpha_max <= 1.0 ? 1.0 : 1.0 / 255.0, 0.0, NULL) ||   /* alpha on 0..1 */
        vips_divide(t[1], t[3], &t[4], NULL) ||                                        /* 0/0 gives 0 in libvips */
        vips_copy(t[4], &t[5], "interpretation", VIPS_INTERPRETATION_scRGB, NULL) ||
        vips_colourspace(t[5], &t[6], VIPS_INTERPRETATION_sRGB, NULL) ||
        vips_linear1(t[3], &t[7], 255.0, 0.0, NULL) ||                                 /* alpha on 0..255 */
        vips_bandjoin2(t[6], t[7], &t[8], NULL) ||
        vips_cast(t[8], &t[9], VIPS_FORMAT_UCHAR, NULL) ||
        vips_copy(t[9], out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL))
        goto done;
    result = 0;
done:
    for (int i = 0; i < 10; i++) if (t[i]) g_object_unref(t[i]);
    return result;
}

int cvips_from_planar_gbra_float(const float *planes, int width, int height, VipsImage **out) {
    /* FFmpeg's gbrapf32le: four planes, G, B, R, A. libvips wants R, G, B, A interleaved. */
    size_t pixels = (size_t) width * (size_t) height;
    float *interleaved = g_try_malloc(pixels * 4 * sizeof(float));
    if (!interleaved) {
        vips_error("cvips", "out of memory for %d x %d", width, height);
        return -1;
    }
    const float *g = planes, *b = planes + pixels, *r = planes + 2 * pixels, *a = planes + 3 * pixels;
    for (size_t i = 0; i < pixels; i++) {
        interleaved[4 * i] = r[i];
        interleaved[4 * i + 1] = g[i];
        interleaved[4 * i + 2] = b[i];
        interleaved[4 * i + 3] = a[i];
    }
    VipsImage *image = vips_image_new_from_memory_copy(interleaved, pixels * 4 * sizeof(float), width, height, 4, VIPS_FORMAT_FLOAT);
    g_free(interleaved);
    if (!image) return -1;
    int result = vips_copy(image, out, "interpretation", VIPS_INTERPRETATION_scRGB, NULL);
    g_object_unref(image);
    return result;
}

int cvips_trim_box(VipsImage *in, int corner, double tolerance, int *found, int *left, int *top, int *right, int *bottom) {
    int width = vips_image_get_width(in), height = vips_image_get_height(in), bands = vips_image_get_bands(in);
    double *reference = NULL;
    int n = 0;
    VipsImage *t[13] = { NULL };
    int result = -1;
    *found = 0;
    if (vips_getpoint(in, &reference, &n, corner ? width - 1 : 0, corner ? height - 1 : 0, NULL)) return -1;
    double ones[16], offsets[16];
    for (int i = 0; i < n && i < 16; i++) { ones[i] = 1.0; offsets[i] = -reference[i]; }
    double top_d, left_d, bottom_d, right_d;
    /* mask = sum over bands of (pixel - reference)^2 > tolerance^2; then the first marked row/column
       from each side, found with vips_profile on the mask and on its flips. */
    if (vips_linear(in, &t[0], ones, offsets, n < 16 ? n : 16, NULL) ||
        vips_multiply(t[0], t[0], &t[1], NULL) ||
        vips_bandmean(t[1], &t[2], NULL) ||
        vips_relational_const1(t[2], &t[3], VIPS_OPERATION_RELATIONAL_MORE, tolerance * tolerance / bands, NULL))
        goto done;
    t[4] = vips_image_copy_memory(t[3]);
    if (!t[4] ||
        vips_profile(t[4], &t[5], &t[6], NULL) ||
        vips_min(t[5], &top_d, NULL) || vips_min(t[6], &left_d, NULL) ||
        vips_flip(t[4], &t[7], VIPS_DIRECTION_VERTICAL, NULL) || vips_flip(t[4], &t[8], VIPS_DIRECTION_HORIZONTAL, NULL) ||
        vips_profile(t[7], &t[9], &t[11], NULL) || vips_profile(t[8], &t[12], &t[10], NULL) ||
        vips_min(t[9], &bottom_d, NULL) || vips_min(t[10], &right_d, NULL))
        goto done;
    if ((int) top_d < height) {
        *found = 1;
        *top = (int) top_d;
        *left = (int) left_d;
        *bottom = height - 1 - (int) bottom_d;
        *right = width - 1 - (int) right_d;
    }
    result = 0;
done:
    g_free(reference);
    for (int i = 0; i < 13; i++) if (t[i]) g_object_unref(t[i]);
    return result;
}

int cvips_extract_bands(VipsImage *in, VipsImage **out, int first, int count) {
    return vips_extract_band(in, out, first, "n", count, NULL);
}

/* True when the embedded ICC profile describes itself as sRGB (its 'desc' tag, in ASCII or UTF-16):
   the pixels already are sRGB, so the (costly) lcms transform can be skipped. Thumbor does no transform
   at all; for every other profile (Adobe RGB, Display P3, CMYK, …) Pinhole still converts. */
static int cvips_profile_is_srgb(VipsImage *in) {
    const void *data = NULL;
    size_t length = 0;
    if (vips_image_get_blob(in, VIPS_META_ICC_NAME, &data, &length) || length < 132) return 0;
    const unsigned char *p = data;
    unsigned count = (unsigned) p[128] << 24 | p[129] << 16 | p[130] << 8 | p[131];
    for (unsigned i = 0; i < count && 132 + 12 * (size_t) (i + 1) <= length; i++) {
        const unsigned char *tag = p + 132 + 12 * i;
        if (memcmp(tag, "desc", 4) != 0) continue;
        size_t offset = (size_t) tag[4] << 24 | tag[5] << 16 | tag[6] << 8 | tag[7];
        size_t size = (size_t) tag[8] << 24 | tag[9] << 16 | tag[10] << 8 | tag[11];
        if (offset > length || size > length - offset) return 0;
        for (size_t j = offset; j + 4 <= offset + size; j++) {
            if (memcmp(p + j, "sRGB", 4) == 0) return 1;
            if (j + 7 <= offset + size && p[j] == 's' && p[j + 1] == 0 && p[j + 2] == 'R' && p[j + 3] == 0 &&
                p[j + 4] == 'G' && p[j + 5] == 0 && p[j + 6] == 'B') return 1;
        }
    }
    return 0;
}

int cvips_has_srgb_profile(VipsImage *in) { return cvips_profile_is_srgb(in); }

/* libjpeg reports errors by calling error_exit, which must not return: jump back to the caller with the
   message. Warnings (corrupt data) are errors too, as TJFLAG_STOPONWARNING makes them for turbojpeg. */
struct pinhole_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void pinhole_jpeg_error_exit(j_common_ptr cinfo) {
    struct pinhole_jpeg_error *error = (struct pinhole_jpeg_error *) cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->jump, 1);
}

static void pinhole_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) pinhole_jpeg_error_exit(cinfo);
}

/* A progressive JPEG at 1/8 scale from its DC scans alone. The 1/8 IDCT reads nothing but each block's DC
   coefficient, so once every component's DC is complete (often the first scans, a few percent of the
   file) the rest of the file cannot change the output: stop there instead of entropy-decoding every AC
   scan. Block smoothing, which estimates missing AC terms, is off so the pixels equal a full decode's.
   Returns NULL with *not_applicable = 1 (no vips error) for files this does not apply to. */
static VipsImage *cvips_progressive_dc_load(const void *buf, size_t len, int *not_applicable) {
    struct jpeg_decompress_struct cinfo;
    struct pinhole_jpeg_error error;
    VipsImage *volatile image = NULL;
    unsigned char *volatile pixels = NULL;
    *not_applicable = 0;
    cinfo.err = jpeg_std_error(&error.base);
    error.base.error_exit = pinhole_jpeg_error_exit;
    error.base.emit_message = pinhole_jpeg_emit_message;
    jpeg_create_decompress(&cinfo);
    if (setjmp(error.jump)) {
        vips_error("jpeg", "%s", error.message);
        jpeg_destroy_decompress(&cinfo);
        g_free(pixels);
        return NULL;
    }
    jpeg_mem_src(&cinfo, (const unsigned char *) buf, (unsigned long) len);
    jpeg_read_header(&cinfo, TRUE);
    int gray = cinfo.jpeg_color_space == JCS_GRAYSCALE && cinfo.num_components == 1;
    int ycc = cinfo.jpeg_color_space == JCS_YCbCr && cinfo.num_components == 3;
    if (!cinfo.progressive_mode || !(gray || ycc)) {
        *not_applicable = 1;
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    jpeg_calc_output_dimensions(&cinfo);
    /* Subsampled chroma is scaled up through a larger IDCT (2×2 for 4:2:0), which reads AC terms too. */
    for (int c = 0; c < cinfo.num_components; c++) {
#if JPEG_LIB_VERSION >= 70
        int scaled = cinfo.comp_info[c].DCT_h_scaled_size > cinfo.comp_info[c].DCT_v_scaled_size
                         ? cinfo.comp_info[c].DCT_h_scaled_size : cinfo.comp_info[c].DCT_v_scaled_size;
#else
        int scaled = cinfo.comp_info[c].DCT_scaled_size;
#endif
        if (scaled != 1) {
            *not_applicable = 1;
            jpeg_destroy_decompress(&cinfo);
            return NULL;
        }
    }
    /* Every component at full sampling (4:4:4, grey): Pinhole's DC decoder, one value per block. */
    int full_sampling = 1;
    for (int c = 0; c < cinfo.num_components; c++)
        if (cinfo.comp_info[c].h_samp_factor != 1 || cinfo.comp_info[c].v_samp_factor != 1) full_sampling = 0;
    if (full_sampling) {
        jpeg_destroy_decompress(&cinfo);
        return cvips_progressive_dc_decode(buf, len);
    }
    /* Otherwise (4:2:2, whose chroma is upsampled rather than scaled through the IDCT) libjpeg in
       buffered-image mode, stopped once the DC is complete. */
    cinfo.buffered_image = TRUE;
    cinfo.do_block_smoothing = FALSE;
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    for (;;) {
        int status = jpeg_consume_input(&cinfo);
        if (status == JPEG_REACHED_EOI || status == JPEG_SUSPENDED) break;
        if (status != JPEG_SCAN_COMPLETED) continue;
        int complete = 1;
        for (int c = 0; c < cinfo.num_components; c++) {
            if (cinfo.coef_bits[c][0] != 0) complete = 0;
        }
        if (complete) break;
    }
    jpeg_start_output(&cinfo, cinfo.input_scan_number);
    int width = (int) cinfo.output_width, height = (int) cinfo.output_height, bands = cinfo.output_components;
    size_t row = (size_t) width * bands;
    pixels = g_try_malloc(row * height);
    if (!pixels) {
        strcpy(error.message, "out of memory");
        longjmp(error.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW line = pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &line, 1);
    }
    jpeg_finish_output(&cinfo);
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    image = vips_image_new_from_memory_copy(pixels, row * height, width, height, bands, VIPS_FORMAT_UCHAR);
    if (image) image->Type = gray ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
    g_free(pixels);
    return image;
}

VipsImage *cvips_turbojpeg_load(const void *buf, size_t len, int eighths, int fast_dct) {
    if (eighths <= 1) {
        int not_applicable = 0;
        VipsImage *image = cvips_progressive_dc_load(buf, len, &not_applicable);
        if (image || !not_applicable) return image;
    }
    tjhandle handle = tjInitDecompress();
    if (!handle) { vips_error("turbojpeg", "cannot create a decompressor"); return NULL; }
    int width = 0, height = 0, subsampling = 0, colorspace = 0;
    VipsImage *image = NULL;
    unsigned char *pixels = NULL;
    if (tjDecompressHeader3(handle, buf, (unsigned long) len, &width, &height, &subsampling, &colorspace)) {
        vips_error("turbojpeg", "%s", tjGetErrorStr2(handle));
        goto done;
    }
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) { vips_error("turbojpeg", "CMYK is left to libvips"); goto done; }
    tjscalingfactor factor = { eighths < 1 ? 1 : eighths > 8 ? 8 : eighths, 8 };
    int scaled_width = TJSCALED(width, factor), scaled_height = TJSCALED(height, factor);
    int gray = colorspace == TJCS_GRAY;
    int bands = gray ? 1 : 3;
    pixels = g_try_malloc((size_t) scaled_width * scaled_height * bands);
    if (!pixels) { vips_error("turbojpeg", "out of memory"); goto done; }
    int flags = (fast_dct ? TJFLAG_FASTDCT : 0) | TJFLAG_STOPONWARNING;
    if (tjDecompress2(handle, buf, (unsigned long) len, pixels, scaled_width, 0, scaled_height, gray ? TJPF_GRAY : TJPF_RGB, flags)) {
        vips_error("turbojpeg", "%s", tjGetErrorStr2(handle));
        goto done;
    }
    image = vips_image_new_from_memory_copy(pixels, (size_t) scaled_width * scaled_height * bands,
                                            scaled_width, scaled_height, bands, VIPS_FORMAT_UCHAR);
    if (image) image->Type = gray ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
done:
    g_free(pixels);
    tjDestroy(handle);
    return image;
}

int cvips_to_srgb(VipsImage *in, VipsImage **out, int keep_gray) {
    if (vips_image_guess_interpretation(in) == VIPS_INTERPRETATION_CMYK &&
        (vips_image_get_bands(in) == 4 || vips_image_get_bands(in) == 5) &&
        !vips_image_get_typeof(in, VIPS_META_ICC_NAME))
        return cvips_naive_cmyk_to_srgb(in, out);
    VipsImage *current = in;
    g_object_ref(current);
    /* An embedded profile (CMYK, Adobe RGB, …) is the truth about the pixels: transform through it. */
    if (vips_image_get_typeof(current, VIPS_META_ICC_NAME) &&
        !(vips_image_get_bands(current) >= 3 && vips_image_get_format(current) == VIPS_FORMAT_UCHAR &&
          vips_image_guess_interpretation(current) == VIPS_INTERPRETATION_sRGB && cvips_profile_is_srgb(current))) {
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

static int cvips_colour_bands(VipsImage *in) {
    int bands = vips_image_get_bands(in);
    return vips_image_hasalpha(in) ? bands - 1 : bands;
}

/* Alpha flattened onto a background: one value per colour band (grey takes the red value). An image
   without alpha is returned as it is (vips_flatten would take its last colour band for alpha). */
int cvips_flatten(VipsImage *in, VipsImage **out, double r, double g, double b) {
    if (!vips_image_hasalpha(in)) return vips_copy(in, out, NULL);
    double bg[3] = { r, g, b };
    int n = cvips_colour_bands(in) >= 3 ? 3 : 1;
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

/* Progressive JPEG of 8-bit sRGB or grey pixels straight through libjpeg-turbo's TurboJPEG: the same
   libjpeg settings libvips and Pillow use (standard tables scaled by quality, the accurate DCT, which
   TurboJPEG replaces with the fast one unless asked, optimised Huffman codes, 4:2:0 below quality 90),
   without libvips' sink threads and per-line callbacks; a fifth quicker at thumbnail size. Given
   Thumbor's pixels it writes Thumbor's bytes. Returns 1 when it does not apply (no vips error): libvips
   then encodes. */
static int cvips_turbojpeg_save(VipsImage *in, int quality, void **buf, size_t *len) {
    int bands = vips_image_get_bands(in);
    VipsInterpretation type = vips_image_get_interpretation(in);
    if (vips_image_get_format(in) != VIPS_FORMAT_UCHAR || !((bands == 3 && type == VIPS_INTERPRETATION_sRGB) ||
                                                            (bands == 1 && type == VIPS_INTERPRETATION_B_W)))
        return 1;
    VipsImage *memory = vips_image_copy_memory(in);   /* a reference when already in memory */
    if (!memory) return -1;
    tjhandle handle = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int status = -1;
    if (!handle) {
        vips_error("turbojpeg", "cannot create a compressor");
    } else if (tjCompress2(handle, VIPS_IMAGE_ADDR(memory, 0, 0), memory->Xsize, (int) VIPS_IMAGE_SIZEOF_LINE(memory),
                           memory->Ysize, bands == 1 ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                           bands == 1 ? TJSAMP_GRAY : quality >= 90 ? TJSAMP_444 : TJSAMP_420, quality,
                           TJFLAG_PROGRESSIVE | TJFLAG_ACCURATEDCT) != 0) {
        vips_error("turbojpeg", "%s", tjGetErrorStr2(handle));
    } else if ((*buf = g_try_malloc(size)) == NULL) {
        vips_error("turbojpeg", "out of memory");
    } else {
        memcpy(*buf, jpeg, size);
        *len = size;
        status = 0;
    }
    tjFree(jpeg);
    if (handle) tjDestroy(handle);
    g_object_unref(memory);
    return status;
}

int cvips_jpegsave(VipsImage *in, int quality, int progressive, void **buf, size_t *len) {
    if (progressive) {
        int status = cvips_turbojpeg_save(in, quality, buf, len);
        if (status != 1) return status;
    }
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

/* ---- Filters (Thumbor's post-transform filters on 8-bit sRGB / B_W images, alpha last) ---- */


int cvips_maplut(VipsImage *in, VipsImage **out, const unsigned char *luts, int lut_bands) {
    /* A 256×1 LUT image with one band per image band; alpha (past lut_bands) maps to itself. */
    int bands = vips_image_get_bands(in);
    unsigned char *table = g_malloc(256 * bands);
    for (int v = 0; v < 256; v++) {
        for (int b = 0; b < bands; b++) {
            table[v * bands + b] = b < lut_bands ? luts[b * 256 + v] : (unsigned char) v;
        }
    }
    VipsImage *lut = vips_image_new_from_memory_copy(table, 256 * bands, 256, 1, bands, VIPS_FORMAT_UCHAR);
    g_free(table);
    if (!lut) return -1;
    VipsImage *mapped = NULL;
    int status = vips_maplut(in, &mapped, lut, NULL);
    g_object_unref(lut);
    if (status) return -1;
    /* The result takes the table's "multiband" interpretation: give it back the image's. */
    status = vips_copy(mapped, out, "interpretation", vips_image_get_interpretation(in), NULL);
    g_object_unref(mapped);
    return status;
}

int cvips_band_stats(VipsImage *in, double *minimums, double *means, int count) {
    VipsImage *stats = NULL;
    if (vips_stats(in, &stats, NULL)) return -1;
    /* Row 0 is all bands together; row b + 1 is band b; column 0 is the minimum, column 4 the mean. */
    for (int b = 0; b < count && b < vips_image_get_bands(in); b++) {
        minimums[b] = *VIPS_MATRIX(stats, 0, b + 1);
        means[b] = *VIPS_MATRIX(stats, 4, b + 1);
    }
    g_object_unref(stats);
    return 0;
}

int cvips_histograms(VipsImage *in, int *counts, int bands) {
    /* 256 counts per band, band after band. */
    VipsImage *hist = NULL, *memory = NULL;
    if (vips_hist_find(in, &hist, NULL)) return -1;
    int status = vips_cast(hist, &memory, VIPS_FORMAT_INT, NULL);
    g_object_unref(hist);
    if (status) return -1;
    size_t size = 0;
    int *data = vips_image_write_to_memory(memory, &size);
    int histBands = vips_image_get_bands(memory);
    g_object_unref(memory);
    if (!data) return -1;
    for (int b = 0; b < bands && b < histBands; b++)
        for (int v = 0; v < 256; v++) counts[b * 256 + v] = data[v * histBands + b];
    g_free(data);
    return 0;
}

/* Splits colour from alpha, applies op to the colour, joins alpha back. */
typedef int (*cvips_colour_op)(VipsImage *in, VipsImage **out, const double *args);

static int cvips_on_colour(VipsImage *in, VipsImage **out, cvips_colour_op op, const double *args) {
    if (!vips_image_hasalpha(in)) return op(in, out, args);
    int colour = cvips_colour_bands(in);
    VipsImage *rgb = NULL, *alpha = NULL, *done = NULL;
    int status = -1;
    if (vips_extract_band(in, &rgb, 0, "n", colour, NULL)) goto out;
    if (vips_extract_band(in, &alpha, colour, "n", 1, NULL)) goto out;
    if (op(rgb, &done, args)) goto out;
    status = vips_bandjoin2(done, alpha, out, NULL);
out:
    if (rgb) g_object_unref(rgb);
    if (alpha) g_object_unref(alpha);
    if (done) g_object_unref(done);
    return status;
}

static int cvips_to_uchar(VipsImage *in, VipsImage **out) {
    /* Round half up and clamp to 0..255, as the ADJUST_COLOR of Thumbor's filters clamps. */
    VipsImage *rounded = NULL;
    if (vips_round(in, &rounded, VIPS_OPERATION_ROUND_RINT, NULL)) return -1;
    int status = vips_cast(rounded, out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(rounded);
    return status;
}

static int op_saturation(VipsImage *in, VipsImage **out, const double *args) {
    /* p = sqrt(0.299 r² + 0.587 g² + 0.114 b²); x' = p + (x - p) · s (Thumbor's _saturation.c). */
    if (vips_image_get_bands(in) < 3) return vips_copy(in, out, NULL);
    double s = args[0];
    VipsImage *square = NULL, *weighted = NULL, *p = NULL, *scaled = NULL, *pp = NULL, *sum = NULL;
    int status = -1;
    double weights[3] = { 0.299, 0.587, 0.114 };
    VipsImage *matrix = vips_image_new_matrix_from_array(3, 1, weights, 3);
    if (!matrix) return -1;
    if (vips_multiply(in, in, &square, NULL)) goto out;
    if (vips_recomb(square, &weighted, matrix, NULL)) goto out;
    if (vips_math2_const1(weighted, &p, VIPS_OPERATION_MATH2_POW, 0.5, NULL)) goto out;
    if (vips_linear1(in, &scaled, s, 0, NULL)) goto out;
    if (vips_linear1(p, &pp, 1 - s, 0, NULL)) goto out;
    if (vips_add(scaled, pp, &sum, NULL)) goto out;
    /* Thumbor assigns the float to an int: truncation toward zero, then clamps. */
    {
        VipsImage *truncated = NULL;
        if (vips_cast(sum, &truncated, VIPS_FORMAT_INT, NULL)) goto out;
        status = vips_cast(truncated, out, VIPS_FORMAT_UCHAR, NULL);
        g_object_unref(truncated);
    }
out:
    g_object_unref(matrix);
    if (square) g_object_unref(square);
    if (weighted) g_object_unref(weighted);
    if (p) g_object_unref(p);
    if (scaled) g_object_unref(scaled);
    if (pp) g_object_unref(pp);
    if (sum) g_object_unref(sum);
    return status;
}

int cvips_saturation(VipsImage *in, VipsImage **out, double change) {
    return cvips_on_colour(in, out, op_saturation, &change);
}

static int op_grayscale(VipsImage *in, VipsImage **out, const double *args) {
    (void) args;
    if (vips_image_get_bands(in) < 3) return vips_copy(in, out, NULL);
    /* Pillow's convert("L"): L = R·299/1000 + G·587/1000 + B·114/1000, rounded. */
    double weights[3] = { 0.299, 0.587, 0.114 };
    VipsImage *matrix = vips_image_new_matrix_from_array(3, 1, weights, 3), *gray = NULL, *typed = NULL;
    if (!matrix) return -1;
    int status = vips_recomb(in, &gray, matrix, NULL);
    g_object_unref(matrix);
    if (status) return -1;
    status = cvips_to_uchar(gray, &typed);
    g_object_unref(gray);
    if (status) return -1;
    status = vips_copy(typed, out, "interpretation", VIPS_INTERPRETATION_B_W, NULL);
    g_object_unref(typed);
    return status;
}

int cvips_grayscale(VipsImage *in, VipsImage **out) { return cvips_on_colour(in, out, op_grayscale, NULL); }

static int op_conv(VipsImage *in, VipsImage **out, const double *args) {
    int columns = (int) args[0], rows = (int) args[1];
    double scale = args[2];
    VipsImage *mask = vips_image_new_matrix_from_array(columns, rows, args + 3, columns * rows);
    if (!mask) return -1;
    vips_image_set_double(mask, "scale", scale);
    VipsImage *convolved = NULL, *padded = NULL, *cropped = NULL;
    int status = -1;
    /* Edge pixels: repeat the border, so the output keeps the input's size. */
    int px = columns / 2, py = rows / 2;
    if (vips_embed(in, &padded, px, py, vips_image_get_width(in) + columns - 1, vips_image_get_height(in) + rows - 1,
                   "extend", VIPS_EXTEND_COPY, NULL)) goto out;
    if (vips_conv(padded, &convolved, mask, "precision", VIPS_PRECISION_FLOAT, NULL)) goto out;
    if (vips_crop(convolved, &cropped, px, py, vips_image_get_width(in), vips_image_get_height(in), NULL)) goto out;
    status = cvips_to_uchar(cropped, out);
out:
    g_object_unref(mask);
    if (padded) g_object_unref(padded);
    if (convolved) g_object_unref(convolved);
    if (cropped) g_object_unref(cropped);
    return status;
}

int cvips_convolve(VipsImage *in, VipsImage **out, const double *matrix, int columns, int rows, double scale) {
    double *args = g_malloc(sizeof(double) * (3 + columns * rows));
    args[0] = columns; args[1] = rows; args[2] = scale;
    memcpy(args + 3, matrix, sizeof(double) * columns * rows);
    int status = cvips_on_colour(in, out, op_conv, args);
    g_free(args);
    return status;
}

int cvips_embed_background(VipsImage *in, VipsImage **out, int x, int y, int width, int height,
                           const double *background, int count) {
    VipsArrayDouble *array = vips_array_double_new(background, count);
    int status = vips_embed(in, out, x, y, width, height, "extend", VIPS_EXTEND_BACKGROUND, "background", array, NULL);
    vips_area_unref(VIPS_AREA(array));
    return status;
}

int cvips_add_alpha(VipsImage *in, VipsImage **out) {
    if (vips_image_hasalpha(in)) return vips_copy(in, out, NULL);
    return vips_addalpha(in, out, NULL);
}

int cvips_composite_over(VipsImage *base, VipsImage *overlay, VipsImage **out, int x, int y) {
    return vips_composite2(base, overlay, out, VIPS_BLEND_MODE_OVER, "x", x, "y", y, NULL);
}

int cvips_colour_bands_count(VipsImage *in) { return cvips_colour_bands(in); }

/* Thumbor's noise: one value per pixel, random() % amount - amount/2, added to every colour band. */
int cvips_noise(VipsImage *in, VipsImage **out, int amount, int seed) {
    VipsImage *memory = vips_image_copy_memory(in);
    if (!memory) return -1;
    size_t size = 0;
    unsigned char *data = vips_image_write_to_memory(memory, &size);
    int bands = vips_image_get_bands(memory), colour = cvips_colour_bands(memory);
    int width = vips_image_get_width(memory), height = vips_image_get_height(memory);
    g_object_unref(memory);
    if (!data) return -1;
    if (amount > 0) {
        GRand *random = seed > 0 ? g_rand_new_with_seed((guint32) seed) : g_rand_new();
        for (size_t i = 0; i + bands <= size; i += bands) {
            int delta = (int) (g_rand_int(random) % (guint32) amount) - (amount >> 1);
            for (int b = 0; b < colour; b++) {
                int v = data[i + b] + delta;
                data[i + b] = v < 0 ? 0 : v > 255 ? 255 : v;
            }
        }
        g_rand_free(random);
    }
    *out = vips_image_new_from_memory_copy(data, size, width, height, bands, VIPS_FORMAT_UCHAR);
    g_free(data);
    if (!*out) return -1;
    (*out)->Type = colour >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return 0;
}

/* Rounded corners: an anti-aliased mask of four ellipse quadrants (radii a × b); outside them the
   pixels become the background colour, or transparent. */
int cvips_round_corners(VipsImage *in, VipsImage **out, int a, int b, double red, double green, double blue, int transparent) {
    int width = vips_image_get_width(in), height = vips_image_get_height(in);
    if (a <= 0 || b <= 0) return vips_copy(in, out, NULL);
    if (a > width / 2) a = width / 2;
    if (b > height / 2) b = height / 2;
    float *mask = g_malloc(sizeof(float) * width * height);
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            double cx = x < a ? a - 0.5 : x >= width - a ? width - a - 0.5 : x + 0.5;
            double cy = y < b ? b - 0.5 : y >= height - b ? height - b - 0.5 : y + 0.5;
            double dx = (x + 0.5 - cx) / a, dy = (y + 0.5 - cy) / b;
            double d = sqrt(dx * dx + dy * dy);
            /* one pixel of anti-aliasing along the edge */
            double edge = (1 - d) * (a < b ? a : b);
            mask[y * width + x] = (x >= a && x < width - a) || (y >= b && y < height - b) ? 1.0f
                                  : (float) (edge >= 0.5 ? 1.0 : edge <= -0.5 ? 0.0 : edge + 0.5);
        }
    }
    VipsImage *m = vips_image_new_from_memory_copy(mask, sizeof(float) * width * height, width, height, 1, VIPS_FORMAT_FLOAT);
    g_free(mask);
    if (!m) return -1;
    int status = -1;
    VipsImage *with_alpha = NULL, *colour = NULL, *alpha = NULL, *scaled = NULL, *typed = NULL, *masked = NULL;
    if (transparent) {
        if (cvips_add_alpha(in, &with_alpha)) goto out;
        int c = cvips_colour_bands(with_alpha);
        if (vips_extract_band(with_alpha, &colour, 0, "n", c, NULL)) goto out;
        if (vips_extract_band(with_alpha, &alpha, c, "n", 1, NULL)) goto out;
        if (vips_multiply(alpha, m, &scaled, NULL)) goto out;
        if (cvips_to_uchar(scaled, &typed)) goto out;
        status = vips_bandjoin2(colour, typed, out, NULL);
    } else {
        /* out = in·m + background·(1 − m), alpha kept as is. */
        double bg[4] = { red, green, blue, 255 };
        int bands = vips_image_get_bands(in);
        VipsImage *inverse = NULL, *part1 = NULL, *part2 = NULL, *sum = NULL;
        if (vips_linear1(m, &inverse, -1, 1, NULL)) goto out;
        if (vips_multiply(in, m, &part1, NULL)) { g_object_unref(inverse); goto out; }
        double coefficients[4] = { bg[0], bands >= 3 ? bg[1] : bg[0], bands >= 3 ? bg[2] : bg[0], 255 };
        double zeros[4] = { 0, 0, 0, 0 };
        if (vips_linear(inverse, &part2, coefficients, zeros, bands > 4 ? 4 : bands, NULL)) { g_object_unref(inverse); g_object_unref(part1); goto out; }
        g_object_unref(inverse);
        if (vips_add(part1, part2, &sum, NULL)) { g_object_unref(part1); g_object_unref(part2); goto out; }
        g_object_unref(part1); g_object_unref(part2);
        status = cvips_to_uchar(sum, &masked);
        g_object_unref(sum);
        if (!status) status = vips_copy(masked, out, "interpretation", vips_image_get_interpretation(in), NULL);
    }
out:
    g_object_unref(m);
    if (with_alpha) g_object_unref(with_alpha);
    if (colour) g_object_unref(colour);
    if (alpha) g_object_unref(alpha);
    if (scaled) g_object_unref(scaled);
    if (typed) g_object_unref(typed);
    if (masked) g_object_unref(masked);
    return status;
}

/* Separable convolution by a 1-D kernel (length n, normalised by its sum), edges repeated. */
static int cvips_convsep_repeat(VipsImage *in, VipsImage **out, const double *kernel, int n, int mirror) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += kernel[i];
    VipsImage *mask = vips_image_new_matrix_from_array(n, 1, kernel, n);
    if (!mask) return -1;
    vips_image_set_double(mask, "scale", sum == 0 ? 1 : sum);
    int half = n / 2, width = vips_image_get_width(in), height = vips_image_get_height(in);
    VipsImage *padded = NULL, *convolved = NULL;
    int status = -1;
    if (vips_embed(in, &padded, half, half, width + 2 * half, height + 2 * half,
                   "extend", mirror ? VIPS_EXTEND_MIRROR : VIPS_EXTEND_COPY, NULL)) goto out;
    if (vips_convsep(padded, &convolved, mask, "precision", VIPS_PRECISION_FLOAT, NULL)) goto out;
    status = vips_crop(convolved, out, half, half, width, height, NULL);
out:
    g_object_unref(mask);
    if (padded) g_object_unref(padded);
    if (convolved) g_object_unref(convolved);
    return status;
}

static int op_blur_kernel(VipsImage *in, VipsImage **out, const double *args) {
    int n = (int) args[0];
    VipsImage *blurred = NULL;
    if (cvips_convsep_repeat(in, &blurred, args + 1, n, 0)) return -1;
    int status = cvips_to_uchar(blurred, out);
    g_object_unref(blurred);
    return status;
}

int cvips_blur_kernel(VipsImage *in, VipsImage **out, const double *kernel, int n) {
    double *args = g_malloc(sizeof(double) * (n + 1));
    args[0] = n;
    memcpy(args + 1, kernel, sizeof(double) * n);
    int status = cvips_on_colour(in, out, op_blur_kernel, args);
    g_free(args);
    return status;
}

/* À-trous wavelet sharpening: five levels of the [1 2 1]/4 "hat" low-pass with holes (spacing 2^level,
   mirrored edges); the detail of level l is amplified by amount·exp(−(l − radius)²/1.5) + 1 and the
   levels are summed back onto the coarsest low-pass. With luminance_only, the change computed on
   Y = 0.299 R + 0.587 G + 0.114 B is added to every channel (YCbCr → RGB moves R, G, B by ΔY alike). */
static int op_wavelet_sharpen(VipsImage *in, VipsImage **out, const double *args) {
    double amount = args[0], radius = args[1];
    int luminance_only = args[2] != 0 && vips_image_get_bands(in) >= 3;
    VipsImage *base = NULL, *level = NULL, *sum = NULL;
    int status = -1;
    if (luminance_only) {
        double weights[3] = { 0.299, 0.587, 0.114 };
        VipsImage *matrix = vips_image_new_matrix_from_array(3, 1, weights, 3);
        if (!matrix) return -1;
        status = vips_recomb(in, &base, matrix, NULL);
        g_object_unref(matrix);
        if (status) return -1;
        status = -1;
    } else if (vips_cast(in, &base, VIPS_FORMAT_FLOAT, NULL)) {
        return -1;
    }
    level = vips_image_copy_memory(base);
    if (!level) goto out;
    for (int l = 0; l < 5; l++) {
        int spacing = 1 << l, n = 2 * spacing + 1;
        double *kernel = g_malloc0(sizeof(double) * n);
        kernel[0] = 1; kernel[spacing] = 2; kernel[n - 1] = 1;
        VipsImage *lazy = NULL, *low = NULL, *detail = NULL, *scaled = NULL, *total = NULL;
        int failed = cvips_convsep_repeat(level, &lazy, kernel, n, 1);
        g_free(kernel);
        if (failed) goto out;
        low = vips_image_copy_memory(lazy);
        g_object_unref(lazy);
        if (!low) goto out;
        double gain = amount * exp(-(l - radius) * (l - radius) / 1.5) + 1;
        if (vips_subtract(level, low, &detail, NULL) || vips_linear1(detail, &scaled, gain, 0, NULL)) {
            if (detail) g_object_unref(detail);
            g_object_unref(low);
            goto out;
        }
        g_object_unref(detail);
        if (sum) {
            failed = vips_add(sum, scaled, &total, NULL);
            g_object_unref(scaled);
            g_object_unref(sum);
            sum = failed ? NULL : vips_image_copy_memory(total);
            if (total) g_object_unref(total);
        } else {
            sum = vips_image_copy_memory(scaled);
            g_object_unref(scaled);
        }
        g_object_unref(level);
        level = low;
        if (!sum) goto out;
    }
    {
        VipsImage *sharpened = NULL, *result = NULL;
        if (vips_add(sum, level, &sharpened, NULL)) goto out;
        if (luminance_only) {
            VipsImage *delta = NULL;
            int failed = vips_subtract(sharpened, base, &delta, NULL) || vips_add(in, delta, &result, NULL);
            if (delta) g_object_unref(delta);
            g_object_unref(sharpened);
            if (failed) { if (result) g_object_unref(result); goto out; }
        } else {
            result = sharpened;
        }
        VipsImage *clamped = NULL;
        /* Thumbor clamps, then stores the float into a byte: truncation. */
        if (vips_cast(result, &clamped, VIPS_FORMAT_UCHAR, NULL)) { g_object_unref(result); goto out; }
        g_object_unref(result);
        status = vips_copy(clamped, out, "interpretation", vips_image_get_interpretation(in), NULL);
        g_object_unref(clamped);
    }
out:
    if (base) g_object_unref(base);
    if (level) g_object_unref(level);
    if (sum) g_object_unref(sum);
    return status;
}

int cvips_wavelet_sharpen(VipsImage *in, VipsImage **out, double amount, double radius, int luminance_only) {
    double args[3] = { amount, radius, luminance_only };
    return cvips_on_colour(in, out, op_wavelet_sharpen, args);
}

/* One line of a 1-D convolution by `kernel` (2 × radius + 1 taps), its ends repeated: `length` values
   `stride` apart, from `in` to the same places in `out`. */
static void blur_line(const float *in, float *out, int length, ptrdiff_t stride, const float *kernel, int radius) {
    for (int i = 0; i < length; i++) {
        float sum = 0;
        for (int k = -radius; k <= radius; k++) {
            int j = i + k < 0 ? 0 : i + k >= length ? length - 1 : i + k;
            sum += kernel[k + radius] * in[j * stride];
        }
        out[i * stride] = sum;
    }
}

int cvips_colour_rarity_centre(VipsImage *in, int *x, int *y) {
    /* Colour rarity: how far each pixel's chroma (Cb, Cr of JPEG's YCbCr) lies from the picture's mean
       chroma, Gaussian-blurred over ~1 % of the picture; the subject is where that peaks. Luma is left
       out, so bright sky, clouds and water (large, edge-rich, grey) do not outweigh a small, colourful
       subject. Plain C over the (small, 8-bit sRGB) pixels: a dozen libvips operations cost more here
       in set-up than in arithmetic. */
    size_t size = 0;
    unsigned char *pixels = vips_image_write_to_memory(in, &size);
    if (!pixels) return -1;
    int width = vips_image_get_width(in), height = vips_image_get_height(in), bands = vips_image_get_bands(in);
    int n = width * height;
    float *cb = g_malloc(sizeof(float) * n), *cr = g_malloc(sizeof(float) * n), *map = g_malloc(sizeof(float) * n),
          *tmp = g_malloc(sizeof(float) * n);
    double mean_cb = 0, mean_cr = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *p = pixels + (size_t) i * bands;
        float r = p[0], g = bands >= 3 ? p[1] : p[0], b = bands >= 3 ? p[2] : p[0];
        cb[i] = -0.168736f * r - 0.331264f * g + 0.5f * b;
        cr[i] = 0.5f * r - 0.418688f * g - 0.081312f * b;
        mean_cb += cb[i];
        mean_cr += cr[i];
    }
    g_free(pixels);
    mean_cb /= n > 0 ? n : 1;
    mean_cr /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++) {
        float dcb = cb[i] - (float) mean_cb, dcr = cr[i] - (float) mean_cr;
        map[i] = dcb * dcb + dcr * dcr;
    }
    /* Separable Gaussian, sigma ~1 % of the longer side, edges clamped. */
    double sigma = (width > height ? width : height) / 100.0;
    if (sigma < 1) sigma = 1;
    int radius = (int) ceil(sigma * 3);
    float *kernel = g_malloc(sizeof(float) * (2 * radius + 1));
    float total = 0;
    for (int k = -radius; k <= radius; k++) total += kernel[k + radius] = (float) exp(-(k * k) / (2 * sigma * sigma));
    for (int k = 0; k <= 2 * radius; k++) kernel[k] /= total;
    for (int row = 0; row < height; row++) blur_line(map + (size_t) row * width, tmp + (size_t) row * width, width, 1, kernel, radius);
    for (int col = 0; col < width; col++) blur_line(tmp + col, map + col, height, width, kernel, radius);
    float best = -1;
    *x = 0;
    *y = 0;
    for (int row = 0; row < height; row++)
        for (int col = 0; col < width; col++)
            if (map[row * width + col] > best) { best = map[row * width + col]; *x = col; *y = row; }
    g_free(kernel);
    g_free(cb);
    g_free(cr);
    g_free(map);
    g_free(tmp);
    return 0;
}

int cvips_attention_centre(VipsImage *in, int *x, int *y) {
    /* libvips' attention detector (edges, skin tones, saturated colour, after a blur): where the crop
       would centre. The crop size itself does not move the centre. */
    VipsImage *crop = NULL;
    int width = vips_image_get_width(in), height = vips_image_get_height(in);
    int status = vips_smartcrop(in, &crop, width > 1 ? width / 2 : 1, height > 1 ? height / 2 : 1,
                                "interesting", VIPS_INTERESTING_ATTENTION, "attention_x", x, "attention_y", y, NULL);
    if (crop) g_object_unref(crop);
    return status;
}

int cvips_page_height(VipsImage *in) {
    int height = vips_image_get_page_height(in);
    return height > 0 ? height : vips_image_get_height(in);
}

int cvips_join_frames(VipsImage **frames, int count, VipsImage *source, VipsImage **out) {
    /* Frames stacked top to bottom, with the source's animation metadata: page height, per-frame delays
       (ms), loop count. gifsave and webpsave write such an image as an animation. */
    VipsImage *joined = NULL;
    if (vips_arrayjoin(frames, &joined, count, "across", 1, NULL)) return -1;
    VipsImage *copy = NULL;
    if (vips_copy(joined, &copy, NULL)) { g_object_unref(joined); return -1; }
    g_object_unref(joined);
    vips_image_set_int(copy, VIPS_META_PAGE_HEIGHT, vips_image_get_height(frames[0]));
    vips_image_set_int(copy, VIPS_META_N_PAGES, count);
    int *delays = NULL, delay_count = 0;
    if (vips_image_get_typeof(source, "delay") && vips_image_get_array_int(source, "delay", &delays, &delay_count) == 0) {
        int *kept = g_malloc(sizeof(int) * count);
        for (int i = 0; i < count; i++) kept[i] = i < delay_count ? delays[i] : 100;
        vips_image_set_array_int(copy, "delay", kept, count);
        g_free(kept);
    }
    int loop = 0;
    if (vips_image_get_typeof(source, "loop") && vips_image_get_int(source, "loop", &loop) == 0) {
        vips_image_set_int(copy, "loop", loop);
    }
    *out = copy;
    return 0;
}

/* A decode worker's answer: the decoded image as uncompressed TIFF (any depth, float included, alpha,
   ICC profile kept), which Pinhole's own process reads back with libvips' TIFF loader. ImageMagick's
   greyscale PSDs come as 3 bands tagged B_W: only the first is the grey. Returns 0, -1 (libvips error),
   or 2 when the decoded layout is one the loader gets wrong (magick CMYK: K lost). */
int cvips_transfer_tiff(VipsImage *in, int from_magick, void **buf, size_t *len) {
    VipsImage *current = in;
    g_object_ref(current);
    VipsInterpretation type = vips_image_get_interpretation(in);
    int bands = vips_image_get_bands(in);
    if (from_magick && (type == VIPS_INTERPRETATION_CMYK || bands >= 5)) { g_object_unref(current); return 2; }
    if (from_magick && bands == 3 && (type == VIPS_INTERPRETATION_B_W || type == VIPS_INTERPRETATION_GREY16)) {
        VipsImage *grey = NULL, *tagged = NULL;
        if (vips_extract_band(current, &grey, 0, NULL) ||
            vips_copy(grey, &tagged, "interpretation", type, NULL)) {
            if (grey) g_object_unref(grey);
            g_object_unref(current);
            return -1;
        }
        g_object_unref(grey);
        g_object_unref(current);
        current = tagged;
    }
    int status = vips_tiffsave_buffer(current, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_NONE, NULL);
    g_object_unref(current);
    return status;
}
