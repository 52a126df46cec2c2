/* ASan + UBSan driver for Pinhole's C shims (Sources/CVipsShim: cvips_shim.c, lanczos_resample.c,
   progressive_dc.c): runs the decode / resample / encode calls the service makes (Renderer, RenderPlan,
   IsolatedDecoding) over every file of the corpus and over deterministically mutated corpus images.

     sanitize_driver [--mutations N] [--seed S] [--cpu SECONDS] [--wall SECONDS] [--batch K]
                     [--work DIR] [--findings DIR] CORPUS_DIR
     sanitize_driver --write-input INDEX FILE CORPUS_DIR [--mutations N] [--seed S]
                     (writes input INDEX — corpus files first, then mutations — to FILE, to reproduce one)

   Inputs run in worker processes (this program re-executed with --worker), a batch at a time: libvips is
   initialised once per worker, and a worker that dies (a crash in libvips, a timeout) is replaced, going
   on after the input that killed it. The worker writes the index of the input it is on into a shared
   file before starting it, so a death is pinned on one input. Limits per input: CPU seconds (RLIMIT_CPU,
   raised before each input: SIGXCPU past it), wall-clock seconds (the parent kills the worker), memory
   through ASan's allocator (ASAN_OPTIONS: max_allocation_size_mb, soft/hard_rss_limit_mb, with
   allocator_may_return_null=1, set by run.sh). RLIMIT_AS and RLIMIT_DATA cannot be used: ASan reserves
   terabytes of shadow memory at start.

   A worker's stderr goes to a log; after a death the log says whether a sanitizer reported. A report
   whose first frames (after the sanitizer's own) are in our C (the shims, this driver) counts as a
   sanitizer report in our code: the run fails. Other deaths are listed as crashes or timeouts of the
   libraries, with the input (saved to the findings directory) and the signal.

   Prints `sanitize: M mutated + N corpus inputs, R sanitizer reports, K child crashes (libvips), T s`. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cvips_shim.h"

#define MAX_PIXELS 75000000L          /* RenderSettings.maxPixels */
#define MAX_SIDE (1L << 24)
#define LANCZOS_MAX_INPUT_PIXELS (4L << 20) /* ThumborResampling.maxInputPixels */
#define LANCZOS_MIN_SCALE 0.25        /* ThumborResampling.minScale */
#define MAX_MUTATED_BYTES (16 << 20)

/* ------------------------------------------------------------------------------------------------ */
/* Inputs: the corpus files, sorted, then the mutations.                                          */

struct file {
    char *path;   /* relative to the corpus directory */
    uint8_t *data;
    size_t size;
};

static struct file *files;
static size_t file_count, file_capacity;

static int by_path(const void *a, const void *b) { return strcmp(((const struct file *) a)->path, ((const struct file *) b)->path); }

static void list_files(const char *root, const char *relative) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *relative ? "/" : "", relative);
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "sanitize: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.') continue;
        char child[4096], full[8192];
        snprintf(child, sizeof child, "%s%s%s", relative, *relative ? "/" : "", entry->d_name);
        snprintf(full, sizeof full, "%s/%s", root, child);
        struct stat st;
        if (stat(full, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            list_files(root, child);
        } else if (S_ISREG(st.st_mode)) {
            if (file_count == file_capacity) {
                file_capacity = file_capacity ? 2 * file_capacity : 64;
                files = realloc(files, file_capacity * sizeof *files);
            }
            files[file_count++] = (struct file) { strdup(child), NULL, (size_t) st.st_size };
        }
    }
    closedir(dir);
}

static const uint8_t *file_data(const char *root, struct file *f) {
    if (f->data || f->size == 0) return f->data;
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", root, f->path);
    FILE *in = fopen(full, "rb");
    if (!in) return NULL;
    f->data = malloc(f->size);
    if (fread(f->data, 1, f->size, in) != f->size) {
        free(f->data);
        f->data = NULL;
    }
    fclose(in);
    return f->data;
}

static const char *extension(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : "";
}

/* Which corpus files are mutated, and how often: JPEG, PNG, WebP, TIFF and GIF mostly; the other image
   formats now and then; video (FFmpeg's, not ours) and text never. */
static int mutation_weight(const char *path) {
    const char *e = extension(path);
    if (!strcasecmp(e, "jpg") || !strcasecmp(e, "jpeg")) return 4;
    if (!strcasecmp(e, "png")) return 6;
    if (!strcasecmp(e, "webp") || !strcasecmp(e, "tif") || !strcasecmp(e, "tiff") || !strcasecmp(e, "gif")) return 10;
    if (!strcasecmp(e, "avif") || !strcasecmp(e, "jxl") || !strcasecmp(e, "hdr") || !strcasecmp(e, "svg") ||
        !strcasecmp(e, "pdf") || !strcasecmp(e, "psd") || !strcasecmp(e, "dpx") || !strcasecmp(e, "exr"))
        return 2;
    return 0;
}

/* Deterministic: splitmix64 to seed each mutation, xorshift64* to draw. */
static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static size_t below(uint64_t *s, size_t n) { return n ? (size_t) (next(s) % n) : 0; }

struct buffer {
    uint8_t *data;
    size_t size, capacity;
};

static void reserve(struct buffer *b, size_t size) {
    if (size <= b->capacity) return;
    b->capacity = size + size / 2 + 64;
    b->data = realloc(b->data, b->capacity);
}

/* A position: half the time in the first 2 KB (headers, where the structure is), a quarter of the time
   just after a 0xFF byte (a JPEG marker), otherwise anywhere. */
