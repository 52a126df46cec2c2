import ThumborURL

/// Thumbor 7.8.0's transform math (`thumbor/transformer.py`), reproduced with Python's numeric
/// semantics: given the source size and a request, which crops, resize and flips happen, in order.
/// Pure: no pixels are touched, so it is tested and explained on its own.
public struct ThumborGeometry: Sendable, Equatable {
    /// What the engine does, in Thumbor's order (and the operations `/meta` reports).
    public enum Operation: Sendable, Equatable {
        case crop(PixelRect)
        /// Python passes floats for requested sides and ints for computed ones; `/meta` shows which.
        case resize(width: PyNumber, height: PyNumber)
        case flipHorizontally
        case flipVertically
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// `0xorig`, `origx0`, `origx`: Thumbor computes `float("orig")` and answers 500.
        case origWithProportionalSide
        /// A side computes to zero and Thumbor would divide by it.
        case zeroTargetSide
        public var description: String {
            switch self {
            case .origWithProportionalSide: return "'orig' cannot be combined with a proportional (0 or empty) other side"
            case .zeroTargetSide: return "the requested size rounds to zero pixels on one side"
            }
        }
    }

    public var sourceSize: PixelSize
    public var operations: [Operation] = []
    /// Target width and height as Thumbor computed them (after any fit-in swap).
    public var target: (width: PyNumber, height: PyNumber) = (.int(0), .int(0))
    public var focalPoints: [FocalPoint] = []
    /// The requested size after fit-in (Thumbor rewrites it for `fill()`).
    public var requestedSize: PixelSize?
    /// The size of the image after all operations.
    public var outputSize: PixelSize

    public static func == (a: Self, b: Self) -> Bool {
        a.sourceSize == b.sourceSize && a.operations == b.operations && a.target.width == b.target.width
            && a.target.height == b.target.height && a.focalPoints == b.focalPoints && a.outputSize == b.outputSize
    }

    /// Runs `Transformer.trim` (when a trim box was found) and `img_operation_worker` (manual crop → target
    /// dimensions → focal points → debug | fit-in | auto crop + resize → flip).
    /// `trim` is the box `Transformer.trim` crops to (exclusive right/bottom); `focalPoints` are explicit
    /// points in source coordinates (from `focal()` or detection).
    public static func compute(source: PixelSize, request: ThumborRequest, trim: PixelRect? = nil, stretch: Bool = false,
                               focalPoints explicitPoints: [FocalPoint] = []) throws(Failure) -> ThumborGeometry {
        var g = ThumborGeometry(sourceSize: source, outputSize: source)
        var size = source
        var crop = request.crop
        var shouldCrop = crop.isSet

        if let trim {
            g.operations.append(.crop(trim))
            size = PixelSize(width: trim.width, height: trim.height)
            if shouldCrop {
                crop.left -= trim.left; crop.top -= trim.top
                crop.right -= trim.left; crop.bottom -= trim.top
            }
        }

        // Manual crop, clamped; an empty box is ignored.
        if shouldCrop {
            crop.left = min(max(crop.left, 0), size.width)
            crop.top = min(max(crop.top, 0), size.height)
            crop.right = min(max(crop.right, 0), size.width)
            crop.bottom = min(max(crop.bottom, 0), size.height)
            if crop.left >= crop.right || crop.top >= crop.bottom {
                shouldCrop = false
            } else {
                let rect = PixelRect(left: crop.left, top: crop.top, right: crop.right, bottom: crop.bottom)
                g.operations.append(.crop(rect))
                size = PixelSize(width: rect.width, height: rect.height)
            }
        }

        // Target dimensions.
        let sw = Double(size.width), sh = Double(size.height)
        var targetWidth: PyNumber, targetHeight: PyNumber
        if !request.width.isSet && !request.height.isSet {
            targetWidth = .float(sw); targetHeight = .float(sh)
        } else {
            switch request.width {
            case .orig: targetWidth = .float(sw)
            case let .pixels(n) where n != 0: targetWidth = .float(Double(n))
            default:
                guard let h = request.height.pixels else { throw .origWithProportionalSide }
                targetWidth = .float(PythonMath.round(Double(h) * sw / sh))
            }
            switch request.height {
            case .orig: targetHeight = .float(sh)
            case let .pixels(n) where n != 0: targetHeight = .float(Double(n))
            default:
                guard let w = request.width.pixels else { throw .origWithProportionalSide }
                targetHeight = .float(PythonMath.round(Double(w) * sh / sw))
            }
        }

        // Focal points: explicit ones that survive the manual crop, shifted; else the alignment point.
        var points: [FocalPoint] = []
        if shouldCrop {
            for var point in explicitPoints
            where !(point.x < crop.left || point.x > crop.right || point.y < crop.top || point.y > crop.bottom) {
                point.x -= crop.left
                point.y -= crop.top
                points.append(point)
            }
        } else {
            points = explicitPoints
        }
        if points.isEmpty {
            let fx: Double = ["left": 0, "center": 0.5, "right": 1][request.halign.rawValue]!
            let fy: Double = ["top": 0, "middle": 0.5, "bottom": 1][request.valign.rawValue]!
            points = [FocalPoint(x: PythonMath.int(sw * fx), y: PythonMath.int(sh * fy))]
        }
        g.focalPoints = points

        if request.debug {
            g.target = (targetWidth, targetHeight)
            g.outputSize = size
            return g
        }

        if request.fitIn {
            var tw = targetWidth.value, th = targetHeight.value
            var requestedWidth = request.width, requestedHeight = request.height
            if request.adaptive && ((sw < sh && tw > th) || (sw > sh && tw < th)) {
                swap(&tw, &th)
                swap(&targetWidth, &targetHeight)
                swap(&requestedWidth, &requestedHeight)
            }
            g.target = (targetWidth, targetHeight)
            let sign: Double = request.full ? -1 : 1
            if !(sign == 1 && tw >= sw && th >= sh) {
                guard tw != 0, th != 0 else { throw .zeroTargetSide }
                let resizeWidth: PyNumber, resizeHeight: PyNumber
                if sw / tw * sign >= sh / th * sign {
                    resizeHeight = .int(Int(PythonMath.round(sh * tw / sw + 1e-5)))
                    resizeWidth = targetWidth
                } else {
                    resizeHeight = targetHeight
                    resizeWidth = .int(Int(PythonMath.round(sw * th / sh + 1e-5)))
                }
                let rw = PythonMath.int(resizeWidth.value), rh = PythonMath.int(resizeHeight.value)
                let reqW = requestedWidth == .orig ? size.width : (requestedWidth.pixels ?? 0)
                let reqH = requestedHeight == .orig ? size.height : (requestedHeight.pixels ?? 0)
                g.requestedSize = PixelSize(width: max(reqW, rw), height: max(reqH, rh))
                g.operations.append(.resize(width: resizeWidth, height: resizeHeight))
                size = PixelSize(width: rw, height: rh)
            }
        } else {
            g.target = (targetWidth, targetHeight)
            let tw = targetWidth.value, th = targetHeight.value
            if !stretch, let rect = autoCrop(size: size, targetWidth: tw, targetHeight: th, focalPoints: points) {
                g.operations.append(.crop(rect))
                size = PixelSize(width: rect.width, height: rect.height)
            }
            if !(tw == Double(size.width) && th == Double(size.height)) {
                let w: PyNumber = tw == 0 ? .int(1) : targetWidth
                let h: PyNumber = th == 0 ? .int(1) : targetHeight
                g.operations.append(.resize(width: w, height: h))
                size = PixelSize(width: PythonMath.int(w.value), height: PythonMath.int(h.value))
            }
        }
        if request.horizontalFlip { g.operations.append(.flipHorizontally) }
        if request.verticalFlip { g.operations.append(.flipVertically) }
        g.outputSize = size
        return g
    }

