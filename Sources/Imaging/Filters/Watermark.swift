import ThumborURL
import Vips

/// `watermark(url, x, y, alpha[, w_ratio[, h_ratio]])` as Thumbor's filter places it: x/y in pixels from
/// the left/top, negative from the right/bottom, `Np` as a percentage of the image, `center`, or `repeat`
/// (tiled, evenly spaced); alpha 0 (opaque) … 100 (invisible) lowers the overlay's alpha channel; the
/// ratios (percent of the image) fit the overlay inside that box first.
struct Watermark {
    var x: String
    var y: String
    var alpha: Int
    var widthRatio: String?
    var heightRatio: String?

    /// More pastes than this in a tiled watermark are Thumbor's cap too (6 × 6 when over 100).
    static let maxTiles = 100

    func apply(to image: Image, overlay original: Image) throws -> Image {
        // _alpha.c: alpha − 255·alpha/100, clamped.
        let delta = -((255 * alpha) / 100)
        let identity = (0..<256).map { UInt8($0) }
        var tables = Array(repeating: identity, count: original.bands - 1)
        tables.append((0..<256).map { ToneTables.clamp($0 + delta) })
        var overlay = try original.mapped(through: tables)

        let size = (image.width, image.height)
        var mark = (overlay.width, overlay.height)
        let wr = Self.ratio(widthRatio), hr = Self.ratio(heightRatio)
        if wr != nil || hr != nil {
            mark = Self.fittedSize(image: size, watermark: mark, widthRatio: wr, heightRatio: hr)
            guard mark.0 > 0, mark.1 > 0 else { return image }
            overlay = try FilterRenderer.exactResize(overlay, width: mark.0, height: mark.1)
        }
        let xs = Self.positions(Self.percent(x, of: size.0), length: size.0, mark: mark.0)
        let ys = Self.positions(Self.percent(y, of: size.1), length: size.1, mark: mark.1)
        guard let xs, let ys else { return image }
        var pastes = [(Int, Int)]()
        var columns = xs, rows = ys
        if x == "repeat" && y == "repeat" && columns.count * rows.count > Self.maxTiles {
            columns = Self.tiles(length: size.0, mark: mark.0, cap: 6)
            rows = Self.tiles(length: size.1, mark: mark.1, cap: 6)
        }
        for px in columns { for py in rows { pastes.append((px, py)) } }
        let hadAlpha = image.colourBands < image.bands
        var result = try image.withAlpha()
        for (px, py) in pastes.prefix(Self.maxTiles) {
            result = try result.composited(with: overlay, x: px, y: py)
        }
        return hadAlpha ? result : try result.extractBands(first: 0, count: image.bands)
    }

    /// `w_ratio` / `h_ratio`: percent → fraction; `none`, absent or 0 → nil. Capped at 400 %: beyond
    /// that the watermark is mostly outside the image, and an unbounded ratio would size it in gigapixels.
    static func ratio(_ text: String?) -> Double? {
        guard let text, text != "none", let value = Double(text), value != 0 else { return nil }
        return min(value, 400) / 100
    }

    /// `detect_and_get_ratio_position`: `-?Np` → pixels, rounded as Python does.
    static func percent(_ position: String, of length: Int) -> String {
        guard position.hasSuffix("p"), let value = Int(position.dropLast().drop(while: { $0 == "-" })) else { return position }
        let pixels = Int(PythonMath.round(Double(length) * Double(value) / 100 + 1e-5))
        return (position.hasPrefix("-") ? "-" : "") + String(pixels)
    }

    /// Where the watermark goes along one axis (several places for `repeat`); nil if unreadable.
    static func positions(_ position: String, length: Int, mark: Int) -> [Int]? {
        switch position {
        case "center": return [Int(Double(length - mark) / 2)]
        case "repeat":
            guard mark > 0 else { return nil }
            var (count, space) = (length / mark, length % mark)
            if Double(length) / Double(mark) < 2 { (count, space) = (Int((Double(length) / Double(mark)).rounded(.up)), 10) }
            let step = space / (max(count, 2) - 1)
            return (0..<count).map { $0 * step + $0 * mark }
        default:
            guard let value = Int(position) else { return nil }
            return [position.hasPrefix("-") ? length - mark + value : value]
        }
    }

    /// Thumbor's cap for dense tiling: at most `cap` per axis, spread over the whole length.
    static func tiles(length: Int, mark: Int, cap: Int) -> [Int] {
        let count = min(cap, length / max(mark, 1))
        let space = (length - count * mark) / (max(count, 2) - 1)
        return (0..<count).map { $0 * space + $0 * mark }
    }

    /// `calc_watermark_size`: the watermark scaled to fit the ratio box, keeping its aspect.
    static func fittedSize(image: (Int, Int), watermark: (Int, Int), widthRatio: Double?, heightRatio: Double?) -> (Int, Int) {
        var maxW = widthRatio.map { Double(image.0) * $0 }
        var maxH = heightRatio.map { Double(image.1) * $0 }
        let ww = Double(watermark.0), wh = Double(watermark.1)
        if maxW == nil, let h = maxH { maxW = ww * h / wh }
        if maxH == nil, let w = maxW { maxH = wh * w / ww }
        guard let w = maxW, let h = maxH, w > 0, h > 0 else { return watermark }
        if ww / w >= wh / h {
            return (Int(PythonMath.round(w)), Int(PythonMath.round(wh * w / ww)))
        }
        return (Int(PythonMath.round(ww * h / wh)), Int(PythonMath.round(h)))
    }
}