static size_t position(uint64_t *s, const struct buffer *b) {
    if (b->size == 0) return 0;
    size_t r = below(s, 4);
    if (r < 2) return below(s, b->size < 2048 ? b->size : 2048);
    if (r == 2) {
        size_t start = below(s, b->size);
        for (size_t i = start; i + 1 < b->size; i++)
            if (b->data[i] == 0xFF && b->data[i + 1] != 0x00 && b->data[i + 1] != 0xFF) {
                size_t at = i + 1 + below(s, 6);
                return at < b->size ? at : b->size - 1;
            }
    }
    return below(s, b->size);
}

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* PNG checks every chunk's CRC, so most mutations would stop at the first one: half the time the CRCs
   are made right again, and the mutated values (sizes, depths, palette lengths) reach the decoder. */
static void fix_png_crcs(struct buffer *b) {
    static const uint8_t signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n' };
    if (b->size < 8 || memcmp(b->data, signature, 8)) return;
    size_t at = 8;
    while (at + 12 <= b->size) {
        uint32_t length = (uint32_t) b->data[at] << 24 | b->data[at + 1] << 16 | b->data[at + 2] << 8 | b->data[at + 3];
        if (length > b->size - at - 12) break;
        uint32_t crc = crc32_of(b->data + at + 4, 4 + (size_t) length);
        uint8_t *out = b->data + at + 8 + length;
        out[0] = crc >> 24; out[1] = crc >> 16; out[2] = crc >> 8; out[3] = crc;
        at += 12 + length;
    }
}

static const uint32_t interesting32[] = { 0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                                          0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu, 65000, 30000, 16384 };

static void mutate(struct buffer *b, uint64_t *s) {
    int operations = 1 + (int) below(s, 4) + (below(s, 4) == 0 ? (int) below(s, 12) : 0);
    for (int op = 0; op < operations; op++) {
        size_t at = position(s, b);
        switch (below(s, 11)) {
        case 0: case 1:   /* bit flips */
            if (b->size) b->data[at % b->size] ^= (uint8_t) (1u << below(s, 8));
            break;
        case 2:   /* a random byte */
            if (b->size) b->data[at % b->size] = (uint8_t) next(s);
            break;
        case 3:   /* an interesting byte */
            if (b->size) b->data[at % b->size] = (uint8_t[]) { 0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE }[below(s, 6)];
            break;
        case 4: case 5: {   /* an interesting 16- or 32-bit value, big- or little-endian (sizes, lengths) */
            int width = below(s, 2) ? 2 : 4, little = (int) below(s, 2);
            uint32_t v = below(s, 4) == 0 ? (uint32_t) next(s) : interesting32[below(s, 16)];
            if (below(s, 3) == 0) v += (uint32_t) below(s, 5) - 2;
            for (int i = 0; i < width && at + i < b->size; i++)
                b->data[at + i] = (uint8_t) (v >> (8 * (little ? i : width - 1 - i)));
            break;
        }
        case 6:   /* truncation: anywhere in the file (rarely to a few bytes) */
            if (b->size) b->size = below(s, 8) == 0 ? below(s, b->size < 64 ? b->size : 64) : below(s, b->size);
            break;
        case 7: {   /* a chunk duplicated (inserted again elsewhere) */
            if (!b->size) break;
            size_t start = below(s, b->size), length = 1 + below(s, below(s, 2) ? 64 : 8192);
            if (length > b->size - start) length = b->size - start;
            if (b->size + length > MAX_MUTATED_BYTES) break;
            size_t where = position(s, b);
            reserve(b, b->size + length);
            uint8_t *copy = malloc(length);
            memcpy(copy, b->data + start, length);
            memmove(b->data + where + length, b->data + where, b->size - where);
            memcpy(b->data + where, copy, length);
            free(copy);
            b->size += length;
            break;
        }
        case 8: {   /* a chunk removed */
            if (!b->size) break;
            size_t start = at % b->size, length = 1 + below(s, below(s, 2) ? 64 : 8192);
            if (length > b->size - start) length = b->size - start;
            memmove(b->data + start, b->data + start + length, b->size - start - length);
            b->size -= length;
            break;
        }
        case 9: {   /* a chunk copied over another place */
            if (!b->size) break;
            size_t from = below(s, b->size), to = at % b->size, length = 1 + below(s, 256);
            if (length > b->size - from) length = b->size - from;
            if (length > b->size - to) length = b->size - to;
            memmove(b->data + to, b->data + from, length);
            break;
        }
        default: {   /* a burst of random bytes */
            size_t n = 1 + below(s, 32);
            for (size_t i = 0; i < n && b->size; i++) b->data[below(s, b->size)] = (uint8_t) next(s);
            break;
        }
        }
    }
    if (below(s, 2)) fix_png_crcs(b);
}

struct options {
    const char *corpus;
    long mutations;
    uint64_t seed;
    double cpu, wall;
    long batch;
    const char *work, *findings;
};

static size_t *base_of_weight;   /* file index per unit of weight */
static size_t weight_total;

static void prepare_bases(void) {
    for (size_t i = 0; i < file_count; i++) weight_total += (size_t) mutation_weight(files[i].path);
    base_of_weight = malloc((weight_total ? weight_total : 1) * sizeof *base_of_weight);
    size_t k = 0;
    for (size_t i = 0; i < file_count; i++)
        for (int w = 0; w < mutation_weight(files[i].path); w++) base_of_weight[k++] = i;
}

