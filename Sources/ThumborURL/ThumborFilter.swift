import Foundation

/// One of Thumbor's 30 built-in filters with its arguments parsed exactly as Thumbor parses them
/// (spec §1.6): a regex built from each parameter's type, matched at the start of the call, empty
/// captures dropped, defaults filling what is left. A call that does not match is skipped, as in Thumbor.
public enum ThumborFilter: Sendable, Equatable, Hashable {
    case quality(Int)
    /// Lowercased; nil when the format is not one Thumbor allows (the filter then resets the choice).
    case format(String?)
    case maxBytes(Int)
    case maxAge(Int)
    case brightness(Int)
    case contrast(Int)
    case saturation(Double)
    case rgb(red: Int, green: Int, blue: Int)
    case colorize(red: Int, green: Int, blue: Int, fill: String)
    case grayscale
    case equalize
    case noise(amount: Int, seed: Int)
    case blur(radius: Int, sigma: Double)
    case sharpen(amount: Double, radius: Double, luminanceOnly: Bool)
    case convolution(matrix: [Double], columns: Int, normalize: Bool)
    case curve(all: [CurvePoint], red: [CurvePoint], green: [CurvePoint], blue: [CurvePoint])
    case rotate(Int)
    case roundCorner(horizontal: Int, vertical: Int, red: Int, green: Int, blue: Int, transparent: Bool)
    case fill(color: String, fillTransparent: Bool)
    case backgroundColor(String)
    case watermark(url: String, x: String, y: String, alpha: Int, widthRatio: String?, heightRatio: String?)
    case frame(url: String)
    case stripEXIF
    case stripICC
    case upscale
    case proportion(Double)
    case noUpscale
    case stretch
    /// `focal(LxT:RxB)`; nil box when the string is not of that form (the filter then does nothing).
    case focal(left: Int, top: Int, right: Int, bottom: Int)
    case extractFocal
    /// thumbor-video-engine's `still(pos)`: the video frame at `pos` (seconds, or `[HH:]MM:SS[.frac]`;
    /// negative counts from the end) instead of the first. Not one of Thumbor's built-in filters.
    case still(String)

    public struct CurvePoint: Sendable, Equatable, Hashable {
        public var x: Int
        public var y: Int
        public init(x: Int, y: Int) { self.x = x; self.y = y }
    }

    /// When Thumbor runs a filter (spec §3): before loading, after loading, or after the transform.
    public enum Phase: Sendable { case preLoad, afterLoad, postTransform }

    public var phase: Phase {
        switch self {
        case .focal, .extractFocal, .stretch, .still: return .preLoad
        case .noUpscale: return .afterLoad
        default: return .postTransform
        }
    }

    public var name: String {
        switch self {
        case .quality: return "quality"
        case .format: return "format"
        case .maxBytes: return "max_bytes"
        case .maxAge: return "max_age"
        case .brightness: return "brightness"
        case .contrast: return "contrast"
        case .saturation: return "saturation"
        case .rgb: return "rgb"
        case .colorize: return "colorize"
        case .grayscale: return "grayscale"
        case .equalize: return "equalize"
        case .noise: return "noise"
        case .blur: return "blur"
        case .sharpen: return "sharpen"
        case .convolution: return "convolution"
        case .curve: return "curve"
        case .rotate: return "rotate"
        case .roundCorner: return "round_corner"
        case .fill: return "fill"
        case .backgroundColor: return "background_color"
        case .watermark: return "watermark"
        case .frame: return "frame"
        case .stripEXIF: return "strip_exif"
        case .stripICC: return "strip_icc"
        case .upscale: return "upscale"
        case .proportion: return "proportion"
        case .noUpscale: return "no_upscale"
        case .stretch: return "stretch"
        case .focal: return "focal"
        case .extractFocal: return "extract_focal"
        case .still: return "still"
        }
    }

    /// Every filter name Pinhole knows: Thumbor's BUILTIN_FILTERS and thumbor-video-engine's `still`.
    public static let builtinNames: [String] = Signature.all.keys.sorted()

    /// Output formats the `format()` filter accepts: Thumbor's, and JPEG XL (`jxl`), which Thumbor
    /// ignores and Pinhole writes.
    public static let allowedFormats: Set<String> = ["png", "jpeg", "jpg", "gif", "webp", "avif", "heic", "heif", "jxl"]

