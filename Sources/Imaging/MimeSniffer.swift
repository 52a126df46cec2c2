/// Thumbor's `BaseEngine.get_mimetype`: the Content-Type of encoded bytes, from their magic numbers.
public enum MimeSniffer {
    public static func mimeType(of bytes: some Collection<UInt8>) -> String? {
        let head = Array(bytes.prefix(2048))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<offset + magic.count]) == magic
        }
        if starts(Array("GIF8".utf8)) { return "image/gif" }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if starts([0xFF, 0xD8]) { return "image/jpeg" }
        if starts(Array("WEBP".utf8), at: 8) { return "image/webp" }
        if starts([0, 0, 0, 0x0C]) { return "image/jp2" }
        if starts(Array("ftypavif".utf8), at: 4) || starts(Array("ftypavis".utf8), at: 4) { return "image/avif" }
        if starts(Array("ftyp".utf8), at: 4) {
            for brand in ["heic", "heix", "heim", "heis", "mif1"] where starts(Array(brand.utf8), at: 8) { return "image/heif" }
        }
        if starts([0xFF, 0x0A]) || starts([0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) { return "image/jxl" }
        if starts(Array("II*\0".utf8)) || starts(Array("MM\0*".utf8)) { return "image/tiff" }
        return nil
    }
}