/* Input `index`: corpus file `index`, or mutation `index - file_count`. Returns the base file's index. */
static size_t make_input(const struct options *o, long index, struct buffer *out) {
    if ((size_t) index < file_count) {
        struct file *f = &files[index];
        const uint8_t *data = file_data(o->corpus, f);
        out->size = 0;
        reserve(out, f->size);
        if (data) memcpy(out->data, data, f->size);
        out->size = data ? f->size : 0;
        return (size_t) index;
    }
    uint64_t s = splitmix64(o->seed ^ splitmix64((uint64_t) index));
    if (!s) s = 1;
    size_t base = base_of_weight[below(&s, weight_total)];
    struct file *f = &files[base];
    const uint8_t *data = file_data(o->corpus, f);
    out->size = 0;
    reserve(out, f->size + 1);
    if (data) memcpy(out->data, data, f->size);
    out->size = data ? f->size : 0;
    mutate(out, &s);
    return base;
}

/* ------------------------------------------------------------------------------------------------ */
/* The service's path through the shims.                                                          */

struct counts {
    long rendered, refused, not_image, failed;
};

/* The state a worker shares with the parent (a mapped file). */
struct state {
    volatile long current;        /* the input being processed, -1 between inputs */
    volatile long next;           /* the first input not yet finished */
    volatile int64_t started_ns;  /* when `current` started (CLOCK_MONOTONIC) */
    volatile struct counts counts;
    volatile double slowest_seconds;
    volatile long slowest_input;
};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t) t.tv_sec * 1000000000 + t.tv_nsec;
}

#define UNREF(x) do { if (x) { g_object_unref(x); (x) = NULL; } } while (0)

enum format { F_OTHER, F_JPEG, F_PNG, F_WEBP, F_GIF, F_TIFF, F_HEIF, F_JXL, F_HDR, F_SVG, F_PDF, F_EXR, F_MAGICK };

static enum format format_of_loader(const char *loader) {
    static const struct { const char *prefix; enum format format; } names[] = {
        { "jpegload", F_JPEG }, { "pngload", F_PNG }, { "webpload", F_WEBP }, { "gifload", F_GIF },
        { "tiffload", F_TIFF }, { "heifload", F_HEIF }, { "jxlload", F_JXL }, { "radload", F_HDR },
        { "svgload", F_SVG }, { "pdfload", F_PDF }, { "openexrload", F_EXR }, { "magickload", F_MAGICK },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(loader, names[i].prefix, strlen(names[i].prefix))) return names[i].format;
    return F_OTHER;
}

static int starts_with(const uint8_t *p, size_t n, const char *magic, size_t m) { return n >= m && !memcmp(p, magic, m); }

/* IsolatedDecoding.format: what a decode worker, not the server, reads. */
static int worker_format(const uint8_t *p, size_t n) {
    if (starts_with(p, n, "8BPS", 4) || starts_with(p, n, "SDPX", 4) || starts_with(p, n, "XPDS", 4)) return 1;
    if (starts_with(p, n, "%PDF", 4) || starts_with(p, n, "\x76\x2f\x31\x01", 4)) return 1;
    size_t head = n < 2048 ? n : 2048;
    for (size_t i = 0; i + 4 <= head; i++)
        if (!memcmp(p + i, "<svg", 4)) return 1;
    return 0;
}

struct header {
    int width, height, bands, pages, alpha, orientation, srgb_profile, other_profile;
    enum format format;
};

static int read_header(VipsImage *image, struct header *h) {
    h->width = vips_image_get_width(image);
    h->height = vips_image_get_height(image);
    h->bands = vips_image_get_bands(image);
    h->pages = vips_image_get_n_pages(image);
    h->alpha = vips_image_hasalpha(image);
    h->orientation = cvips_orientation(image);
    int icc = vips_image_get_typeof(image, VIPS_META_ICC_NAME) != 0;
    h->srgb_profile = icc && cvips_has_srgb_profile(image);
    h->other_profile = icc && !h->srgb_profile;
    const char *loader = NULL;
    if (vips_image_get_string(image, "vips-loader", &loader) == 0 && loader) h->format = format_of_loader(loader);
    return 0;
}

/* A temporary file for loaders without a buffer variant (OpenEXR), as TemporarySourceFile does. */
static char *write_temporary(const uint8_t *data, size_t size) {
    const char *dir = getenv("TMPDIR");
    char *path = g_strdup_printf("%s/pinhole-sanitize-%d.exr", dir && *dir ? dir : "/tmp", (int) getpid());
    FILE *out = fopen(path, "wb");
    if (!out || fwrite(data, 1, size, out) != size) {
        if (out) fclose(out);
        g_free(path);
        return NULL;
    }
    fclose(out);
    return path;
}

static VipsImage *open_source(const uint8_t *data, size_t size, const char *exr_path, const char *options, int sequential,
                              int fail_on) {
    if (exr_path) return cvips_open_file(exr_path, sequential, fail_on);
    return cvips_open_buffer(data, size, options, sequential, fail_on);
}

/* Image.orient(exif:) */
static VipsImage *orient(VipsImage *in, int exif) {
    VipsImage *a = NULL, *b = NULL;
    switch (exif) {
    case 2: cvips_flip(in, &a, 1); return a;
    case 3: cvips_rot(in, &a, 2); return a;
    case 4: cvips_flip(in, &a, 0); return a;
    case 5: if (cvips_rot(in, &a, 1) == 0) cvips_flip(a, &b, 1); UNREF(a); return b;
    case 6: cvips_rot(in, &a, 1); return a;
    case 7: if (cvips_rot(in, &a, 3) == 0) cvips_flip(a, &b, 1); UNREF(a); return b;
    case 8: cvips_rot(in, &a, 3); return a;
    default: g_object_ref(in); return in;
    }
}

/* Renderer.transform(.resize): Pillow's Lanczos when ThumborResampling applies, libvips' resize otherwise,
   landing on the exact size. */