    /// Parses a filters string: unknown names, disabled names and malformed calls are skipped.
    public static func parseList(_ filters: String, enabled: Set<String>? = nil) -> [ThumborFilter] {
        FilterCall.parseList(filters).compactMap { call in
            if let enabled, !enabled.contains(call.name) { return nil }
            return parse(call)
        }
    }

    /// The parameter values Thumbor's filter instance would hold (`BaseFilter.params`), nil when it
    /// would skip the call: for differential tests and `pinhole explain`.
    public static func thumborParams(_ call: FilterCall) -> [FilterValue]? {
        guard let signature = Signature.all[call.name], let arguments = signature.match(call.text) else { return nil }
        return arguments.compactMap { $0 }.map { argument in
            switch argument {
            case let .int(v): return .int(v)
            case let .double(v): return .double(v)
            case let .bool(v): return .bool(v)
            case let .string(v): return .string(v)
            }
        }
    }

    public enum FilterValue: Sendable, Equatable {
        case int(Int), double(Double), bool(Bool), string(String)
    }

    public static func parse(_ call: FilterCall) -> ThumborFilter? {
        guard let signature = Signature.all[call.name], let arguments = signature.match(call.text) else { return nil }
        return signature.build(arguments)
    }
}

// MARK: - Thumbor's argument grammar

/// A parsed argument (Thumbor's `parse` functions: int, float, bool, or the string itself).
enum FilterArgument: Sendable {
    case int(Int), double(Double), bool(Bool), string(String)

    var int: Int? { if case let .int(v) = self { return v }; return nil }
    var double: Double? { if case let .double(v) = self { return v }; return nil }
    var bool: Bool? { if case let .bool(v) = self { return v }; return nil }
    var string: String? { if case let .string(v) = self { return v }; return nil }
}

/// One parameter: its regex and how its text is parsed; `optional` when the Python parameter has a default.
struct FilterParameter: Sendable {
    var regex: String
    var parse: @Sendable (String) -> FilterArgument?
    var optional = false

    func orDefault() -> FilterParameter { var copy = self; copy.optional = true; return copy }

