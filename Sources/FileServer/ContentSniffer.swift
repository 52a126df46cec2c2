/// The Content-Type of an upload: as declared, or sniffed from its first bytes when it came without
/// one (or as the meaningless `application/octet-stream`).
enum ContentSniffer {
    static func contentType(declared: String?, head: [UInt8], fileName: String?) -> String {
        if let declared, !declared.isEmpty, declared.lowercased() != "application/octet-stream" { return declared }
        return sniff(head) ?? "application/octet-stream"
    }

    static func sniff(_ head: [UInt8]) -> String? {
        func at(_ offset: Int, _ magic: [UInt8]) -> Bool {
            head.count >= offset + magic.count && Array(head[offset..<offset + magic.count]) == magic
        }
        func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }
        if at(0, [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if at(0, [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if at(0, ascii("GIF8")) { return "image/gif" }
        if at(0, ascii("RIFF")) && at(8, ascii("WEBP")) { return "image/webp" }
        if at(4, ascii("ftypavif")) || at(4, ascii("ftypavis")) { return "image/avif" }
        if at(4, ascii("ftypheic")) || at(4, ascii("ftypmif1")) { return "image/heic" }
        if at(4, ascii("ftypqt")) { return "video/quicktime" }
        if at(4, ascii("ftyp")) { return "video/mp4" }
        // QuickTime from before `ftyp`: the first atom is the movie, its data, or padding.
        if ["moov", "mdat", "wide", "free", "skip"].contains(where: { at(4, ascii($0)) }) { return "video/quicktime" }
        if at(0, [0x1A, 0x45, 0xDF, 0xA3]) { return "video/webm" }
        if at(0, ascii("RIFF")) && at(8, ascii("AVI ")) { return "video/x-msvideo" }
        // MXF: a SMPTE universal label opening the header partition pack.
        if at(0, [0x06, 0x0E, 0x2B, 0x34, 0x02, 0x05, 0x01, 0x01]) { return "application/mxf" }
        if at(0, ascii("%PDF")) { return "application/pdf" }
        if at(0, ascii("II*\0")) || at(0, ascii("MM\0*")) { return "image/tiff" }
        if at(0, [0x76, 0x2F, 0x31, 0x01]) { return "image/x-exr" }
        if at(0, ascii("SDPX")) || at(0, ascii("XPDS")) { return "image/x-dpx" }
        if at(0, ascii("8BPS")) { return "image/vnd.adobe.photoshop" }
        if at(0, [0xFF, 0x0A]) || at(4, ascii("JXL ")) { return "image/jxl" }
        if let text = String(bytes: head.prefix(512), encoding: .utf8), text.contains("<svg") { return "image/svg+xml" }
        return nil
    }
}