static VipsImage *resize_to(VipsImage *in, int width, int height) {
    int w = vips_image_get_width(in), h = vips_image_get_height(in), bands = vips_image_get_bands(in);
    VipsImage *out = NULL;
    if (w == width && h == height) { g_object_ref(in); return in; }
    if (vips_image_get_format(in) == VIPS_FORMAT_UCHAR && (bands == 1 || bands == 3) && !vips_image_hasalpha(in) &&
        (long) w * h <= LANCZOS_MAX_INPUT_PIXELS && width >= w * LANCZOS_MIN_SCALE && height >= h * LANCZOS_MIN_SCALE) {
        return cvips_resample_lanczos(in, &out, width, height) == 0 ? out : NULL;
    }
    VipsImage *resized = NULL, *cropped = NULL;
    if (cvips_resize(in, &resized, (double) width / w, (double) height / h)) return NULL;
    int rw = vips_image_get_width(resized), rh = vips_image_get_height(resized);
    if (rw == width && rh == height) return resized;
    if (rw > width || rh > height) {
        if (cvips_crop(resized, &cropped, 0, 0, rw < width ? rw : width, rh < height ? rh : height)) { UNREF(resized); return NULL; }
        UNREF(resized);
        resized = cropped;
    }
    cvips_embed_extend(resized, &out, 0, 0, width, height);
    UNREF(resized);
    return out;
}

/* Thumbnail variants, as URLs would ask: fit-in boxes, a fill crop, and smart + trim + filters. */
struct variant {
    int width, height, fill, smart, webp, fast_dct;
    int fine_scales;   /* jpeg_draft_scales off: the finest scale in eighths, not Pillow's 1/2/4/8 draft */
};

static const struct variant variants[] = {
    { 300, 300, 0, 0, 0, 0, 0 },
    { 64, 64, 0, 0, 0, 1, 1 },
    { 200, 200, 1, 0, 1, 0, 0 },
    { 480, 480, 0, 1, 0, 0, 1 },
};
#define VARIANT_COUNT 4

static int encode(VipsImage *image, int format_choice) {
    void *buf = NULL;
    size_t len = 0;
    int status;
    if (format_choice == 1) status = cvips_webpsave(image, 80, 0, &buf, &len);
    else if (format_choice == 2) status = cvips_gifsave(image, &buf, &len);
    else if (vips_image_hasalpha(image)) status = cvips_pngsave(image, 6, &buf, &len);
    else status = cvips_jpegsave(image, 80, 1, &buf, &len);
    g_free(buf);
    return status;
}

/* The filters and detectors the service runs on decoded thumbnails (trim, smart, a few of Thumbor's). */
static void filters(VipsImage *image) {
    int found = 0, left = 0, top = 0, right = 0, bottom = 0, x = 0, y = 0;
    cvips_trim_box(image, 0, 10, &found, &left, &top, &right, &bottom);
    cvips_trim_box(image, 1, 0, &found, &left, &top, &right, &bottom);
    cvips_colour_rarity_centre(image, &x, &y);
    cvips_attention_centre(image, &x, &y);
    int bands = vips_image_get_bands(image);
    double minimums[8], means[8];
    int *histograms = g_malloc0(sizeof(int) * 256 * (size_t) bands);
    cvips_band_stats(image, minimums, means, bands < 8 ? bands : 8);
    cvips_histograms(image, histograms, bands);
    g_free(histograms);
    unsigned char luts[4 * 256];
    for (int i = 0; i < 4 * 256; i++) luts[i] = (unsigned char) (255 - (i & 255));
    VipsImage *t = NULL, *u = NULL;
    if (!cvips_maplut(image, &t, luts, bands < 4 ? bands : 4) && !cvips_copy_memory(t, &u)) UNREF(u);
    UNREF(t);
    if (!cvips_round_corners(image, &t, 8, 8, 255, 255, 255, 1) && !cvips_copy_memory(t, &u)) UNREF(u);
    UNREF(t);
    if (!cvips_noise(image, &t, 20, 7)) UNREF(t);
}

/* One source through the server's pipeline. Returns 0 rendered, 1 refused (plan, size), 2 not an image,
   3 failed (a libvips error). */
static int render(const uint8_t *data, size_t size, const struct variant *v, int depth, enum format decoded_from);

/* IsolatedDecoding.decode: the worker's side (first page whole, a TIFF back), then the server's. */
static int render_in_worker(const uint8_t *data, size_t size, const char *exr_path, const struct variant *v, int depth) {
    VipsImage *head = open_source(data, size, exr_path, "", 1, 0);
    if (!head) return 2;
    struct header h = { 0 };
    read_header(head, &h);
    UNREF(head);
    if ((long) h.width * h.height > MAX_PIXELS) return 1;
    VipsImage *image = open_source(data, size, exr_path, "", 0, 2), *memory = NULL;
    if (!image) return 3;
    int status = cvips_copy_memory(image, &memory);
    UNREF(image);
    if (status) return 3;
    void *tiff = NULL;
    size_t tiff_len = 0;
    status = cvips_transfer_tiff(memory, h.format == F_MAGICK, &tiff, &tiff_len);
    UNREF(memory);
    if (status == 2) return 1;
    if (status) return 3;
    int result = render(tiff, tiff_len, v, depth + 1, h.format);
    g_free(tiff);
    return result;
}

