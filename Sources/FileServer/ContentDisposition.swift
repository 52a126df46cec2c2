/// `Content-Disposition`: the file name an upload carries, and the header a download answers with.
enum ContentDisposition {
    /// The `filename` (or RFC 5987 `filename*`) parameter of an upload's header.
    static func fileName(from header: String) -> String? {
        var plain: String?
        for part in header.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
            guard pair.count == 2 else { continue }
            let name = pair[0].lowercased()
            var value = pair[1]
            if name == "filename*" {
                // charset'lang'percent-encoded
                let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if pieces.count == 3 { return QueryParameters.formDecode(Substring(String(pieces[2]).replacingPlus())) }
            } else if name == "filename" {
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                plain = value.replacingOccurrences(of: "\\\"", with: "\"")
            }
        }
        return plain.map { ($0 as String).split(separator: "/").last.map(String.init) ?? $0 }
    }

    /// `inline` for what browsers display (images, video), `attachment` otherwise, with the original name.
    static func header(fileName: String?, contentType: String) -> String {
        let type = contentType.lowercased()
        let disposition = type.hasPrefix("image/") || type.hasPrefix("video/") ? "inline" : "attachment"
        guard let fileName, !fileName.isEmpty else { return disposition }
        let asciiSafe = fileName.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }
        if asciiSafe { return "\(disposition); filename=\"\(fileName)\"" }
        let fallback = String(fileName.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        let encoded = fileName.utf8.map { byte -> String in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                return String(UnicodeScalar(byte))
            default:
                return String(format: "%%%02X", byte)
            }
        }.joined()
        return "\(disposition); filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

extension String {
    fileprivate func replacingPlus() -> String { replacingOccurrences(of: "+", with: "%2B") }
}
