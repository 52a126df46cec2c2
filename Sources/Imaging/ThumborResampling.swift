import Vips

/// When a resize uses Thumbor's own resampling (Pillow's LANCZOS, `Image.lanczosResampled`) rather
/// than libvips' `resize`.
///
/// Pillow's arithmetic gives Thumbor's pixels and, at the factors a thumbnail has left after
/// shrink-on-load (mostly ½…1), costs a third of libvips 8.14's reduce. It renders its input to memory and
/// its cost grows with the factor (its kernel widens as it shrinks), so larger inputs and stronger
/// reductions stream through libvips' shrink-then-reduce instead. Alpha stays with libvips too (Pillow
/// premultiplies it; libvips' resize does not).
enum ThumborResampling {
    /// Inputs up to this many pixels are rendered to memory for the resample (4 MP: 12 MB of RGB).
    static let maxInputPixels = 4 << 20
    /// Reductions stronger than this go to libvips (a ¼ reduction already has 25 taps per pass).
    static let minScale = 0.25

    static func applies(from image: Image, to size: PixelSize) -> Bool {
        guard image.is8Bit, image.bands == 1 || image.bands == 3, !image.hasAlpha else { return false }
        guard image.width * image.height <= maxInputPixels else { return false }
        return Double(size.width) >= Double(image.width) * minScale && Double(size.height) >= Double(image.height) * minScale
    }
}
