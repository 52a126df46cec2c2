// Fixed-arity wrappers around libvips' variadic API (Swift cannot call C variadics).
// Every function returns 0 on success, -1 on failure with libvips' error buffer set,
// unless it says otherwise. Output images are owned by the caller (g_object_unref).
#ifndef CVIPS_SHIM_H
#define CVIPS_SHIM_H
#include <stddef.h>
#include <vips/vips.h>

/* VIPS_INIT (a macro with an ABI check), then process-wide settings for a server. */
int cvips_init(const char *argv0);
void cvips_configure(int concurrency, int block_untrusted);
void cvips_set_operation_blocked(const char *name, int blocked);
/* Copies and clears the process-global error buffer; free with g_free. */
char *cvips_error_take(void);

/* Opens an image lazily from memory (the buffer is NOT copied: keep it alive).
   options is a libvips option string for the chosen loader, e.g. "shrink=4". */
VipsImage *cvips_open_buffer(const void *buf, size_t len, const char *options, int sequential, int fail_on);
/* Opens a file lazily (for formats with no buffer loader, e.g. OpenEXR). */
VipsImage *cvips_open_file(const char *path, int sequential, int fail_on);
/* Decodes a JPEG with libjpeg-turbo at scale eighths/8 (1..8), optionally with the fast integer IDCT,
   into a new 8-bit RGB (or one-band grey) image. Returns NULL with libvips' error set on failure. */
VipsImage *cvips_turbojpeg_load(const void *buf, size_t len, int eighths, int fast_dct);
/* 1/8-scale pixels of a progressive 4:4:4 or grey JPEG from its DC scans alone: progressive_dc.c. */
VipsImage *cvips_progressive_dc_decode(const void *buf, size_t len);
/* 1 when the image's embedded ICC profile describes itself as sRGB. */
int cvips_has_srgb_profile(VipsImage *in);
/* Loader name ("jpegload_buffer", …) or NULL when not an image libvips can read. */
const char *cvips_find_loader(const void *buf, size_t len);
int cvips_orientation(VipsImage *in);

int cvips_crop(VipsImage *in, VipsImage **out, int left, int top, int width, int height);
int cvips_shrink(VipsImage *in, VipsImage **out, double factor);
int cvips_resize(VipsImage *in, VipsImage **out, double hscale, double vscale);
/* Pillow's LANCZOS (Thumbor's resampling) of an 8-bit image to exactly width×height: lanczos_resample.c. */
int cvips_resample_lanczos(VipsImage *in, VipsImage **out, int width, int height);
int cvips_flip(VipsImage *in, VipsImage **out, int horizontal);
int cvips_autorot(VipsImage *in, VipsImage **out);
int cvips_rot(VipsImage *in, VipsImage **out, int quarter_turns);
int cvips_embed_extend(VipsImage *in, VipsImage **out, int x, int y, int width, int height);
/* Colour: to 8-bit sRGB (or B_W for one-band images), honouring an embedded ICC profile. */
int cvips_to_srgb(VipsImage *in, VipsImage **out, int keep_gray);
/* Linear-light, premultiplied RGBA (OpenEXR) to 8-bit sRGB with straight alpha. */
int cvips_premultiplied_linear_to_srgb(VipsImage *in, VipsImage **out);
int cvips_from_planar_gbra_float(const float *planes, int width, int height, VipsImage **out);
int cvips_extract_bands(VipsImage *in, VipsImage **out, int first, int count);
int cvips_flatten(VipsImage *in, VipsImage **out, double r, double g, double b);
int cvips_draw_rect(VipsImage *image, double r, double g, double b, int left, int top, int width, int height);
int cvips_copy_memory(VipsImage *in, VipsImage **out);

/* Thumbor's trim bounding box: pixels whose Euclidean distance over all bands (0..255) from the
   reference corner pixel (top-left, or bottom-right when corner != 0) is above tolerance.
   Sets *found = 0 when no pixel differs. */
int cvips_trim_box(VipsImage *in, int corner, double tolerance, int *found, int *left, int *top, int *right, int *bottom);

/* Filters on 8-bit sRGB / B_W images (alpha, when present, is the last band and left alone unless said). */
/* Per-band 256-entry lookup tables, lut_bands of them back to back; bands past lut_bands map to themselves. */
int cvips_maplut(VipsImage *in, VipsImage **out, const unsigned char *luts, int lut_bands);
/* Minimum and mean of each band (count of them). */
int cvips_band_stats(VipsImage *in, double *minimums, double *means, int count);
/* 256 pixel counts per band, band after band. */
int cvips_histograms(VipsImage *in, int *counts, int bands);
int cvips_saturation(VipsImage *in, VipsImage **out, double change);
int cvips_grayscale(VipsImage *in, VipsImage **out);
/* Separable blur by a 1-D kernel (normalised by its sum), edges repeated. */
int cvips_blur_kernel(VipsImage *in, VipsImage **out, const double *kernel, int n);
/* Thumbor's sharpen: five-level à-trous wavelet detail amplification (on Y only if luminance_only). */
int cvips_wavelet_sharpen(VipsImage *in, VipsImage **out, double amount, double radius, int luminance_only);
/* matrix is rows × columns, row-major; the sum is divided by scale; borders repeat the edge. */
int cvips_convolve(VipsImage *in, VipsImage **out, const double *matrix, int columns, int rows, double scale);
int cvips_embed_background(VipsImage *in, VipsImage **out, int x, int y, int width, int height,
                           const double *background, int count);
int cvips_add_alpha(VipsImage *in, VipsImage **out);
int cvips_composite_over(VipsImage *base, VipsImage *overlay, VipsImage **out, int x, int y);
int cvips_colour_bands_count(VipsImage *in);
int cvips_noise(VipsImage *in, VipsImage **out, int amount, int seed);
int cvips_round_corners(VipsImage *in, VipsImage **out, int a, int b, double red, double green, double blue, int transparent);

/* Centre of attention (libvips smartcrop's attention detector), in the image's pixels. */
int cvips_attention_centre(VipsImage *in, int *x, int *y);
/* Where the picture's chroma (Cb, Cr) departs most from its mean chroma (blurred): a colourful subject.
   The image must be 8-bit sRGB (or grey) in memory. */
int cvips_colour_rarity_centre(VipsImage *in, int *x, int *y);

/* Animation: frame height of a multi-page image (its height when single), and frames joined back into
   one animated image carrying the source's delays and loop count. */
int cvips_page_height(VipsImage *in);
int cvips_join_frames(VipsImage **frames, int count, VipsImage *source, VipsImage **out);

/* Savers: output buffer is g_malloc'd; free with g_free. */
int cvips_jpegsave(VipsImage *in, int quality, int progressive, void **buf, size_t *len);
int cvips_pngsave(VipsImage *in, int compression, void **buf, size_t *len);
int cvips_webpsave(VipsImage *in, int quality, int lossless, void **buf, size_t *len);
int cvips_gifsave(VipsImage *in, void **buf, size_t *len);
int cvips_avifsave(VipsImage *in, int quality, void **buf, size_t *len);
int cvips_jxlsave(VipsImage *in, int quality, void **buf, size_t *len);
/* A decoded image as uncompressed TIFF for a decode worker's answer (see cvips_shim.c); 2 = unsupported. */
int cvips_transfer_tiff(VipsImage *in, int from_magick, void **buf, size_t *len);

#endif
