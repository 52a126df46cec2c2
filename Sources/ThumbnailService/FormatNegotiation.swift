import Foundation
import Imaging
import Vips

/// Thumbor's AUTO_WEBP / AUTO_AVIF (spec §5.4), with the Accept header read properly: a type counts
/// only when listed with q > 0 (Thumbor's substring test takes `image/webp;q=0` as a yes); `*/*` and
/// `image/*` do not switch formats (every old browser sends them).
public struct FormatNegotiation: Sendable, Equatable {
    public var autoWebP = false
    public var autoAVIF = false

    public init(autoWebP: Bool = false, autoAVIF: Bool = false) {
        self.autoWebP = autoWebP
        self.autoAVIF = autoAVIF
    }

    /// True when Accept can change the answer for this request: the response then carries `Vary: Accept`
    /// and the cache keeps one entry per variant.
    public func applies(to request: ThumborRequestSummary) -> Bool {
        (autoWebP || autoAVIF) && !request.hasFormatFilter && !request.meta
    }

    /// The format Accept asks for, or nil for the default.
    public func format(accept: String?) -> ImageFormat? {
        guard let accept else { return nil }
        let accepted = Self.acceptedTypes(accept)
        if autoWebP && accepted.contains("image/webp") { return .webp }
        if autoAVIF && accepted.contains("image/avif") { return .avif }
        return nil
    }

    /// Media types listed with a quality above zero, lowercased.
    static func acceptedTypes(_ header: String) -> Set<String> {
        var types = Set<String>()
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = parts.first, !type.isEmpty else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                quality = Double(parameter.dropFirst(2)) ?? 0
            }
            if quality > 0 { types.insert(type) }
        }
        return types
    }
}

/// What negotiation needs to know about a request.
public struct ThumborRequestSummary: Sendable {
    public var hasFormatFilter: Bool
    public var meta: Bool
}
