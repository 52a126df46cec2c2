/// A requested width or height: a pixel count (0 = unspecified) or `orig` (the source's size).
public enum Dimension: Sendable, Equatable, Hashable, CustomStringConvertible {
    case pixels(Int)
    case orig

    public var pixels: Int? { if case let .pixels(n) = self { return n } else { return nil } }
    /// Python truthiness: `0` is false, `orig` is true.
    public var isSet: Bool { self != .pixels(0) }
    public var description: String { if case let .pixels(n) = self { return String(n) } else { return "orig" } }
}

public enum HorizontalAlignment: String, Sendable, Codable, CaseIterable { case left, center, right }
public enum VerticalAlignment: String, Sendable, Codable, CaseIterable { case top, middle, bottom }

/// Manual crop box `left x top : right x bottom` in source pixels.
public struct CropBox: Sendable, Equatable, Hashable, Codable {
    public var left: Int, top: Int, right: Int, bottom: Int
    public init(left: Int = 0, top: Int = 0, right: Int = 0, bottom: Int = 0) {
        self.left = left; self.top = top; self.right = right; self.bottom = bottom
    }
    /// Thumbor's `should_crop`: any coordinate above zero.
    public var isSet: Bool { left > 0 || top > 0 || right > 0 || bottom > 0 }
}

/// Thumbor's trim option: reference corner and colour tolerance.
public struct TrimOption: Sendable, Equatable, Hashable {
    public enum Corner: Sendable, Equatable, Hashable { case topLeft, bottomRight }
    /// The raw text after `trim:` (Thumbor's `trim_pos`), e.g. `top-left`, `bottom-right`, or a number (`trim:10`).
    public var position: String
    public var tolerance: Int
    /// Thumbor compares only with `top-left`: anything else (including `trim:10`) means bottom-right.
    public var corner: Corner { position == "top-left" ? .topLeft : .bottomRight }
}

/// One parsed Thumbor URL: the fields of Thumbor's `RequestParameters`, after percent-decoding.
public struct ThumborRequest: Sendable, Equatable, Hashable {
    public var unsafe = false
    /// The signature segment (decoded), when the URL is signed.
    public var hash: String?
    public var debug = false
    public var meta = false
    /// The raw trim segment (`trim`, `trim:bottom-right:10`, …).
    public var trim: String?
    public var crop = CropBox()
    public var fitIn = false
    public var full = false
    public var adaptive = false
    public var width: Dimension = .pixels(0)
    public var height: Dimension = .pixels(0)
    public var horizontalFlip = false
    public var verticalFlip = false
    public var halign: HorizontalAlignment = .center
    public var valign: VerticalAlignment = .middle
    public var smart = false
    /// The decoded filters string (without `filters:`), nil when absent.
    public var filters: String?
    /// The image part as decoded once from the URL.
    public var image: String = ""

    public init() {}

    /// Thumbor's `image_url`: the image part re-quoted with Python's `quote(…, safe="/")`.
    /// It is the loader key and the URL reported by `/meta`.
    public var imageURL: String { PercentEncoding.quote(image) }

    public var trimOption: TrimOption? {
        guard let trim else { return nil }
        let parts = trim.split(separator: ":", omittingEmptySubsequences: false)
        let position = parts.count > 1 ? String(parts[1]) : "top-left"
        let tolerance = parts.count > 2 ? DecimalDigits.saturatingInt(parts[2]) ?? 0 : 0
        return TrimOption(position: position, tolerance: tolerance)
    }

    /// The parsed filter calls, in URL order.
    public var filterCalls: [FilterCall] { filters.map(FilterCall.parseList) ?? [] }
}

enum DecimalDigits {
    /// Parses a run of decimal digits (any script Python's `int()` accepts), saturating at `Int.max`.
    static func saturatingInt(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for character in text {
            guard let digit = character.wholeNumberValue, (0...9).contains(digit) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return Int.max }
            value = sum
        }
        return value
    }
}
