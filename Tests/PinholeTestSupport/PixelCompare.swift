import Vips

/// Golden checks compared perceptually, not byte for byte: the mean absolute difference per colour
/// channel (0–255) between two encoded images after scaling both to a common small size. Alpha is
/// left out: it is compared separately where it matters.
public enum PixelCompare {
    public static func meanAbsoluteDifference(_ a: [UInt8], _ b: [UInt8], size: Int = 64) throws -> Double {
        let pa = try pixels(a, size: size), pb = try pixels(b, size: size)
        guard pa.count == pb.count, !pa.isEmpty else { return .infinity }
        var total = 0.0
        for i in pa.indices { total += abs(Double(pa[i]) - Double(pb[i])) }
        return total / Double(pa.count)
    }

    /// 8-bit sRGB colour pixels (no alpha) of an encoded image resized to size×size.
    public static func pixels(_ encoded: [UInt8], size: Int) throws -> [UInt8] {
        let image = try Image.open(encoded, sequential: false, failOn: .none)
        var rgb = try image.toSRGB(keepGray: false)
        if rgb.bands > 3 { rgb = try rgb.extractBands(first: 0, count: 3) }
        let scaled = try rgb.resize(horizontal: Double(size) / Double(rgb.width), vertical: Double(size) / Double(rgb.height))
        return try scaled.copyToMemory().rawPixels()
    }
}
