import Vips

/// `frame(url)`: an Android nine-patch drawn around the image. The frame's 1-pixel border marks, in opaque
/// black, which columns (top edge) and rows (left edge) stretch, and where the content sits (bottom and
/// right edges): the image is first padded (white) by the content insets, then the frame, stretched to the
/// padded size, is composited over it. Several stretch marks on one edge are treated as one span from the
/// first to the last (Thumbor distributes the extra length over each mark).
enum NinePatch {
    struct Markers {
        var stretchX: Range<Int>?
        var stretchY: Range<Int>?
        var insets = (left: 0, top: 0, right: 0, bottom: 0)
    }

    static func frame(_ image: Image, with patch: Image) throws -> Image {
        guard patch.width >= 3, patch.height >= 3, patch.bands == 4 else { return image }
        let markers = try self.markers(patch)
        let inner = try patch.crop(left: 1, top: 1, width: patch.width - 2, height: patch.height - 2)
        let padded = try image.withAlpha().embed(
            x: markers.insets.left, y: markers.insets.top,
            width: image.width + markers.insets.left + markers.insets.right,
            height: image.height + markers.insets.top + markers.insets.bottom,
            background: [255, 255, 255, 255])
        let stretched = try stretch(inner, to: (padded.width, padded.height), markers: markers)
        let framed = try padded.composited(with: stretched, x: 0, y: 0)
        return image.colourBands < image.bands ? framed : try framed.extractBands(first: 0, count: image.colourBands)
    }

    /// A marker pixel: opaque black.
    static func markers(_ patch: Image) throws -> Markers {
        let pixels = try patch.copyToMemory().rawPixels()
        let w = patch.width, h = patch.height
        func marked(_ x: Int, _ y: Int) -> Bool {
            let i = (y * w + x) * 4
            return pixels[i] == 0 && pixels[i + 1] == 0 && pixels[i + 2] == 0 && pixels[i + 3] == 255
        }
        func span(_ indices: [Int], _ test: (Int) -> Bool) -> Range<Int>? {
            let hits = indices.filter(test)
            guard let first = hits.first, let last = hits.last else { return nil }
            return (first - 1)..<last   // inner coordinates (border removed)
        }
        var markers = Markers()
        markers.stretchX = span(Array(1..<(w - 1))) { marked($0, 0) }
        markers.stretchY = span(Array(1..<(h - 1))) { marked(0, $0) }
        if let content = span(Array(1..<(w - 1)), { marked($0, h - 1) }) {
            markers.insets.left = content.lowerBound
            markers.insets.right = (w - 2) - content.upperBound
        }
        if let content = span(Array(1..<(h - 1)), { marked(w - 1, $0) }) {
            markers.insets.top = content.lowerBound
            markers.insets.bottom = (h - 2) - content.upperBound
        }
        return markers
    }

    /// The frame stretched to `size` along its stretch spans (the rest keeps its pixels).
    static func stretch(_ inner: Image, to size: (Int, Int), markers: Markers) throws -> Image {
        func segments(_ length: Int, _ stretch: Range<Int>?, _ target: Int) -> [(from: Range<Int>, to: Int)] {
            guard let stretch, !stretch.isEmpty else { return [(0..<length, target)] }
            let fixed = length - stretch.count
            let grown = max(1, target - fixed)
            return [(0..<stretch.lowerBound, stretch.lowerBound), (stretch, grown),
                    (stretch.upperBound..<length, length - stretch.upperBound)].filter { !$0.from.isEmpty && $0.to > 0 }
        }
        let columns = segments(inner.width, markers.stretchX, size.0)
        let rows = segments(inner.height, markers.stretchY, size.1)
        var canvas = try inner.crop(left: 0, top: 0, width: 1, height: 1)
            .embed(x: 0, y: 0, width: size.0, height: size.1, background: [0, 0, 0, 0])
        var y = 0
        for row in rows {
            var x = 0
            for column in columns {
                let piece = try FilterRenderer.exactResize(
                    inner.crop(left: column.from.lowerBound, top: row.from.lowerBound, width: column.from.count, height: row.from.count),
                    width: column.to, height: row.to)
                canvas = try canvas.composited(with: piece, x: x, y: y)
                x += column.to
            }
            y += row.to
        }
        return canvas
    }
}
