/// The source format a render started from, by its leading bytes: the `format` label of
/// `pinhole_render_duration_seconds`, so an operator sees what EXR or PSD costs next to JPEG.
enum SourceFormat {
    static func label(of bytes: UnsafeRawBufferPointer) -> String {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && zip(prefix.indices, prefix).allSatisfy { bytes[offset + $0] == $1 }
        }
        func ascii(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }
        if starts([0xFF, 0xD8, 0xFF]) { return "jpeg" }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return "png" }
        if ascii("GIF8") { return "gif" }
        if ascii("RIFF"), ascii("WEBP", at: 8) { return "webp" }
        if ascii("II*\u{0}") || ascii("MM\u{0}*") || ascii("II+\u{0}") || ascii("MM\u{0}+") { return "tiff" }
        if starts([0x76, 0x2F, 0x31, 0x01]) { return "exr" }
        if ascii("SDPX") || ascii("XPDS") { return "dpx" }
        if ascii("8BPS") { return "psd" }
        if ascii("#?RADIANCE") || ascii("#?RGBE") { return "hdr" }
        if ascii("%PDF") { return "pdf" }
        if starts([0xFF, 0x0A]) || starts([0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) { return "jxl" }
        if starts([0x1A, 0x45, 0xDF, 0xA3]) { return "video" }
        if ascii("ftyp", at: 4) {
            if ascii("avif", at: 8) || ascii("avis", at: 8) { return "avif" }
            if ascii("heic", at: 8) || ascii("heix", at: 8) || ascii("mif1", at: 8) || ascii("msf1", at: 8) { return "heif" }
            return "video"
        }
        let head = String(decoding: bytes.prefix(512), as: UTF8.self)
        if head.contains("<svg") { return "svg" }
        return "other"
    }
}