    static let positiveNumber = FilterParameter(regex: #"[\d]+"#) { Int($0).map(FilterArgument.int) }
    static let positiveNonZeroNumber = FilterParameter(regex: #"[\d]*[1-9][\d]*"#) { Int($0).map(FilterArgument.int) }
    static let number = FilterParameter(regex: #"[-]?[\d]+"#) { Int($0).map(FilterArgument.int) }
    static let decimalNumber = FilterParameter(regex: #"[-]?(?:(?:[\d]+\.?[\d]*)|(?:[\d]*\.?[\d]+))"#) {
        Double($0).map(FilterArgument.double)
    }
    static let boolean = FilterParameter(regex: #"[Tt]rue|[Ff]alse|1|0"#) { .bool(["true", "True", "1"].contains($0)) }
    static let string = FilterParameter(regex: #"(?:'.+?')|(?:[^,]+?)"#) { text in
        // STRIP_QUOTE: `^'(.+)'$`
        if text.count >= 3, text.hasPrefix("'"), text.hasSuffix("'") { return .string(String(text.dropFirst().dropLast())) }
        return .string(text)
    }
    static func raw(_ regex: String) -> FilterParameter { FilterParameter(regex: regex) { .string($0) } }
}

/// A filter's name, parameters and constructor; its regex is built as `BaseFilter.compile_regex` builds it.
struct Signature: @unchecked Sendable {   // immutable; NSRegularExpression is thread-safe
    let name: String
    let parameters: [FilterParameter]
    let build: @Sendable ([FilterArgument?]) -> ThumborFilter?
    let regex: NSRegularExpression

    init(_ name: String, _ parameters: [FilterParameter], build: @escaping @Sendable ([FilterArgument?]) -> ThumborFilter?) {
        self.name = name
        self.parameters = parameters
        self.build = build
        var pattern = NSRegularExpression.escapedPattern(for: name) + #"\("#
        for (index, parameter) in parameters.enumerated() {
            pattern += "(?:\(index > 0 ? "," : "")\\s*(\(parameter.regex))\\s*)\(parameter.optional ? "?" : "")"
        }
        pattern += #"\)"#
        regex = try! NSRegularExpression(pattern: pattern)
    }

    /// `re.match` (anchored at the start, not the end). As Thumbor's `zip(parsers, groups)` does, group i
    /// is parsed by parameter i's parser and empty or absent groups are then dropped, so the values that
    /// remain fill the call's positional slots from the left; slots left over take their defaults.
    func match(_ text: String) -> [FilterArgument?]? {
        let range = NSRange(text.startIndex..., in: text)
        guard let match = regex.firstMatch(in: text, options: [.anchored], range: range) else { return nil }
        var arguments: [FilterArgument?] = []
        for (index, parameter) in parameters.enumerated() {
            let groupRange = match.range(at: index + 1)
            guard groupRange.location != NSNotFound, let r = Range(groupRange, in: text), !r.isEmpty else { continue }
            guard let parsed = parameter.parse(String(text[r])) else { return nil }
            arguments.append(parsed)
        }
        while arguments.count < parameters.count { arguments.append(nil) }
        return arguments
    }

    static let all: [String: Signature] = {
        let p = FilterParameter.self
        let list: [Signature] = [
            Signature("quality", [p.positiveNumber]) { a in a[0]?.int.map(ThumborFilter.quality) },
            Signature("format", [p.string]) { a in
                guard let f = a[0]?.string?.lowercased() else { return nil }
                return .format(ThumborFilter.allowedFormats.contains(f) ? f : nil)
            },
            Signature("max_bytes", [p.positiveNumber]) { a in a[0]?.int.map(ThumborFilter.maxBytes) },
            Signature("max_age", [p.positiveNumber]) { a in a[0]?.int.map(ThumborFilter.maxAge) },
            Signature("brightness", [p.number]) { a in a[0]?.int.map(ThumborFilter.brightness) },
            Signature("contrast", [p.number]) { a in a[0]?.int.map(ThumborFilter.contrast) },
            Signature("saturation", [p.decimalNumber]) { a in a[0]?.double.map(ThumborFilter.saturation) },
            Signature("rgb", [p.number, p.number, p.number]) { a in
                guard let r = a[0]?.int, let g = a[1]?.int, let b = a[2]?.int else { return nil }
                return .rgb(red: r, green: g, blue: b)
            },
            Signature("colorize", [p.positiveNumber, p.positiveNumber, p.positiveNumber, p.string]) { a in
                guard let r = a[0]?.int, let g = a[1]?.int, let b = a[2]?.int, let fill = a[3]?.string else { return nil }
                return .colorize(red: r, green: g, blue: b, fill: fill)
            },
            Signature("grayscale", []) { _ in .grayscale },
            Signature("equalize", []) { _ in .equalize },
            Signature("noise", [p.positiveNumber, p.positiveNumber.orDefault()]) { a in
                guard let amount = a[0]?.int else { return nil }
                return .noise(amount: amount, seed: a[1]?.int ?? 0)
            },
            Signature("blur", [p.positiveNonZeroNumber, p.decimalNumber.orDefault()]) { a in
                guard let radius = a[0]?.int else { return nil }
                return .blur(radius: radius, sigma: a[1]?.double ?? 0)
            },
            Signature("sharpen", [p.decimalNumber, p.decimalNumber, p.boolean]) { a in
                guard let amount = a[0]?.double, let radius = a[1]?.double, let lum = a[2]?.bool else { return nil }
                return .sharpen(amount: amount, radius: radius, luminanceOnly: lum)
            },
            Signature("convolution", [p.raw(#"-?\d+(?:\.\d*)?(?:;-?\d+(?:\.\d*)?)*"#), p.positiveNonZeroNumber,
                                      p.boolean.orDefault()]) { a in
                guard let text = a[0]?.string, let columns = a[1]?.int else { return nil }
                let matrix = text.split(separator: ";").compactMap { Double($0) }
                return .convolution(matrix: matrix, columns: columns, normalize: a[2]?.bool ?? true)
            },
            Signature("curve", Array(repeating: p.raw(#"\[(?:\(\d+,\d+\),?)*\]"#), count: 4)) { a in
                let curves = a.map { argument -> [ThumborFilter.CurvePoint] in
                    guard let text = argument?.string else { return [] }
                    let numbers = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
                    return stride(from: 0, to: numbers.count - 1, by: 2).map { ThumborFilter.CurvePoint(x: numbers[$0], y: numbers[$0 + 1]) }
                }
                guard a.allSatisfy({ $0 != nil }) else { return nil }
                return .curve(all: curves[0], red: curves[1], green: curves[2], blue: curves[3])
            },
            Signature("rotate", [p.number]) { a in a[0]?.int.map(ThumborFilter.rotate) },
            Signature("round_corner", [p.raw(#"[\d]+(?:\|[\d]+)?"#), p.positiveNumber, p.positiveNumber, p.positiveNumber,
                                       p.boolean.orDefault()]) { a in
                guard let radius = a[0]?.string, let r = a[1]?.int, let g = a[2]?.int, let b = a[3]?.int else { return nil }
                let parts = radius.split(separator: "|").compactMap { Int($0) }
                guard let first = parts.first else { return nil }
                return .roundCorner(horizontal: first, vertical: parts.count > 1 ? parts[1] : first, red: r, green: g, blue: b,
                                    transparent: a[4]?.bool ?? false)
            },
            Signature("fill", [p.raw(#"[\w]+"#), p.boolean.orDefault()]) { a in
                guard let color = a[0]?.string else { return nil }
                return .fill(color: color, fillTransparent: a[1]?.bool ?? false)
            },
            Signature("background_color", [p.raw(#"[\w]+"#)]) { a in a[0]?.string.map(ThumborFilter.backgroundColor) },
            Signature("watermark", [p.string, p.raw(#"(?:-?\d+p?)|center|repeat"#), p.raw(#"(?:-?\d+p?)|center|repeat"#),
                                    p.positiveNumber, p.raw(#"(?:-?\d+)|none"#).orDefault(), p.raw(#"(?:-?\d+)|none"#).orDefault()]) { a in
                guard let url = a[0]?.string, let x = a[1]?.string, let y = a[2]?.string, let alpha = a[3]?.int else { return nil }
                return .watermark(url: url, x: x, y: y, alpha: alpha, widthRatio: a[4]?.string, heightRatio: a[5]?.string)
            },
            Signature("frame", [p.string]) { a in a[0]?.string.map { ThumborFilter.frame(url: $0) } },
            Signature("strip_exif", []) { _ in .stripEXIF },
            Signature("strip_icc", []) { _ in .stripICC },
            Signature("upscale", []) { _ in .upscale },
            Signature("proportion", [p.decimalNumber]) { a in a[0]?.double.map(ThumborFilter.proportion) },
            Signature("no_upscale", []) { _ in .noUpscale },
            Signature("stretch", []) { _ in .stretch },
            Signature("focal", [p.string]) { a in
                // focal_regex: (\d+)x(\d+):(\d+)x(\d+), matched at the start; a zero-area box adds no point.
                guard let text = a[0]?.string,
                      let m = try? NSRegularExpression(pattern: #"(\d+)x(\d+):(\d+)x(\d+)"#)
                        .firstMatch(in: text, options: [.anchored], range: NSRange(text.startIndex..., in: text)) else { return nil }
                // Cut by UTF-16 offsets: a capture can end inside a Character (`4` before a combining mark),
                // where Range(_:in:) is nil.
                let utf16 = text.utf16
                let v = (1...4).map { group -> Int in
                    let r = m.range(at: group)
                    let start = utf16.index(utf16.startIndex, offsetBy: r.location)
                    return String(utf16[start..<utf16.index(start, offsetBy: r.length)]).flatMap { Int($0) } ?? 0
                }
                return .focal(left: v[0], top: v[1], right: v[2], bottom: v[3])
            },
            Signature("extract_focal", []) { _ in .extractFocal },
            Signature("still", [p.raw(#"-?(?:(?:\d\d:)?\d\d:\d\d(?:\.\d+?)?|\d+(?:\.\d+?)?)"#)]) { a in
                a[0]?.string.map(ThumborFilter.still)
            },
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }()
}