static int render(const uint8_t *data, size_t size, const struct variant *v, int depth, enum format decoded_from) {
    if (size == 0) return 2;
    char *exr_path = NULL;
    if (depth == 0 && worker_format(data, size)) {
        if (starts_with(data, size, "\x76\x2f\x31\x01", 4) && !(exr_path = write_temporary(data, size))) return 3;
        int result = render_in_worker(data, size, exr_path, v, depth);
        if (exr_path) { unlink(exr_path); g_free(exr_path); }
        return result;
    }
    /* Image.loaderName, Image.header */
    if (!cvips_find_loader(data, size)) return 2;
    VipsImage *head = cvips_open_buffer(data, size, "", 1, 0);
    if (!head) return 2;
    struct header h = { 0 };
    read_header(head, &h);
    UNREF(head);
    int from_tiff = h.format == F_TIFF;
    if (decoded_from != F_OTHER) h.format = decoded_from;   /* a worker's TIFF: planned as its source's format */
    /* RenderPlan: the source's size against maxPixels */
    if ((long) h.width * h.height > MAX_PIXELS || h.width > MAX_SIDE || h.height > MAX_SIDE || h.width < 1 || h.height < 1)
        return 1;

    /* Geometry: the displayed size (EXIF orientation), the box, the crop for fill. */
    int swaps = h.orientation >= 5 && h.orientation <= 8;
    int dw = swaps ? h.height : h.width, dh = swaps ? h.width : h.height;
    double scale;
    int tw, th;
    double region_w = dw, region_h = dh;
    if (v->fill) {
        scale = fmax((double) v->width / dw, (double) v->height / dh);
        tw = v->width;
        th = v->height;
        region_w = fmin(dw, tw / scale);
        region_h = fmin(dh, th / scale);
    } else {
        scale = fmin(1.0, fmin((double) v->width / dw, (double) v->height / dh));
        tw = (int) fmax(1, round(dw * scale));
        th = (int) fmax(1, round(dh * scale));
    }
    int stored_tw = swaps ? th : tw, stored_th = swaps ? tw : th;
    double stored_rw = swaps ? region_h : region_w, stored_rh = swaps ? region_w : region_h;

    /* Load: TurboJPEG at a scale in eighths (libjpeg-turbo, and the DC decoder at 1/8), libvips with a
       shrink for other JPEGs, libvips for the rest (all frames of an animated GIF). */
    VipsImage *image = NULL;
    int turbo = !from_tiff && h.format == F_JPEG && (h.bands == 1 || h.bands == 3) && !h.other_profile;
    int animated = !from_tiff && h.format == F_GIF && h.pages > 1;
    int frames = animated ? (h.pages < 8 ? h.pages : 8) : 1;
    /* RenderPlan: Pillow's draft ratio (the smaller whole ratio of region to target), rounded down to 8, 4, 2. */
    int draft_ratio = (int) fmin(floor(stored_rw) / stored_tw, floor(stored_rh) / stored_th);
    int draft_shrink = draft_ratio >= 8 ? 8 : draft_ratio >= 4 ? 4 : draft_ratio >= 2 ? 2 : 1;
    if (turbo) {
        int eighths = 8 / draft_shrink;
        if (v->fine_scales) {
            eighths = 8;
            for (int e = 1; e <= 8; e++)
                if (stored_rw * e / 8 >= stored_tw && stored_rh * e / 8 >= stored_th) { eighths = e; break; }
        }
        image = cvips_turbojpeg_load(data, size, eighths, v->fast_dct);
        if (eighths != 1) {   /* the DC decoder too, whatever the plan chose */
            VipsImage *dc = cvips_turbojpeg_load(data, size, 1, 0);
            UNREF(dc);
            vips_error_clear();
        }
    } else if (!from_tiff && h.format == F_JPEG) {
        int shrink = draft_shrink;
        if (v->fine_scales) {
            shrink = 1;
            for (int s = 8; s >= 2; s /= 2)
                if (stored_rw / s >= stored_tw && stored_rh / s >= stored_th) { shrink = s; break; }
        }
        char options[32] = "";
        if (shrink > 1) snprintf(options, sizeof options, "shrink=%d", shrink);
        image = cvips_open_buffer(data, size, options, 1, 2);
    } else if (animated) {
        char options[32];
        snprintf(options, sizeof options, "n=%d", frames);
        image = cvips_open_buffer(data, size, options, 0, 2);
    } else {
        image = cvips_open_buffer(data, size, "", 1, 2);
    }
    if (!image) return 3;

    int result = 3;
    VipsImage *pieces[8] = { NULL };   /* at most 8 frames */
    VipsImage *joined = NULL;
    int page_height = animated ? cvips_page_height(image) : vips_image_get_height(image);
    int loaded_w = vips_image_get_width(image);
    if (page_height < 1 || page_height > vips_image_get_height(image)) goto done;
    frames = animated ? vips_image_get_height(image) / page_height : 1;
    if (frames > 8) frames = 8;
    if (frames < 1) goto done;
    for (int f = 0; f < frames; f++) {
        VipsImage *current = NULL, *next = NULL;
        if (animated) {
            if (cvips_crop(image, &current, 0, f * page_height, loaded_w, page_height)) goto done;
        } else {
            current = image;
            g_object_ref(current);
        }
        /* Crop (fill: centred), in the loaded image's pixels. */
        int lw = vips_image_get_width(current), lh = vips_image_get_height(current);
        double fx = (double) lw / h.width, fy = (double) lh / (animated ? page_height : h.height);
        int cw = (int) fmax(1, fmin(lw, round(stored_rw * fx))), ch = (int) fmax(1, fmin(lh, round(stored_rh * fy)));
        if (cw != lw || ch != lh) {
            if (cvips_crop(current, &next, (lw - cw) / 2, (lh - ch) / 2, cw, ch)) { UNREF(current); goto done; }
            UNREF(current);
            current = next;
            next = NULL;
        }
        /* Resize, then sRGB in memory, then orientation. */
        next = resize_to(current, stored_tw, stored_th);
        UNREF(current);
        if (!next) goto done;
        current = next;
        if (h.format == F_EXR && h.alpha) {
            VipsImage *memory = NULL;
            if (cvips_copy_memory(current, &memory)) { UNREF(current); goto done; }
            UNREF(current);
            int status = cvips_premultiplied_linear_to_srgb(memory, &next);
            UNREF(memory);
            if (status) goto done;
        } else if (cvips_to_srgb(current, &next, h.bands <= 2)) {
            UNREF(current);
            goto done;
        } else {
            UNREF(current);
        }
        current = next;
        if (cvips_copy_memory(current, &next)) { UNREF(current); goto done; }
        UNREF(current);
        current = next;
        if (h.orientation != 1) {
            next = orient(current, h.orientation);
            UNREF(current);
            if (!next) goto done;
            current = next;
        }
        if (v->smart && f == 0) filters(current);
        pieces[f] = current;
    }
    if (animated) {
        if (cvips_join_frames(pieces, frames, image, &joined)) goto done;
        result = encode(joined, 2) ? 3 : 0;
    } else {
        result = encode(pieces[0], v->webp) ? 3 : 0;
    }
done:
    for (int f = 0; f < 8; f++) UNREF(pieces[f]);
    UNREF(joined);
    UNREF(image);
    return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* Worker: runs inputs from `next` on, recording progress in the shared state.                      */

static struct state *map_state(const char *path, int create) {
    int fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
    if (fd < 0 || (create && ftruncate(fd, sizeof(struct state)))) {
        fprintf(stderr, "sanitize: cannot map %s: %s\n", path, strerror(errno));
        exit(2);
    }
    struct state *s = mmap(NULL, sizeof(struct state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED) {
        fprintf(stderr, "sanitize: cannot map %s\n", path);
        exit(2);
    }
    return s;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static int run_worker(const struct options *o, const char *state_path, long total) {
    struct state *state = map_state(state_path, 0);
    setenv("VIPS_WARNING", "0", 0);
    if (cvips_init("sanitize_driver")) {
        fprintf(stderr, "vips_init failed\n");
        return 2;
    }
    /* VipsRuntime.start: one thread per pipeline, no operation cache, untrusted loaders blocked except
       the studio's (here the worker-side ones too: this process plays both parts). */
    cvips_configure(1, 1);
    static const char *allowed[] = { "VipsForeignLoadSvg", "VipsForeignLoadPdf", "VipsForeignLoadOpenexr",
                                     "VipsForeignLoadRad", "VipsForeignLoadJxl", "VipsForeignLoadMagick",
                                     "VipsForeignSaveJxl" };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) cvips_set_operation_blocked(allowed[i], 0);
    struct buffer input = { 0 };
    long end = state->next + o->batch;
    if (end > total) end = total;
    for (long index = state->next; index < end; index++) {
        state->current = index;   /* (also while the input is made) */
        state->started_ns = now_ns();
        size_t base = make_input(o, index, &input);
        struct rlimit cpu;
        getrlimit(RLIMIT_CPU, &cpu);
        cpu.rlim_cur = (rlim_t) ceil(cpu_seconds() + o->cpu);
        if (cpu.rlim_max != RLIM_INFINITY && cpu.rlim_cur > cpu.rlim_max) cpu.rlim_cur = cpu.rlim_max;
        setrlimit(RLIMIT_CPU, &cpu);
        state->started_ns = now_ns();
        state->current = index;
        /* A marker in the log: what follows is this input's (the parent reads a dead worker's last words). */
        fprintf(stderr, "== input %ld (%s%s, %zu bytes)\n", index, (size_t) index < file_count ? "" : "mutated ",
                files[base].path, input.size);
        int corpus = (size_t) index < file_count;
        for (int k = 0; k < VARIANT_COUNT; k++) {
            /* Corpus files through every variant; a mutation through one. */
            if (!corpus && k != (int) (index % VARIANT_COUNT)) continue;
            int result = render(input.data, input.size, &variants[k], 0, F_OTHER);
            vips_error_clear();
            switch (result) {
            case 0: state->counts.rendered++; break;
            case 1: state->counts.refused++; break;
            case 2: state->counts.not_image++; break;
            default: state->counts.failed++; break;
            }
        }
        double seconds = (now_ns() - state->started_ns) / 1e9;
        if (seconds > state->slowest_seconds) {
            state->slowest_seconds = seconds;
            state->slowest_input = index;
        }
        state->current = -1;
        state->next = index + 1;
    }
    free(input.data);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Parent: workers, deaths, the summary.                                                            */

struct death {
    long input;
    int signal;          /* 0: exited with `status` */
    int status;
    int timeout;         /* 1 wall clock, 2 CPU */
    int report;          /* 0 none, 1 in our code, 2 in a library */
    char what[160];      /* the sanitizer's summary line, or the library's last words */
    char saved[512];
};

static int is_ours(const char *line) {
    return strstr(line, "cvips_shim.c") || strstr(line, "lanczos_resample.c") || strstr(line, "progressive_dc.c") ||
           strstr(line, "sanitize_driver.c");
}

static int is_runtime(const char *line) {
    return strstr(line, "compiler-rt/") || strstr(line, "sanitizer_common") || strstr(line, "__interceptor_") ||
           strstr(line, "__asan_") || strstr(line, "__sanitizer_") || strstr(line, "__ubsan_") ||
           strstr(line, " in abort ") || strstr(line, " in raise ") || strstr(line, "pthread_kill") ||
           strstr(line, "libc.so");
}

/* Reads the worker's log from `from`: the sanitizer's report, if any, and whose code it is in. */
static void classify(const char *log_path, long from, struct death *d) {
    FILE *log = fopen(log_path, "r");
    if (!log) return;
    fseek(log, from, SEEK_SET);
    char line[4096];
    int in_report = 0, frames_seen = 0, last_stack_done = 0;
    char last[160] = "";
    while (fgets(line, sizeof line, log)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "== input ", 9) && !in_report) {   /* a new input: forget the previous one's lines */
            last[0] = 0;
            d->what[0] = 0;
            continue;
        }
        if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") || strstr(line, "runtime error:")) {
            if (strstr(line, "rss limit exhausted") || strstr(line, "allocator is out of memory") ||
                strstr(line, "requested allocation size")) {
                snprintf(d->what, sizeof d->what, "memory limit: %s", strstr(line, "ERROR:") ? strstr(line, "ERROR:") : line);
                continue;
            }
            if (!in_report) {
                in_report = 1;
                d->report = 2;
                snprintf(d->what, sizeof d->what, "%s", line);
                if (strstr(line, "runtime error:") && is_ours(line)) d->report = 1;
            }
            continue;
        }
        if (in_report && !strncmp(line, "SUMMARY: ", 9)) {   /* the kind of error and where */
            snprintf(d->what, sizeof d->what, "%s", line + 9);
            continue;
        }
        if (in_report && !last_stack_done && strstr(line, "    #")) {
            if (is_runtime(line)) continue;
            if (frames_seen < 2 && is_ours(line)) d->report = 1;
            frames_seen++;
            continue;
        }
        if (in_report && frames_seen > 0 && !strstr(line, "    #")) last_stack_done = 1;
        if (!in_report && *line) snprintf(last, sizeof last, "%s", line);
        if (!in_report && (strstr(line, "failed to allocate") || strstr(line, "out of memory")))
            snprintf(d->what, sizeof d->what, "memory limit: %s", line);
    }
    fclose(log);
    if (!d->report && !*d->what) snprintf(d->what, sizeof d->what, "%s", *last ? last : "(no message)");
}

