/* A progressive JPEG's 1/8-scale pixels from its DC scans alone, without libjpeg's whole-image
   coefficient buffer (88 MB for a 14.7 MP 4:4:4 photo, though only one coefficient in 64 is read).
   At 1/8 each 8×8 block becomes one pixel, its DC term dequantised and descaled (libjpeg's 1×1 IDCT),
   so once every component's DC is complete the rest of the file cannot change the output. This
   decodes only those scans, keeps one DC value per block, and reproduces libjpeg's arithmetic: the
   1×1 IDCT with its range-limit table, and the YCbCr → RGB tables of jdcolor.c. Only files whose
   components all have 1×1 sampling (4:4:4 or grey) qualify: subsampled chroma is scaled up through a
   2×2 IDCT, which reads AC terms. The caller checks the colour space with libjpeg's header reader. */
#include <stdint.h>
#include <string.h>
#include "cvips_shim.h"

enum { MAX_COMPONENTS = 4 };

struct dc_huffman {
    int defined;
    uint8_t values[256];
    int32_t max_code[18];   /* largest code of each length, -1 when none */
    int32_t value_offset[17];
};

struct dc_state {
    const uint8_t *data, *end;
    uint32_t bits;
    int bit_count;
    int marker_reached;   /* a marker ended the entropy-coded segment */
    struct dc_huffman tables[4];
    int quant_dc[4];
    int quant_defined[4];
    int width, height, components, blocks_wide, blocks_high, restart_interval;
    /* quant_dc: the DC quantiser latched at the component's first scan, as libjpeg's latch_quant_tables
       does (a later DQT may redefine the slot for another component). */
    struct { int id, quant, quant_dc, latched, complete; int16_t *dc; } comp[MAX_COMPONENTS];
};

static int fail(const char *message) {
    vips_error("jpeg", "%s", message);
    return -1;
}

static int read_u16(const uint8_t *p) { return p[0] << 8 | p[1]; }

static int define_huffman(struct dc_state *s, const uint8_t *p, int length) {
    while (length > 0) {
        if (length < 17) return fail("bad Huffman table");
        int class = p[0] >> 4, index = p[0] & 15, total = 0;
        if (index > 3) return fail("bad Huffman table");
        for (int i = 1; i <= 16; i++) total += p[i];
        if (total > 256 || 17 + total > length) return fail("bad Huffman table");
        if (class == 0) {
            struct dc_huffman *table = &s->tables[index];
            memcpy(table->values, p + 17, total);
            int32_t code = 0, k = 0;
            for (int bits = 1; bits <= 16; bits++) {
                int count = p[bits];
                table->value_offset[bits] = k - code;
                if (count) {
                    code += count;
                    k += count;
                    table->max_code[bits] = code - 1;
                } else {
                    table->max_code[bits] = -1;
                }
                code <<= 1;
            }
            table->max_code[17] = INT32_MAX;
            table->defined = 1;
        }
        p += 17 + total;
        length -= 17 + total;
    }
    return 0;
}

static int define_quantisation(struct dc_state *s, const uint8_t *p, int length) {
    while (length > 0) {
        int precision = p[0] >> 4, index = p[0] & 15, size = precision ? 129 : 65;
        if (index > 3 || length < size) return fail("bad quantisation table");
        s->quant_dc[index] = precision ? read_u16(p + 1) : p[1];
        s->quant_defined[index] = 1;
        p += size;
        length -= size;
    }
    return 0;
}

/* Entropy-coded bits; a marker ends the segment and then reads as zero bits, as libjpeg does (which
   also warns: callers treat running out of data before the last block as corrupt). */
static int next_bit(struct dc_state *s) {
    if (s->bit_count == 0) {
        uint8_t byte = 0;
        if (!s->marker_reached && s->data < s->end) {
            byte = *s->data;
            if (byte == 0xFF) {
                if (s->data + 1 < s->end && s->data[1] == 0x00) {
                    s->data += 2;
                } else {
                    s->marker_reached = 1;
                    byte = 0;
                }
            } else {
                s->data++;
            }
        } else {
            s->marker_reached = 1;
        }
        s->bits = byte;
        s->bit_count = 8;
    }
    s->bit_count--;
    return (s->bits >> s->bit_count) & 1;
}

static int receive(struct dc_state *s, int count) {
    int value = 0;
    for (int i = 0; i < count; i++) value = value << 1 | next_bit(s);
    return value;
}

static int decode_symbol(struct dc_state *s, const struct dc_huffman *table) {
    int32_t code = next_bit(s);
    int length = 1;
    while (code > table->max_code[length]) {
        code = code << 1 | next_bit(s);
        if (++length > 16) return -1;
    }
    return table->values[(code + table->value_offset[length]) & 255];
}

