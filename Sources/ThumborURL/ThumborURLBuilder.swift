/// Builds signed Thumbor URLs byte-for-byte as libthumbor's `CryptoURL(key).generate(**options)` does.
public struct ThumborURLBuilder: Sendable {
    /// libthumbor's keyword options.
    public struct Options: Sendable, Equatable {
        public var imageURL: String
        public var width = 0
        public var height = 0
        public var smart = false
        public var meta = false
        /// `trim=True` → `.plain`; `trim=(pos, tol)` → `.position`.
        public var trim: Trim?
        /// ((left, top), (right, bottom))
        public var crop: CropBox?
        public var fitIn = false
        public var fullFitIn = false
        public var adaptiveFitIn = false
        public var adaptiveFullFitIn = false
        /// libthumbor's `flip` (horizontal, negates width) and `flop` (vertical, negates height).
        public var flip = false
        public var flop = false
        public var halign: HorizontalAlignment = .center
        public var valign: VerticalAlignment = .middle
        public var filters: [String] = []
        public var unsafe = false

        public enum Trim: Sendable, Equatable {
            case plain
            case position(String, tolerance: Int)
        }

        public init(imageURL: String) { self.imageURL = imageURL }
    }

    public enum BuildError: Error, Equatable, Sendable, CustomStringConvertible {
        case fitInNeedsSize
        public var description: String { "When using fit-in or full-fit-in, you must specify width and/or height." }
    }

    private let signer: URLSigner

    public init(key: String) { signer = URLSigner(key: key) }

    /// `/<signature>/<options>/<image>`, or `unsafe/<options>/<image>` (no leading slash, as libthumbor).
    public func generate(_ options: Options) throws(BuildError) -> String {
        let plain = try Self.plainImageURL(options)
        if options.unsafe { return "unsafe/" + plain }
        return "/\(signer.signature(for: plain))/\(plain)"
    }

    /// libthumbor's `plain_image_url`: option parts in canonical order, then the image URL verbatim.
    public static func plainImageURL(_ options: Options) throws(BuildError) -> String {
        var parts: [String] = []
        if options.meta { parts.append("meta") }
        switch options.trim {
        case .plain?:
            parts.append("trim")
        case let .position(position, tolerance)?:
            var bits = ["trim", position]
            if tolerance != 0 { bits.append(String(tolerance)) }
            parts.append(bits.joined(separator: ":"))
        case nil:
            break
        }
        if let crop = options.crop, crop.isSet {
            parts.append("\(crop.left)x\(crop.top):\(crop.right)x\(crop.bottom)")
        }
        if options.fitIn { parts.append("fit-in") }
        if options.fullFitIn { parts.append("full-fit-in") }
        if options.adaptiveFitIn { parts.append("adaptive-fit-in") }
        if options.adaptiveFullFitIn { parts.append("adaptive-full-fit-in") }
        let anyFit = options.fitIn || options.fullFitIn || options.adaptiveFitIn || options.adaptiveFullFitIn
        if anyFit && options.width == 0 && options.height == 0 { throw .fitInNeedsSize }

        // Python: width * -1 for flip; "-0" when flipping with no size; "%sx%s" when either is truthy.
        var width = String(options.flip ? -options.width : options.width)
        var height = String(options.flop ? -options.height : options.height)
        var widthTruthy = options.width != 0
        var heightTruthy = options.height != 0
        if options.width == 0 && options.height == 0 {
            if options.flip { width = "-0"; widthTruthy = true }
            if options.flop { height = "-0"; heightTruthy = true }
        }
        if widthTruthy || heightTruthy { parts.append("\(width)x\(height)") }

        if options.halign != .center { parts.append(options.halign.rawValue) }
        if options.valign != .middle { parts.append(options.valign.rawValue) }
        if options.smart { parts.append("smart") }
        if !options.filters.isEmpty { parts.append((["filters"] + options.filters).joined(separator: ":")) }
        parts.append(options.imageURL)
        return parts.joined(separator: "/")
    }
}