static const char *signal_name(int s) {
    switch (s) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGXCPU: return "SIGXCPU";
    case SIGTRAP: return "SIGTRAP";
    default: return strsignal(s);
    }
}

static void save_input(const struct options *o, long index, struct death *d) {
    if (!o->findings) return;
    struct buffer b = { 0 };
    size_t base = make_input(o, index, &b);
    const char *name = strrchr(files[base].path, '/');
    name = name ? name + 1 : files[base].path;
    snprintf(d->saved, sizeof d->saved, "%s/input-%ld-%s%s", o->findings, index, (size_t) index < file_count ? "" : "mutated-", name);
    FILE *out = fopen(d->saved, "wb");
    if (out) {
        fwrite(b.data, 1, b.size, out);
        fclose(out);
    } else {
        d->saved[0] = 0;
    }
    free(b.data);
}

static void describe_input(const struct options *o, long index, char *out, size_t n) {
    if ((size_t) index < file_count) {
        snprintf(out, n, "corpus %s", files[index].path);
        return;
    }
    uint64_t s = splitmix64(o->seed ^ splitmix64((uint64_t) index));   /* as make_input draws its base */
    if (!s) s = 1;
    snprintf(out, n, "mutation %ld of %s", index - (long) file_count, files[base_of_weight[below(&s, weight_total)]].path);
}