/* After each restart interval: drop the partial byte and step over the RSTn marker. */
static int restart(struct dc_state *s, int32_t *predictors) {
    s->bit_count = 0;
    s->marker_reached = 0;
    while (s->data + 1 < s->end && !(s->data[0] == 0xFF && s->data[1] >= 0xD0 && s->data[1] <= 0xD7)) {
        if (s->data[0] == 0xFF && s->data[1] != 0x00 && s->data[1] != 0xFF) return fail("restart marker missing");
        s->data++;
    }
    if (s->data + 1 >= s->end) return fail("premature end of JPEG file");
    s->data += 2;
    for (int c = 0; c < MAX_COMPONENTS; c++) predictors[c] = 0;
    return 0;
}

static int decode_dc_scan(struct dc_state *s, const int *members, int count, const int *table_of, int high, int low) {
    int32_t predictors[MAX_COMPONENTS] = {0};
    long blocks = (long) s->blocks_wide * s->blocks_high;
    s->bit_count = 0;
    s->marker_reached = 0;
    for (long b = 0; b < blocks; b++) {
        if (s->restart_interval && b > 0 && b % s->restart_interval == 0 && restart(s, predictors)) return -1;
        for (int m = 0; m < count; m++) {
            int c = members[m];
            int16_t *dc = &s->comp[c].dc[b];
            if (high == 0) {
                int size = decode_symbol(s, &s->tables[table_of[m]]);
                if (size < 0 || size > 15) return fail("corrupt JPEG data: bad Huffman code");
                int diff = 0;
                if (size) {
                    diff = receive(s, size);
                    if (diff < (1 << (size - 1))) diff -= (1 << size) - 1;   /* EXTEND */
                }
                /* Wrapping arithmetic, as libjpeg's LEFT_SHIFT into a 16-bit coefficient: corrupt data
                   cannot overflow a signed integer here. */
                predictors[c] = (int32_t) ((uint32_t) predictors[c] + (uint32_t) diff);
                *dc = (int16_t) (uint16_t) ((uint32_t) predictors[c] << low);
            } else if (next_bit(s)) {
                *dc |= (int16_t) (1 << low);
            }
        }
        if (s->marker_reached && b + 1 < blocks) return fail("corrupt JPEG data: premature end of data segment");
    }
    /* On to the next marker. */
    while (s->data + 1 < s->end && !(s->data[0] == 0xFF && s->data[1] != 0x00 && (s->data[1] < 0xD0 || s->data[1] > 0xD7)))
        s->data++;
    return 0;
}

/* libjpeg's 1×1 IDCT output: DESCALE(dc × q, 3) through its post-IDCT range-limit table. */
static inline uint8_t idct_1x1(int dc, int quant) {
    int value = (dc * quant + 4) >> 3;
    int index = value & 1023;
    return index < 128 ? (uint8_t) (index + 128) : index < 512 ? 255 : index < 896 ? 0 : (uint8_t) (index - 896);
}

static inline uint8_t clamp8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t) v; }

