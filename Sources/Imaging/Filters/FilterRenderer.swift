import Foundation
import ThumborURL
import Vips

/// Thumbor's post-transform filters on libvips, in URL order, on the thumbnail-sized 8-bit sRGB image.
/// Pixel-wise filters reproduce Thumbor's C arithmetic through lookup tables; the others use the
/// nearest libvips operation (the differences are measured in the differential tests).
enum FilterRenderer {
    /// What a filter may need besides the image: the requested size (for `fill` and `upscale`).
    struct Context {
        /// Thumbor's `context.request.width/height` after clamping and `no_upscale` (0 = not given).
        var requestedWidth: Int
        var requestedHeight: Int
        /// Encoded overlay images by URL (`watermark`, `frame`), loaded by the service beforehand.
        var overlays: [String: [UInt8]] = [:]
    }

    /// Blur radius cap (Thumbor's MAX_RADIUS) — also what keeps a blur(1000000) cheap.
    static let maxBlurRadius = 150

    static func apply(_ filter: ThumborFilter, to image: Image, context: Context) throws -> Image {
        // Thumbor's filters read pixels as RGB or RGBA (`image_data_as_rgb`, `paste`): a filter that brings a
        // colour or an overlay turns a grey image into a colour one first, so that every colour, background
        // and overlay meets three colour bands (plus alpha), whatever the source was.
        let image = filter.bringsColour && image.colourBands < 3 ? try image.toSRGB(keepGray: false) : image
        let colour = image.colourBands
        switch filter {
        case let .brightness(percent):
            return try image.mapped(through: Array(repeating: ToneTables.brightness(percent), count: colour))
        case let .contrast(percent):
            return try image.mapped(through: Array(repeating: ToneTables.contrast(percent), count: colour))
        case let .rgb(red, green, blue):
            return try image.mapped(through: [red, green, blue].map(ToneTables.brightness))
        case let .colorize(red, green, blue, fill):
            guard let c = ColourName.hex(fill) else { return image }
            return try image.mapped(through: [ToneTables.colorize(percent: red, fill: c.red),
                                              ToneTables.colorize(percent: green, fill: c.green),
                                              ToneTables.colorize(percent: blue, fill: c.blue)])
        case let .curve(all, red, green, blue):
            let a = ToneTables.curve(all)
            let tables = [red, green, blue].map { channel in ToneTables.curve(channel).map { a[Int($0)] } }
            return try image.mapped(through: tables)
        case .equalize:
            let histograms = try image.histograms().prefix(max(colour, 1))
            return try image.mapped(through: ToneTables.equalize(Array(histograms)))
        case let .saturation(change):
            return try image.saturated(by: change)
        case .grayscale:
            return try image.grayscale()
        case let .noise(amount, seed):
            return try image.noised(amount: amount, seed: seed)
        case let .blur(radius, sigma):
            return try image.blurred(kernel: gaussianKernel(sigma: sigma == 0 ? Double(radius) : sigma, radius: min(radius, maxBlurRadius)))
        case let .sharpen(amount, radius, luminanceOnly):
            return try image.waveletSharpened(amount: amount, radius: radius, luminanceOnly: luminanceOnly)
        case let .convolution(matrix, columns, normalize):
            guard columns > 0, !matrix.isEmpty, matrix.count % columns == 0, columns <= 31, matrix.count / columns <= 31 else { return image }
            let sum = matrix.reduce(0, +)
            return try image.convolved(matrix: matrix, columns: columns, scale: normalize && sum != 0 ? sum : 1)
        case let .rotate(degrees):
            guard degrees % 90 == 0 else { return image }
            // PIL rotates counter-clockwise; libvips' quarter turns are clockwise.
            let counterClockwise = ((degrees % 360) + 360) % 360 / 90
            return counterClockwise == 0 ? image : try image.rotate(quarterTurns: 4 - counterClockwise)
        case let .roundCorner(a, b, red, green, blue, transparent):
            return try image.roundedCorners(horizontal: a, vertical: b, red: Double(red), green: Double(green), blue: Double(blue),
                                            transparent: transparent)
        case let .fill(color, fillTransparent):
            return try fill(image, color: color, fillTransparent: fillTransparent, context: context)
        case let .backgroundColor(color):
            guard image.colourBands < image.bands else { return image }   // nothing transparent to show through
            if color.lowercased() == "transparent" { return image }
            let rgb: (red: Int, green: Int, blue: Int)?
            if color.lowercased() == "auto" {
                let means = try image.bandMeans()
                rgb = (Int(means[0]), Int(means[min(1, means.count - 1)]), Int(means[min(2, means.count - 1)]))
            } else {
                rgb = ColourName.rgb(color)
            }
            guard let rgb else { return image }
            return try image.flatten(red: Double(rgb.red), green: Double(rgb.green), blue: Double(rgb.blue))
        case .upscale:
            let tw = context.requestedWidth, th = context.requestedHeight
            let sw = image.width, sh = image.height
            guard tw > 0, th > 0, sw < tw, sh < th else { return image }
            let (nw, nh) = Double(sw) / Double(tw) >= Double(sh) / Double(th)
                ? (tw, sh * tw / sw) : (sw * th / sh, th)
            guard nw > 0, nh > 0 else { return image }
            return try image.resize(horizontal: Double(nw) / Double(sw), vertical: Double(nh) / Double(sh))
        case let .proportion(value):
            guard value > 0, value <= 1 else { return image }
            let nw = Double(image.width) * value, nh = Double(image.height) * value
            guard nw >= 1, nh >= 1 else { return image }
            // PIL's resize truncates float sizes.
            return try exactResize(image, width: Int(nw), height: Int(nh))
        case let .watermark(url, x, y, alpha, widthRatio, heightRatio):
            guard let bytes = context.overlays[url] else { return image }
            return try Watermark(x: x, y: y, alpha: alpha, widthRatio: widthRatio, heightRatio: heightRatio)
                .apply(to: image, overlay: try overlayImage(bytes))
        case let .frame(url):
            guard let bytes = context.overlays[url] else { return image }
            return try NinePatch.frame(image, with: try overlayImage(bytes))
        case .quality, .format, .maxBytes, .maxAge, .stripEXIF, .stripICC, .noUpscale, .stretch, .focal, .extractFocal, .still:
            return image   // handled by the plan, the encoder, the response or the handler
        }
    }

