/// EXIF orientation (1…8) as libvips' `autorot` applies it, and the inverse mapping Pinhole needs to
/// crop and resize in the stored orientation and rotate only the small result.
public struct Orientation: Sendable, Equatable, Hashable {
    public let value: Int
    public init(_ value: Int) { self.value = (1...8).contains(value) ? value : 1 }

    public var swapsAxes: Bool { value >= 5 }

    /// Maps a rectangle in displayed coordinates to stored coordinates. `stored` is the stored size.
    /// Corners are continuous coordinates, so the mapping is exact for whole-pixel rectangles.
    func storedRect(fromDisplayed r: (x0: Double, y0: Double, x1: Double, y1: Double), stored: (w: Double, h: Double))
        -> (x0: Double, y0: Double, x1: Double, y1: Double) {
        let (w, h) = stored
        func map(_ x: Double, _ y: Double) -> (Double, Double) {
            switch value {
            case 2: return (w - x, y)          // flip horizontal
            case 3: return (w - x, h - y)      // rotate 180
            case 4: return (x, h - y)          // flip vertical
            case 5: return (y, x)              // transpose
            case 6: return (y, h - x)          // displayed = stored rotated 90° clockwise
            case 7: return (w - y, h - x)      // transverse
            case 8: return (w - y, x)          // displayed = stored rotated 270° clockwise
            default: return (x, y)
            }
        }
        let a = map(r.x0, r.y0), b = map(r.x1, r.y1)
        return (min(a.0, b.0), min(a.1, b.1), max(a.0, b.0), max(a.1, b.1))
    }
}
