/// Image formats Pinhole reads (by libvips loader) and writes (by libvips saver).
public enum ImageFormat: String, Sendable, CaseIterable, Codable {
    case jpeg, png, webp, gif, avif, heif, tiff, jxl, svg, pdf, exr, hdr, magick, video, other

    /// The format of a source, from the name of the libvips loader that claimed it (`jpegload_buffer`, …).
    public init(loader: String) {
        let name = loader.hasSuffix("_buffer") ? String(loader.dropLast("_buffer".count)) : loader
        switch name {
        case "jpegload": self = .jpeg
        case "pngload": self = .png
        case "webpload": self = .webp
        case "gifload": self = .gif
        case "heifload": self = .heif
        case "tiffload": self = .tiff
        case "jxlload": self = .jxl
        case "svgload": self = .svg
        case "pdfload": self = .pdf
        case "openexrload": self = .exr
        case "radload": self = .hdr
        case "magickload": self = .magick
        case "ffmpeg": self = .video   // a frame a decode worker took with FFmpeg
        default: self = .other
        }
    }


    public var mimeType: String {
        switch self {
        case .jpeg: return "image/jpeg"
        case .png: return "image/png"
        case .webp: return "image/webp"
        case .gif: return "image/gif"
        case .avif: return "image/avif"
        case .heif: return "image/heif"
        case .tiff: return "image/tiff"
        case .jxl: return "image/jxl"
        case .svg: return "image/svg+xml"
        case .pdf: return "application/pdf"
        case .exr: return "image/x-exr"
        case .hdr: return "image/vnd.radiance"
        case .video: return "video/mp4"
        case .magick, .other: return "application/octet-stream"
        }
    }
}