    /// An overlay decoded to 8-bit sRGB with alpha.
    static func overlayImage(_ bytes: [UInt8]) throws -> Image {
        try Image.open(bytes, sequential: false, failOn: .error).toSRGB(keepGray: false).withAlpha().copyToMemory()
    }

    /// Thumbor's `generate_1d_matrix`: a Gaussian of `sigma` sampled over ±radius (normalised when applied).
    static func gaussianKernel(sigma: Double, radius: Int) -> [Double] {
        let twoSigmaSquared = 2 * sigma * sigma
        guard twoSigmaSquared > 0 else { return [1] }
        return (-radius...radius).map { x in exp(-Double(x * x) / twoSigmaSquared) }
    }

    static func exactResize(_ image: Image, width: Int, height: Int) throws -> Image {
        var resized = try image.resize(horizontal: Double(width) / Double(image.width), vertical: Double(height) / Double(image.height))
        if resized.width != width || resized.height != height {
            resized = try resized.crop(left: 0, top: 0, width: min(resized.width, width), height: min(resized.height, height))
                .embed(x: 0, y: 0, width: width, height: height)
        }
        return resized
    }

    /// `fill(colour)`: the image centred on a canvas of the requested size in `colour`, `transparent`,
    /// `auto` (the image's mean colour) or `blur` (the image itself, blurred and stretched).
    static func fill(_ image: Image, color: String, fillTransparent: Bool, context: Context) throws -> Image {
        let tw = context.requestedWidth != 0 ? context.requestedWidth : image.width
        let th = context.requestedHeight != 0 ? context.requestedHeight : image.height
        guard tw > 0, th > 0, tw <= 1 << 14, th <= 1 << 14 else { return image }
        let x = (tw - image.width) / 2, y = (th - image.height) / 2
        let lower = color.lowercased()
        if lower == "blur" {
            let background = try exactResize(image.blurred(kernel: gaussianKernel(sigma: 50, radius: 50)), width: tw, height: th)
            return try background.composited(with: image.withAlpha(), x: x, y: y).extractBands(first: 0, count: image.bands)
        }
        if lower == "transparent" {
            let withAlpha = try image.withAlpha()
            return try withAlpha.embed(x: x, y: y, width: tw, height: th, background: Array(repeating: 0, count: withAlpha.bands))
        }
        let rgb: (red: Int, green: Int, blue: Int)
        if lower == "auto" {
            let means = try image.bandMeans()
            rgb = (Int(means[0]), Int(means[min(1, means.count - 1)]), Int(means[min(2, means.count - 1)]))
        } else if let named = ColourName.rgb(color) {
            rgb = named
        } else {
            return image
        }
        var background = [Double(rgb.red), Double(rgb.green), Double(rgb.blue)]
        if image.colourBands < image.bands {
            // With fill_transparent the image's transparent pixels show the fill colour too.
            let source = fillTransparent ? try image.flatten(red: Double(rgb.red), green: Double(rgb.green), blue: Double(rgb.blue)) : image
            if fillTransparent { return try source.embed(x: x, y: y, width: tw, height: th, background: background) }
            background.append(255)
        }
        return try image.embed(x: x, y: y, width: tw, height: th, background: background)
    }
}

extension ThumborFilter {
    /// Filters that bring a colour, a background or an overlay to the image (grey images become colour).
    var bringsColour: Bool {
        switch self {
        case .rgb, .colorize, .curve, .roundCorner, .fill, .backgroundColor, .watermark, .frame: return true
        default: return false
        }
    }
}
