/// What decoding a source will hold in memory beyond the streaming pipeline, read from its header
/// without decoding. Only progressive JPEG needs a large buffer: libjpeg keeps every DCT coefficient
/// of the whole image (2 bytes each, per component at its sampled size) until the last scan, whatever
/// the output scale — 88 MB for a 14.7 MP 4:4:4 photo. At 1/8 (`scaleEighths` 1) a 4:4:4 or grey
/// YCbCr file goes to Pinhole's DC-only decoder instead, which keeps one value per block (1.4 MB for
/// that photo). Everything else streams (0).
public enum DecodeMemory {
    public static func estimate(_ bytes: UnsafeRawBufferPointer, scaleEighths: Int = 8) -> Int {
        guard bytes.count > 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return 0 }
        var offset = 2
        var storedAsRGB = false   // Adobe APP14 with transform 0: not YCbCr, so not the DC-only decoder
        while offset + 4 <= bytes.count {
            guard bytes[offset] == 0xFF else { return 0 }
            let marker = bytes[offset + 1]
            if marker == 0xFF { offset += 1; continue }   // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length >= 2 else { return 0 }
            let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isFrame {
                let progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE
                guard progressive, offset + 10 <= bytes.count else { return 0 }
                let height = Int(bytes[offset + 5]) << 8 | Int(bytes[offset + 6])
                let width = Int(bytes[offset + 7]) << 8 | Int(bytes[offset + 8])
                let count = Int(bytes[offset + 9])
                guard offset + 10 + 3 * count <= bytes.count, count > 0 else { return 0 }
                let sampling = (0..<count).map { i -> (Int, Int) in
                    let factors = bytes[offset + 11 + 3 * i]
                    return (max(1, Int(factors >> 4)), max(1, Int(factors & 0x0F)))
                }
                let maxH = sampling.map(\.0).max()!, maxV = sampling.map(\.1).max()!
                let ids = (0..<count).map { bytes[offset + 10 + 3 * $0] }
                let dcOnly = scaleEighths == 1 && marker == 0xC2 && (count == 1 || count == 3) && maxH == 1 && maxV == 1
                    && !storedAsRGB && ids != [UInt8(ascii: "R"), UInt8(ascii: "G"), UInt8(ascii: "B")]
                if dcOnly { return (width + 7) / 8 * ((height + 7) / 8) * count * 2 }
                // Blocks per component, rounded up to whole 8×8 blocks of its sampled size; 64 × 2 bytes each.
                return sampling.reduce(0) { total, factor in
                    let columns = (width * factor.0 + maxH * 8 - 1) / (maxH * 8)
                    let rows = (height * factor.1 + maxV * 8 - 1) / (maxV * 8)
                    return total + columns * rows * 128
                }
            }
            if marker == 0xDA || marker == 0xD9 { return 0 }   // scan data before a frame header: not a JPEG we know
            if marker == 0xEE, length >= 14, offset + 15 < bytes.count,
               bytes[offset + 4] == UInt8(ascii: "A"), bytes[offset + 5] == UInt8(ascii: "d") {
                storedAsRGB = bytes[offset + 15] == 0
            }
            offset += 2 + length
        }
        return 0
    }
}
