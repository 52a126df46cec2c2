import Foundation

/// Studio files libvips 8.14's ImageMagick loader gets wrong, converted by ImageMagick's own `convert`
/// program inside a decode worker (under the same policy, within the worker's confinement):
/// - CMYK PSDs: the loader reads K from the wrong channel (dark, nearly grey) or, with alpha, aborts.
///   `convert` keeps CMYK, alpha and any ICC profile in a TIFF; the server then converts through the
///   profile, or by the plain formula when there is none, as for CMYK JPEGs.
/// - Log (Cineon, printing-density) DPX: refused by the loader (`unsupported colorspace 21`). `convert`
///   applies Cineon → linear → sRGB.
/// - Linear DPX (transfer 2): the loader takes the linear values for sRGB (far too dark). `convert` is
///   told they are linear and encodes them as sRGB. Except FFmpeg's: it marks every DPX it writes
///   linear, whatever its values are (in practice sRGB or video-encoded), and those are read as they are.
enum ImageMagickConversion {
    enum Kind { case cmykPSD, logDPX, linearDPX }

    /// What the bytes need, from their headers: a PSD's colour mode (offset 24, 4 = CMYK) or a DPX's
    /// transfer characteristic (offset 801: 1 printing density, 3 logarithmic, 2 linear) and creator
    /// (offset 160).
    static func kind(of bytes: UnsafeRawBufferPointer) -> Kind? {
        let starts = { (magic: String) in IsolatedDecoding.starts(bytes, with: magic) }
        if starts("8BPS"), bytes.count >= 26, bytes[24] == 0, bytes[25] == 4 { return .cmykPSD }
        if starts("SDPX") || starts("XPDS"), bytes.count > 801 {
            if bytes[801] == 1 || bytes[801] == 3 { return .logDPX }
            if bytes[801] == 2, !IsolatedDecoding.starts(UnsafeRawBufferPointer(rebasing: bytes[160...]), with: "Lavc") { return .linearDPX }
        }
        return nil
    }

    /// The converted image as TIFF bytes (8 bits for CMYK, 16 for DPX).
    static func convert(_ bytes: UnsafeRawBufferPointer, kind: Kind, timeout: Double) throws(RenderError) -> [UInt8] {
        let (status, tiff, reason) = try Subprocess.run(on: bytes, suffix: kind == .cmykPSD ? ".psd" : ".dpx", timeout: timeout) { input in
            switch kind {
            case .cmykPSD: ["/usr/bin/convert", "\(input)[0]", "-depth", "8", "tif:-"]
            case .logDPX: ["/usr/bin/convert", input, "-colorspace", "sRGB", "-depth", "16", "tif:-"]
            case .linearDPX: ["/usr/bin/convert", input, "-set", "colorspace", "RGB", "-colorspace", "sRGB", "-depth", "16", "tif:-"]
            }
        }
        guard status == 0, tiff.count > 8 else {
            throw .workerRefused("source image could not be decoded (ImageMagick: \(reason.isEmpty ? "no output" : reason))")
        }
        return tiff
    }
}
