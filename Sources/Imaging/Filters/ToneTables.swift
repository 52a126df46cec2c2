import ThumborURL

/// Thumbor's per-channel filters as 256-entry lookup tables, computed with the C extensions' exact
/// integer arithmetic (`thumbor/ext/filters/*.c`), then applied by libvips (`maplut`): the same input
/// pixels give the same output pixels.
enum ToneTables {
    /// ADJUST_COLOR: clamp to 0…255.
    static func clamp(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v))) }

    /// C's `/` on ints truncates toward zero (Swift's does too).
    static func brightness(_ percent: Int) -> [UInt8] {
        let delta = (255 * percent) / 100
        return (0..<256).map { clamp($0 + delta) }
    }

    static func contrast(_ percent: Int) -> [UInt8] {
        let d = ((percent + 100) * (percent + 100)) / 100
        return (0..<256).map { clamp((d * ($0 - 128)) / 100 + 128) }
    }

    /// `_colorize.c`: (v·(100 − pct) + fill·pct) / 100.0, truncated to int, clamped.
    static func colorize(percent: Int, fill: Int) -> [UInt8] {
        (0..<256).map { v in clamp(Int((Double(v) * (100 - Double(percent)) + Double(fill) * Double(percent)) / 100)) }
    }

    /// `_equalize.c`: per band, (cumulative[v] − min) / (area − min) · 255 as a float stored into a byte.
    /// Its quirk is kept: the search for each band's minimum stops at the first bin where *any* band
    /// has pixels, so the other bands keep a minimum of 0.
    static func equalize(_ histograms: [[Int]]) -> [[UInt8]] {
        let area = histograms.first?.reduce(0, +) ?? 0
        let cumulative = histograms.map { histogram -> [Int] in
            var running = 0
            return histogram.map { count in
                running += count
                return count > 0 ? running : 0
            }
        }
        var minimum = [Int](repeating: 0, count: histograms.count)
        var v = 0
        while minimum.allSatisfy({ $0 == 0 }) && v < 256 {
            for band in minimum.indices where minimum[band] == 0 && cumulative[band][v] != 0 { minimum[band] = cumulative[band][v] }
            v += 1
        }
        return cumulative.indices.map { band in
            (0..<256).map { value in
                let range = Float(area - minimum[band])
                guard range > 0 else { return UInt8(value) }
                let color = (Float(cumulative[band][value]) - Float(minimum[band])) / range * 255
                // Only values that occur are looked up; the others may fall outside 0…255.
                return UInt8(max(0, min(255, color.rounded(.towardZero))))
            }
        }
    }

    /// `_curve.c`: its cubic spline (second derivatives by its own tridiagonal solve) through the points
    /// as given, rounded; before the first point the first y, from the last x on the last y.
    static func curve(_ points: [ThumborFilter.CurvePoint]) -> [UInt8] {
        guard !points.isEmpty else { return (0..<256).map { UInt8($0) } }
        // The C code stores coordinates as unsigned char.
        let xs = points.map { Double(UInt8(truncatingIfNeeded: $0.x)) }, ys = points.map { Double(UInt8(truncatingIfNeeded: $0.y)) }
        let n = points.count
        var matrix = [Double](repeating: 0, count: n * 3), result = [Double](repeating: 0, count: n)
        matrix[1] = 1
        if n > 2 {
            for i in 1..<(n - 1) {
                matrix[i * 3] = (xs[i] - xs[i - 1]) / 6
                matrix[i * 3 + 1] = (xs[i + 1] - xs[i - 1]) / 3
                matrix[i * 3 + 2] = (xs[i + 1] - xs[i]) / 6
                result[i] = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) - (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
            }
        }
        matrix[(n - 1) * 3 + 1] = 1
        if n > 1 {
            for i in 1..<n {
                let k = matrix[i * 3] / matrix[i * 3 - 3 + 1]
                matrix[i * 3 + 1] -= k * matrix[i * 3 - 3 + 2]
                matrix[i * 3] = 0
                result[i] -= k * result[i - 1]
            }
            for i in stride(from: n - 2, through: 0, by: -1) {
                let k = matrix[i * 3 + 2] / matrix[i * 3 + 3 + 1]
                matrix[i * 3 + 1] -= k * matrix[i * 3 + 3]
                matrix[i * 3 + 2] = 0
                result[i] -= k * result[i + 1]
            }
        }
        let second = (0..<n).map { result[$0] / matrix[$0 * 3 + 1] }
        var table = [UInt8](repeating: UInt8(ys[0]), count: 256)
        for i in 0..<(n - 1) {
            let x0 = Int(xs[i]), x1 = Int(xs[i + 1])
            guard x0 < x1 else { continue }
            for x in x0..<x1 {
                let h = Double(x1 - x0), t = Double(x - x0) / h, a = 1 - t, b = t
                let y = a * ys[i] + b * ys[i + 1] + (h * h / 6) * ((a * a * a - a) * second[i] + (b * b * b - b) * second[i + 1])
                table[x] = UInt8(max(0, min(255, y.rounded(.toNearestOrAwayFromZero))))
            }
        }
        for x in Int(xs[n - 1])..<256 { table[x] = UInt8(ys[n - 1]) }
        return table
    }
}
