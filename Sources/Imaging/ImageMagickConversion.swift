import Foundation
import Vips

/// Studio files libvips 8.14's ImageMagick loader gets wrong, converted by ImageMagick's own `convert`
/// program inside a decode worker (under the same policy, within the worker's confinement):
/// - CMYK PSDs: the loader reads K from the wrong channel (dark, nearly grey) or, with alpha, aborts.
///   `convert` keeps CMYK, alpha and any ICC profile in a TIFF; the server then converts through the
///   profile, or by the plain formula when there is none, as for CMYK JPEGs.
/// - Log (Cineon, printing-density) DPX: refused by the loader (`unsupported colorspace 21`). `convert`
///   applies Cineon → linear → sRGB.
enum ImageMagickConversion {
    enum Kind { case cmykPSD, logDPX }

    /// What the bytes need, from their headers: a PSD's colour mode (offset 24, 4 = CMYK) or a DPX's
    /// transfer characteristic (offset 801: 1 printing density, 3 logarithmic).
    static func kind(of bytes: UnsafeRawBufferPointer) -> Kind? {
        func starts(_ magic: String) -> Bool { bytes.count >= 4 && zip(bytes, Array(magic.utf8)).allSatisfy { $0 == $1 } }
        if starts("8BPS"), bytes.count >= 26, bytes[24] == 0, bytes[25] == 4 { return .cmykPSD }
        if starts("SDPX") || starts("XPDS"), bytes.count > 801, bytes[801] == 1 || bytes[801] == 3 { return .logDPX }
        return nil
    }

    /// The converted image as TIFF bytes (8 bits for CMYK, 16 for DPX).
    static func convert(_ bytes: UnsafeRawBufferPointer, kind: Kind, timeout: Double) throws(RenderError) -> [UInt8] {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let input = directory + "/im-" + UUID().uuidString + (kind == .cmykPSD ? ".psd" : ".dpx")
        guard FileManager.default.createFile(atPath: input, contents: Data(bytes)) else {
            throw .decoderFailed("cannot write the file for ImageMagick")
        }
        defer { try? FileManager.default.removeItem(atPath: input) }
        let errorsPath = input + ".log"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let operations = kind == .cmykPSD ? ["\(input)[0]", "-depth", "8"] : [input, "-colorspace", "sRGB", "-depth", "16"]
        let arguments = ["/usr/bin/timeout", "-s", "KILL", String(Int(timeout.rounded(.up))), "/usr/bin/convert"]
            + operations + ["tif:-"]
        guard let (status, tiff) = Subprocess.run(arguments, errorsTo: errorsPath) else {
            throw .decoderFailed("cannot run ImageMagick")
        }
        guard status == 0, tiff.count > 8 else {
            let message = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
            throw .workerRefused("source image could not be decoded (ImageMagick: \(message.split(separator: "\n").first.map(String.init)?.prefix(200) ?? "no output"))")
        }
        return tiff
    }
}