VipsImage *cvips_progressive_dc_decode(const void *buf, size_t len) {
    struct dc_state s;
    memset(&s, 0, sizeof s);
    const uint8_t *p = buf, *end = p + len;
    VipsImage *image = NULL;
    uint8_t *pixels = NULL;
    int frame_seen = 0;
    if (len < 4 || p[0] != 0xFF || p[1] != 0xD8) { fail("not a JPEG file"); goto done; }
    p += 2;
    for (;;) {
        int complete = frame_seen;
        for (int c = 0; c < s.components; c++) complete &= s.comp[c].complete;
        if (complete) break;
        while (p < end && *p != 0xFF) p++;
        while (p < end && *p == 0xFF) p++;
        if (p >= end) { fail("premature end of JPEG file"); goto done; }
        int marker = *p++;
        if (marker == 0xD9) { fail("premature end of JPEG file: DC incomplete"); goto done; }
        if (marker >= 0xD0 && marker <= 0xD7) continue;
        if (end - p < 2) { fail("premature end of JPEG file"); goto done; }
        int length = read_u16(p);
        if (length < 2 || length > end - p) { fail("bad marker length"); goto done; }
        const uint8_t *body = p + 2;
        p += length;
        length -= 2;
        switch (marker) {
        case 0xC4:
            if (define_huffman(&s, body, length)) goto done;
            break;
        case 0xDB:
            if (define_quantisation(&s, body, length)) goto done;
            break;
        case 0xDD:
            if (length < 2) { fail("bad restart interval"); goto done; }
            s.restart_interval = read_u16(body);
            break;
        case 0xC2: {
            if (frame_seen || length < 6 || body[0] != 8) { fail("unsupported progressive frame"); goto done; }
            s.height = read_u16(body + 1);
            s.width = read_u16(body + 3);
            s.components = body[5];
            if (s.width < 1 || s.height < 1 || (s.components != 1 && s.components != 3) || length < 6 + 3 * s.components) {
                fail("unsupported progressive frame");
                goto done;
            }
            s.blocks_wide = (s.width + 7) / 8;
            s.blocks_high = (s.height + 7) / 8;
            for (int c = 0; c < s.components; c++) {
                const uint8_t *f = body + 6 + 3 * c;
                if (f[1] != 0x11 || f[2] > 3) { fail("subsampled components need the full decoder"); goto done; }
                s.comp[c].id = f[0];
                s.comp[c].quant = f[2];
                s.comp[c].dc = g_try_malloc0(sizeof(int16_t) * s.blocks_wide * s.blocks_high);
                if (!s.comp[c].dc) { fail("out of memory"); goto done; }
            }
            frame_seen = 1;
            break;
        }
        case 0xDA: {
            if (!frame_seen || length < 1) { fail("scan before frame"); goto done; }
            int count = body[0];
            if (count < 1 || count > s.components || length < 4 + 2 * count) { fail("bad scan header"); goto done; }
            int members[MAX_COMPONENTS], tables[MAX_COMPONENTS];
            for (int i = 0; i < count; i++) {
                members[i] = -1;
                for (int c = 0; c < s.components; c++)
                    if (s.comp[c].id == body[1 + 2 * i]) members[i] = c;
                tables[i] = body[2 + 2 * i] >> 4;
                if (members[i] < 0 || tables[i] > 3) { fail("bad scan header"); goto done; }
            }
            int start = body[1 + 2 * count], high = body[3 + 2 * count] >> 4, low = body[3 + 2 * count] & 15;
            for (int i = 0; i < count; i++) {
                int c = members[i];
                if (s.comp[c].latched) continue;
                if (!s.quant_defined[s.comp[c].quant]) { fail("scan uses an undefined table"); goto done; }
                s.comp[c].quant_dc = s.quant_dc[s.comp[c].quant];
                s.comp[c].latched = 1;
            }
            s.data = p;
            s.end = end;
            if (start == 0) {
                for (int i = 0; i < count; i++) {
                    if (high == 0 && !s.tables[tables[i]].defined) {
                        fail("scan uses an undefined table");
                        goto done;
                    }
                }
                if (decode_dc_scan(&s, members, count, tables, high, low)) goto done;
                if (low == 0)
                    for (int i = 0; i < count; i++) s.comp[members[i]].complete = 1;
            } else {
                /* An AC scan: step over its entropy-coded data. */
                while (s.data + 1 < end && !(s.data[0] == 0xFF && s.data[1] != 0x00 && (s.data[1] < 0xD0 || s.data[1] > 0xD7)))
                    s.data++;
            }
            p = s.data;
            break;
        }
        default:
            if ((marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) || marker == 0xDC) {
                fail("not a progressive Huffman JPEG");
                goto done;
            }
            break;   /* APPn, COM, DNL and the rest: skipped */
        }
    }

    int width = s.blocks_wide, height = s.blocks_high, bands = s.components;
    pixels = g_try_malloc((size_t) width * height * bands);
    if (!pixels) { fail("out of memory"); goto done; }
    long blocks = (long) width * height;
    int qy = s.comp[0].quant_dc;
    if (bands == 1) {
        for (long b = 0; b < blocks; b++) pixels[b] = idct_1x1(s.comp[0].dc[b], qy);
    } else {
        /* jdcolor.c's tables: 16-bit fixed point, rounded, Cb and Cr centred on 128. */
        int qcb = s.comp[1].quant_dc, qcr = s.comp[2].quant_dc;
        const int32_t one_half = 1 << 15;
        const int32_t cr_r = (int32_t) (1.40200 * 65536 + 0.5), cb_b = (int32_t) (1.77200 * 65536 + 0.5);
        const int32_t cr_g = (int32_t) (0.71414 * 65536 + 0.5), cb_g = (int32_t) (0.34414 * 65536 + 0.5);
        for (long b = 0; b < blocks; b++) {
            int y = idct_1x1(s.comp[0].dc[b], qy);
            int cb = idct_1x1(s.comp[1].dc[b], qcb) - 128, cr = idct_1x1(s.comp[2].dc[b], qcr) - 128;
            uint8_t *out = pixels + 3 * b;
            out[0] = clamp8(y + ((cr_r * cr + one_half) >> 16));
            out[1] = clamp8(y + ((-cb_g * cb - cr_g * cr + one_half) >> 16));
            out[2] = clamp8(y + ((cb_b * cb + one_half) >> 16));
        }
    }
    image = vips_image_new_from_memory_copy(pixels, (size_t) width * height * bands, width, height, bands, VIPS_FORMAT_UCHAR);
    if (image) image->Type = bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
done:
    g_free(pixels);
    for (int c = 0; c < MAX_COMPONENTS; c++) g_free(s.comp[c].dc);
    return image;
}
