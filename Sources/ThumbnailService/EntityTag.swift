import Crypto
import Foundation
import NIOCore
import ServiceSupport

/// Thumbor's (tornado's) ETag: the quoted SHA-1 hex of the body, matched weakly against If-None-Match.
enum EntityTag {
    static func of(_ body: ByteBuffer) -> String {
        body.withUnsafeReadableBytes { "\"" + Hex.encode(Insecure.SHA1.hash(data: $0)) + "\"" }
    }

    /// Weak comparison (`W/` ignored); `*` matches anything.
    static func matches(ifNoneMatch header: String, etag: String) -> Bool {
        let strip: (Substring) -> Substring = { tag in
            let trimmed = tag.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed()
            let text = Substring(String(trimmed))
            return text.hasPrefix("W/") ? text.dropFirst(2) : text
        }
        let wanted = strip(Substring(etag))
        return header.split(separator: ",").contains { candidate in
            let tag = strip(candidate)
            return tag == "*" || tag == wanted
        }
    }
}