static int run_parent(const struct options *o, const char *self, long total) {
    char state_path[4096], log_path[4096];
    snprintf(state_path, sizeof state_path, "%s/state", o->work);
    snprintf(log_path, sizeof log_path, "%s/workers.log", o->work);
    struct state *state = map_state(state_path, 1);
    memset((void *) state, 0, sizeof *state);
    state->current = -1;
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "sanitize: cannot write %s\n", log_path);
        return 2;
    }
    struct death *deaths = NULL;
    size_t death_count = 0;
    int64_t start = now_ns();
    long progress_step = total / 20 > 0 ? total / 20 : 1, next_progress = progress_step;
    char seed_text[32], mutations_text[32], batch_text[32], cpu_text[32];
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, o->seed);
    snprintf(mutations_text, sizeof mutations_text, "%ld", o->mutations);
    snprintf(batch_text, sizeof batch_text, "%ld", o->batch);
    snprintf(cpu_text, sizeof cpu_text, "%g", o->cpu);
    while (state->next < total) {
        long log_start = lseek(log_fd, 0, SEEK_END);
        state->current = -1;
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            dup2(log_fd, 2);
            dup2(log_fd, 1);
            struct rlimit no_core = { 0, 0 };
            setrlimit(RLIMIT_CORE, &no_core);
            char *args[] = { (char *) self, "--worker", state_path, "--mutations", mutations_text, "--seed", seed_text,
                             "--batch", batch_text, "--cpu", cpu_text, (char *) o->corpus, NULL };
            execv(self, args);
            _exit(127);
        }
        int status = 0, timeout = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid) break;
            if (r < 0 && errno != EINTR) { perror("waitpid"); return 2; }
            long current = state->current;
            if (current >= 0 && (now_ns() - state->started_ns) / 1e9 > o->wall) {
                kill(pid, SIGKILL);
                timeout = 1;
                waitpid(pid, &status, 0);
                break;
            }
            usleep(20000);
            if (state->next >= next_progress) {
                fprintf(stderr, "sanitize: %ld/%ld inputs, %zu deaths, %.0f s\n", state->next, total, death_count,
                        (now_ns() - start) / 1e9);
                while (next_progress <= state->next) next_progress += progress_step;
            }
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !timeout) continue;   /* the batch is done */
        long culprit = state->current;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            fprintf(stderr, "sanitize: cannot run %s as a worker\n", self);
            return 2;
        }
        if (culprit < 0) {
            /* Died between inputs (at start or exit): blame nothing, but do not loop forever. */
            fprintf(stderr, "sanitize: a worker died outside any input (status %d), see %s\n", status, log_path);
            culprit = state->next;
        }
        deaths = realloc(deaths, (death_count + 1) * sizeof *deaths);
        struct death *d = &deaths[death_count++];
        memset(d, 0, sizeof *d);
        d->input = culprit;
        if (WIFSIGNALED(status)) d->signal = WTERMSIG(status);
        else d->status = WEXITSTATUS(status);
        d->timeout = timeout ? 1 : d->signal == SIGXCPU ? 2 : 0;
        classify(log_path, log_start, d);
        save_input(o, culprit, d);
        state->next = culprit + 1;
        state->current = -1;
    }
    double seconds = (now_ns() - start) / 1e9;
    long reports_ours = 0, reports_library = 0, crashes = 0, timeouts = 0, memory = 0;
    for (size_t i = 0; i < death_count; i++) {
        struct death *d = &deaths[i];
        char input[512];
        describe_input(o, d->input, input, sizeof input);
        const char *kind;
        if (d->report == 1) { kind = "SANITIZER REPORT IN OUR CODE"; reports_ours++; }
        else if (d->report == 2) { kind = "sanitizer report in a library"; reports_library++; }
        else if (d->timeout) { kind = d->timeout == 1 ? "timeout (wall clock)" : "timeout (CPU)"; timeouts++; }
        else if (!strncmp(d->what, "memory limit", 12)) { kind = "memory limit"; memory++; }
        else { kind = "crash"; crashes++; }
        if (d->signal) fprintf(stderr, "  %s: input %ld (%s), %s: %s%s%s\n", kind, d->input, input, signal_name(d->signal), d->what,
                               *d->saved ? " — saved as " : "", d->saved);
        else fprintf(stderr, "  %s: input %ld (%s), exit status %d: %s%s%s\n", kind, d->input, input, d->status, d->what,
                     *d->saved ? " — saved as " : "", d->saved);
    }
    fprintf(stderr, "sanitize: renders: %ld done, %ld refused by the plan (size), %ld with no loader or an unreadable header, %ld failed with a libvips error; slowest input %ld (%.1f s); worker log %s\n",
            state->counts.rendered, state->counts.refused, state->counts.not_image, state->counts.failed,
            state->slowest_input, state->slowest_seconds, log_path);
    printf("sanitize: %ld mutated + %zu corpus inputs, %ld sanitizer reports, %ld child crashes (libvips), %.0f s\n",
           o->mutations, file_count, reports_ours, crashes + timeouts + memory + reports_library, seconds);
    if (crashes + timeouts + memory + reports_library)
        printf("  of the child crashes: %ld signals, %ld timeouts, %ld memory limits, %ld sanitizer reports in libraries\n",
               crashes, timeouts, memory, reports_library);
    fflush(stdout);
    free(deaths);
    return reports_ours ? 1 : 0;
}

