/// An integer pixel rectangle given by its edges, as Thumbor passes crops (`left, top, right, bottom`).
public struct PixelRect: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var left: Int, top: Int, right: Int, bottom: Int
    public init(left: Int, top: Int, right: Int, bottom: Int) {
        self.left = left; self.top = top; self.right = right; self.bottom = bottom
    }
    public var width: Int { right - left }
    public var height: Int { bottom - top }
    public var description: String { "(\(left),\(top),\(right),\(bottom))" }
}

public struct PixelSize: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var width: Int, height: Int
    public init(width: Int, height: Int) { self.width = width; self.height = height }
    public var description: String { "\(width)x\(height)" }
}

/// A point the crop should keep in view (Thumbor's `FocalPoint`).
public struct FocalPoint: Sendable, Equatable, Hashable, Codable {
    public enum Origin: String, Sendable, Codable {
        case alignment, explicit = "Explicit", detection, extraction = "Original Extraction"
    }
    public var x: Int, y: Int, width: Int, height: Int
    public var weight: Double
    public var origin: Origin

    public init(x: Int, y: Int, width: Int = 1, height: Int = 1, weight: Double = 1, origin: Origin = .alignment) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.weight = weight; self.origin = origin
    }

    /// `FocalPoint.from_square`: centre of the box, weighted by its area.
    public static func fromSquare(x: Int, y: Int, width: Int, height: Int, origin: Origin) -> FocalPoint {
        FocalPoint(x: x + width / 2, y: y + height / 2, width: width, height: height,
                   weight: Double(width * height), origin: origin)
    }
}
