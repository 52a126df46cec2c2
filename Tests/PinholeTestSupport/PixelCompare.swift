import Vips

/// Golden checks compared perceptually, not byte for byte: the mean absolute difference per colour
/// channel (0–255) between two encoded images after scaling both to a common small size, or the mean
/// absolute difference of alpha when that is larger (an image without alpha counts as opaque), so an
/// alpha that became opaque or inverted fails like a wrong colour.
public enum PixelCompare {
    public static func meanAbsoluteDifference(_ a: [UInt8], _ b: [UInt8], size: Int = 64) throws -> Double {
        let d = try channelDifferences(a, b, size: size)
        return max(d.colour, d.alpha)
    }

    /// The mean absolute differences of the colour channels and of alpha, apart: for an image whose colour
    /// comes from one reference and whose alpha from another.
    public static func channelDifferences(_ a: [UInt8], _ b: [UInt8], size: Int = 64) throws -> (colour: Double, alpha: Double) {
        let pa = try pixels(a, size: size), pb = try pixels(b, size: size)
        guard pa.count == pb.count, !pa.isEmpty else { return (.infinity, .infinity) }
        var colour = 0.0, alpha = 0.0
        for i in pa.indices {
            let d = abs(Double(pa[i]) - Double(pb[i]))
            if i % 4 == 3 { alpha += d } else { colour += d }
        }
        let pixelCount = Double(pa.count / 4)
        return (colour / (3 * pixelCount), alpha / pixelCount)
    }

    /// 8-bit sRGB pixels with alpha (255 where the image has none) of an encoded image resized to size×size.
    public static func pixels(_ encoded: [UInt8], size: Int) throws -> [UInt8] {
        let image = try Image.open(encoded, sequential: false, failOn: .none)
        let rgba = try image.toSRGB(keepGray: false).withAlpha()
        let scaled = try rgba.resize(horizontal: Double(size) / Double(rgba.width), vertical: Double(size) / Double(rgba.height))
        return try scaled.copyToMemory().rawPixels()
    }
}
