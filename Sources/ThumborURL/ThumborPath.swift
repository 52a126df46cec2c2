/// Thumbor's imaging-route grammar (libthumbor `Url.regex()` + tornado's `$`), applied to the raw,
/// still percent-encoded request path. Being the same backtracking regex, a token that does not fit
/// its slot becomes the start of the image part, exactly as in Thumbor.
public enum ThumborPath {
    public static let pattern =
        #"/?(?:(?:(?<unsafe>unsafe)|(?<hash>.+?))/)?(?:(?<debug>debug)/)?(?:(?<meta>meta)/)?"# +
        #"(?:(?<trim>trim(?::(?:top-left|bottom-right))?(?::\d+)?)/)?"# +
        #"(?:(?<cropLeft>\d+)x(?<cropTop>\d+):(?<cropRight>\d+)x(?<cropBottom>\d+)/)?"# +
        #"(?:(?<adaptive>adaptive-)?(?<full>full-)?(?<fitIn>fit-in)/)?"# +
        #"(?:(?<horizontalFlip>-)?(?<width>(?:\d+|orig))?x(?<verticalFlip>-)?(?<height>(?:\d+|orig))?/)?"# +
        #"(?:(?<halign>left|right|center)/)?(?:(?<valign>top|bottom|middle)/)?(?:(?<smart>smart)/)?"# +
        #"(?:filters:(?<filters>.+?\))/)?(?<image>.+)"#

    public enum ParseError: Error, Equatable, Sendable {
        /// A segment is not valid UTF-8 once percent-decoded (Thumbor: 400).
        case invalidUTF8(segment: String)
        /// Nothing matched (only the empty path `/`).
        case noImage
    }

    nonisolated(unsafe) private static let regex: Regex<AnyRegexOutput> = {
        // Unicode-scalar semantics, like Python's `re` on str: a combining mark never joins a `/`.
        try! Regex(pattern).matchingSemantics(.unicodeScalar)
    }()

    /// Parses the path part of a request target (everything before `?`; pass it undecoded).
    public static func parse(_ rawPath: some StringProtocol) throws(ParseError) -> ThumborRequest {
        let path = String(rawPath)
        // `.` matches no line separator and nothing else in the pattern does, so such a path cannot match;
        // the backtracking regex would first try every way to split it (seconds of CPU for 2 KB, growing
        // with the cube of the length). They arrive percent-decoded through extract_focal's nested URL.
        guard !path.unicodeScalars.contains(where: { "\n\r\u{0B}\u{0C}\u{85}\u{2028}\u{2029}".unicodeScalars.contains($0) }) else {
            throw .noImage
        }
        guard let match = path.wholeMatch(of: regex) else { throw .noImage }
        func raw(_ name: String) -> Substring? {
            match.output[name]?.substring
        }
        func decoded(_ name: String) throws(ParseError) -> String? {
            guard let value = raw(name) else { return nil }
            guard let text = PercentEncoding.decode(value) else { throw .invalidUTF8(segment: name) }
            return text
        }
        var request = ThumborRequest()
        request.unsafe = raw("unsafe") != nil
        request.hash = try decoded("hash")
        request.debug = raw("debug") != nil
        request.meta = raw("meta") != nil
        request.trim = try decoded("trim")
        request.crop = CropBox(
            left: DecimalDigits.saturatingInt(raw("cropLeft") ?? "") ?? 0,
            top: DecimalDigits.saturatingInt(raw("cropTop") ?? "") ?? 0,
            right: DecimalDigits.saturatingInt(raw("cropRight") ?? "") ?? 0,
            bottom: DecimalDigits.saturatingInt(raw("cropBottom") ?? "") ?? 0)
        request.adaptive = raw("adaptive") != nil
        request.full = raw("full") != nil
        request.fitIn = raw("fitIn") != nil
        request.horizontalFlip = raw("horizontalFlip") != nil
        request.verticalFlip = raw("verticalFlip") != nil
        request.width = dimension(raw("width"))
        request.height = dimension(raw("height"))
        if let halign = raw("halign") { request.halign = HorizontalAlignment(rawValue: String(halign)) ?? .center }
        if let valign = raw("valign") { request.valign = VerticalAlignment(rawValue: String(valign)) ?? .middle }
        request.smart = raw("smart") != nil
        request.filters = try decoded("filters")
        request.image = try decoded("image") ?? ""
        return request
    }

    private static func dimension(_ text: Substring?) -> Dimension {
        guard let text else { return .pixels(0) }
        if text == "orig" { return .orig }
        return .pixels(DecimalDigits.saturatingInt(text) ?? 0)
    }

    /// The string a signature covers: the raw path after `/<hash>/` (or `/<quote(hash)>/`), as Thumbor strips it.
    /// When neither prefix is present the whole path is returned, which then fails verification as in Thumbor.
    public static func signedPortion(ofRawPath path: String, hash: String) -> String {
        // Compared and cut as UTF-8, not as Characters: a combining mark right after the `/` would
        // otherwise join it into one Character, and a correctly signed path would not verify.
        for prefix in ["/\(hash)/", "/\(PercentEncoding.quote(hash))/"] where path.utf8.starts(with: prefix.utf8) {
            return String(Substring(path.utf8.dropFirst(prefix.utf8.count)))
        }
        return path
    }
}
