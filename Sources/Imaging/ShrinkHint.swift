import ThumborURL

/// What a decode worker may shrink a source to before handing it back: the request's target box, so
/// that the worker can work out, from the source's own size (which only it reads), a whole factor that
/// keeps at least `reserve` times the pixels the target needs on both axes. The plan then runs on the
/// smaller pixels as on a JPEG's shrink-on-load, with the source's true size for its geometry. Sent
/// only for requests whose geometry needs no source pixels at full size (no manual crop, trim or smart).
public struct ShrinkHint: Sendable, Equatable {
    /// The target box (0: free on that axis).
    public var width: Int
    public var height: Int
    /// Both axes must be covered (a crop to fill, full-fit-in), not just one (fit-in).
    public var covering: Bool
    /// Pixels kept per target pixel on each axis, at least: the rest is Lanczos' work.
    public static let reserve = 2.0

    public init(width: Int, height: Int, covering: Bool) {
        self.width = width
        self.height = height
        self.covering = covering
    }

    /// The hint for a request, or nil when the worker must hand back every pixel.
    public init?(request: ThumborRequest) {
        guard !request.smart, request.trim == nil, !request.crop.isSet,
              let width = request.width.pixels, let height = request.height.pixels, width != 0 || height != 0 else { return nil }
        self.init(width: abs(width), height: abs(height), covering: !request.fitIn || request.full)
    }

    /// The whole factor for a source of `sourceWidth` x `sourceHeight` (1: none). The target may apply to
    /// the source turned a quarter (EXIF orientation, adaptive-fit-in): the smaller factor of both ways.
    public func factor(sourceWidth: Int, sourceHeight: Int) -> Int {
        guard sourceWidth > 0, sourceHeight > 0 else { return 1 }
        func needed(_ w: Int, _ h: Int) -> Double {
            let sx = w > 0 ? Double(w) / Double(sourceWidth) : nil, sy = h > 0 ? Double(h) / Double(sourceHeight) : nil
            switch (sx, sy) {
            case let (x?, y?): return covering ? max(x, y) : min(x, y)
            case let (x?, nil): return x
            case let (nil, y?): return y
            case (nil, nil): return 1
            }
        }
        let scale = max(needed(width, height), needed(height, width)) * Self.reserve
        guard scale > 0, scale < 1 else { return 1 }
        return max(1, Int((1 / scale).rounded(.down)))
    }

    /// As a worker option, and back.
    public var option: String { "\(width)x\(height)\(covering ? "c" : "")" }

    public init?(option: String) {
        let covering = option.hasSuffix("c")
        let parts = (covering ? option.dropLast() : Substring(option)).split(separator: "x")
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]), width >= 0, height >= 0 else { return nil }
        self.init(width: width, height: height, covering: covering)
    }
}