static void usage(void) {
    fprintf(stderr, "usage: sanitize_driver [--mutations N] [--seed S] [--cpu S] [--wall S] [--batch K] [--work DIR] "
                    "[--findings DIR] CORPUS_DIR\n"
                    "       sanitize_driver --write-input INDEX FILE [--mutations N] [--seed S] CORPUS_DIR\n");
    exit(2);
}

int main(int argc, char **argv) {
    struct options o = { NULL, 10000, 0x50494E484F4C45ULL /* "PINHOLE" */, 20, 60, 400, NULL, NULL };
    const char *worker_state = NULL, *write_path = NULL;
    long write_index = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--mutations") && more) o.mutations = atol(argv[++i]);
        else if (!strcmp(a, "--seed") && more) o.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--cpu") && more) o.cpu = atof(argv[++i]);
        else if (!strcmp(a, "--wall") && more) o.wall = atof(argv[++i]);
        else if (!strcmp(a, "--batch") && more) o.batch = atol(argv[++i]);
        else if (!strcmp(a, "--work") && more) o.work = argv[++i];
        else if (!strcmp(a, "--findings") && more) o.findings = argv[++i];
        else if (!strcmp(a, "--worker") && more) worker_state = argv[++i];
        else if (!strcmp(a, "--write-input") && i + 2 < argc) { write_index = atol(argv[++i]); write_path = argv[++i]; }
        else if (a[0] == '-') usage();
        else o.corpus = a;
    }
    if (!o.corpus || o.mutations < 0 || o.batch < 1) usage();
    crc_init();
    list_files(o.corpus, "");
    if (file_count == 0) {
        fprintf(stderr, "sanitize: no files in %s\n", o.corpus);
        return 2;
    }
    qsort(files, file_count, sizeof *files, by_path);
    prepare_bases();
    long total = (long) file_count + o.mutations;
    if (worker_state) return run_worker(&o, worker_state, total);
    if (write_path) {
        if (write_index < 0 || write_index >= total) usage();
        struct buffer b = { 0 };
        size_t base = make_input(&o, write_index, &b);
        FILE *out = fopen(write_path, "wb");
        if (!out || fwrite(b.data, 1, b.size, out) != b.size) { perror(write_path); return 2; }
        fclose(out);
        fprintf(stderr, "input %ld: %s%s, %zu bytes → %s\n", write_index, (size_t) write_index < file_count ? "" : "mutated ",
                files[base].path, b.size, write_path);
        free(b.data);
        return 0;
    }
    if (!o.work) o.work = "/tmp/pinhole-sanitize";
    mkdir(o.work, 0755);
    if (o.findings) mkdir(o.findings, 0755);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { perror("readlink"); return 2; }
    self[n] = 0;
    return run_parent(&o, self, total);
}