    /// `Transformer.auto_crop`: the crop that gives the target aspect ratio around the focal points' centre of mass.
    static func autoCrop(size: PixelSize, targetWidth tw: Double, targetHeight th: Double, focalPoints: [FocalPoint]) -> PixelRect? {
        let sw = Double(size.width), sh = Double(size.height)
        let safeTH = th == 0 ? 1 : th, safeTW = tw == 0 ? 1 : tw
        if PythonMath.round2(sw / sh) == PythonMath.round2(safeTW / safeTH) { return nil }

        var totalWeight = 0.0, totalX = 0.0, totalY = 0.0
        for point in focalPoints {
            totalWeight += point.weight
            totalX += Double(point.x) * point.weight
            totalY += Double(point.y) * point.weight
        }
        let focalX = PythonMath.floorDivide(totalX, totalWeight)
        let focalY = PythonMath.floorDivide(totalY, totalWeight)

        let cropWidth: Double, cropHeight: Double
        if tw / sw > th / sh {
            cropWidth = sw
            cropHeight = Double(PythonMath.int(PythonMath.round(sw * th / safeTW)))
        } else {
            cropWidth = Double(PythonMath.int(PythonMath.round((tw * sh / safeTH).rounded(.up))))
            cropHeight = sh
        }
        let left = PythonMath.int(PythonMath.round(min(max(focalX - cropWidth / 2, 0), sw - cropWidth)))
        let top = PythonMath.int(PythonMath.round(min(max(focalY - cropHeight / 2, 0), sh - cropHeight)))
        let right = min(left + PythonMath.int(cropWidth), size.width)
        let bottom = min(top + PythonMath.int(cropHeight), size.height)
        return PixelRect(left: left, top: top, right: right, bottom: bottom)
    }
}

/// A number as Python held it: `/meta` prints `300.0` for floats and `300` for ints.
public enum PyNumber: Sendable, Equatable {
    case int(Int)
    case float(Double)

    public var value: Double {
        switch self {
        case let .int(n): return Double(n)
        case let .float(x): return x
        }
    }

    /// Python's `repr` for JSON output.
    public var json: String {
        switch self {
        case let .int(n): return String(n)
        case let .float(x):
            if x.isFinite, x == x.rounded(), abs(x) < 1e16 { return String(Int(x)) + ".0" }
            return String(x)
        }
    }
}

extension ThumborGeometry.Operation {
    /// Thumbor's name for the operation, as `/meta` lists it.
    public var thumborType: String {
        switch self {
        case .crop: return "crop"
        case .resize: return "resize"
        case .flipHorizontally: return "flip_horizontally"
        case .flipVertically: return "flip_vertically"
        }
    }

    /// The operation's fields in `/meta`'s order, each as Python held it.
    public var thumborFields: [(name: String, value: PyNumber)] {
        switch self {
        case let .crop(r): return [("left", .int(r.left)), ("top", .int(r.top)), ("right", .int(r.right)), ("bottom", .int(r.bottom))]
        case let .resize(width, height): return [("width", width), ("height", height)]
        case .flipHorizontally, .flipVertically: return []
        }
    }
}
