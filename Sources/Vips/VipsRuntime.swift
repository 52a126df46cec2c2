import CVips
import CVipsShim
import Foundation

/// Process-wide libvips settings, applied once before the first image is opened.
public struct VipsSettings: Sendable, Equatable {
    /// Threads libvips uses inside one image pipeline. A server renders many images at once on a pool
    /// sized to the cores, so 1 keeps the cores busy without oversubscribing them. 0 = libvips' default
    /// (VIPS_CONCURRENCY or the core count).
    public var concurrency: Int = 1
    /// Block loaders libvips marks untrusted (magick, pdf, svg, exr, …) except those in `allowedUntrustedLoaders`.
    public var blockUntrusted: Bool = true
    /// libvips operation class names re-enabled after blocking, e.g. `VipsForeignLoadSvg`.
    public var allowedUntrustedLoaders: [String] = VipsSettings.studioLoaders

    /// The untrusted loaders a studio needs for the formats it stores (SVG, PDF, EXR, HDR, JPEG XL, PSD/DPX via ImageMagick).
    public static let studioLoaders = [
        "VipsForeignLoadSvg", "VipsForeignLoadPdf", "VipsForeignLoadOpenexr", "VipsForeignLoadRad",
        "VipsForeignLoadJxl", "VipsForeignLoadMagick",
    ]

    public init(concurrency: Int = 1, blockUntrusted: Bool = true, allowedUntrustedLoaders: [String] = VipsSettings.studioLoaders) {
        self.concurrency = concurrency
        self.blockUntrusted = blockUntrusted
        self.allowedUntrustedLoaders = allowedUntrustedLoaders
    }
}

public enum VipsRuntime {
    private static let initResult: Int32 = {
        // Warnings (e.g. "read gave 47 warnings" on a truncated JPEG) would go to stderr per request;
        // failures reach us as errors instead.
        setenv("VIPS_WARNING", "0", 0)
        return cvips_init("pinhole")
    }()

    private static let applying = NSLock()
    nonisolated(unsafe) private static var applied: VipsSettings?   // guarded by `applying`

    /// Initialises libvips once and applies `settings`. Safe to call repeatedly; the last settings win.
    /// Settings already in force are not applied again: blocking reopens a moment in which every untrusted
    /// loader is blocked, and another thread loading a PSD then would be refused.
    public static func start(_ settings: VipsSettings = VipsSettings()) throws {
        guard initResult == 0 else {
            throw VipsError(operation: "vips_init", message: takeErrorMessage())
        }
        applying.lock()
        defer { applying.unlock() }
        guard applied != settings else { return }
        applied = settings
        cvips_configure(Int32(max(0, settings.concurrency)), settings.blockUntrusted ? 1 : 0)
        if settings.blockUntrusted {
            // Savers only ever see pixels Pinhole made: the "untrusted" mark (hostile input) does not apply.
            for name in settings.allowedUntrustedLoaders + ["VipsForeignSaveJxl"] {
                cvips_set_operation_blocked(name, 0)
            }
        }
    }

    /// Whether this libvips has the operation `nickname` (a loader such as `heifload`), blocked or not.
    public static func hasOperation(_ nickname: String) -> Bool {
        _ = initResult
        return vips_type_find("VipsOperation", nickname) != 0
    }

    public static var version: String {
        "\(vips_version(0)).\(vips_version(1)).\(vips_version(2))"
    }

    /// libvips' error text, taken (and cleared) from the global buffer.
    static func takeErrorMessage() -> String {
        guard let text = cvips_error_take() else { return "unknown libvips error" }
        defer { g_free(text) }
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        return message.isEmpty ? "unknown libvips error" : message
    }
}
