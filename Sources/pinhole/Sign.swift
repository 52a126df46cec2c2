import ArgumentParser
import ThumborURL

/// `pinhole sign`: a signed URL, byte-identical to libthumbor's `CryptoURL(key).generate(**options)`.
struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a signed Thumbor URL (same bytes as libthumbor).")

    @Option(help: "Signing key (default: first of thumbnails.security_keys from --config / PINHOLE_THUMBNAILS_SECURITY_KEYS).")
    var key: String?
    @Option(help: "YAML configuration file to take the key from.")
    var config: String?
    @Option(name: [.short, .long]) var width = 0
    @Option(name: [.customShort("e"), .long]) var height = 0
    @Flag(name: [.short, .long]) var smart = false
    @Flag var meta = false
    @Option(help: "Trim: 'true' or POSITION[:TOLERANCE] (top-left | bottom-right).") var trim: String?
    @Option(help: "Manual crop LEFT,TOP,RIGHT,BOTTOM.") var crop: String?
    @Flag var fitIn = false
    @Flag var fullFitIn = false
    @Flag var adaptiveFitIn = false
    @Flag var adaptiveFullFitIn = false
    @Flag(help: "Flip horizontally (negative width).") var flip = false
    @Flag(help: "Flip vertically (negative height).") var flop = false
    @Option var halign: HorizontalAlignment = .center
    @Option var valign: VerticalAlignment = .middle
    @Option(name: .customLong("filter"), help: "A filter call, e.g. quality(80); repeatable.") var filters: [String] = []
    @Flag var unsafe = false
    @Argument(help: "The image URL, already percent-encoded as it should appear in the URL.") var imageURL: String

    func run() async throws {
        var options = ThumborURLBuilder.Options(imageURL: imageURL)
        options.width = width
        options.height = height
        options.smart = smart
        options.meta = meta
        if let trim {
            if trim == "true" { options.trim = .plain } else {
                let parts = trim.split(separator: ":", omittingEmptySubsequences: false)
                options.trim = .position(String(parts[0]), tolerance: parts.count > 1 ? Int(parts[1]) ?? 0 : 0)
            }
        }
        if let crop {
            let n = crop.split(separator: ",").compactMap { Int($0) }
            guard n.count == 4 else { throw ValidationError("--crop takes LEFT,TOP,RIGHT,BOTTOM") }
            options.crop = CropBox(left: n[0], top: n[1], right: n[2], bottom: n[3])
        }
        options.fitIn = fitIn
        options.fullFitIn = fullFitIn
        options.adaptiveFitIn = adaptiveFitIn
        options.adaptiveFullFitIn = adaptiveFullFitIn
        options.flip = flip
        options.flop = flop
        options.halign = halign
        options.valign = valign
        options.filters = filters
        options.unsafe = unsafe
        let signingKey: String
        if let key { signingKey = key } else if unsafe { signingKey = "" } else {
            guard let first = try await loadConfiguration(file: config).securityKeys.first else {
                throw ValidationError("no key: pass --key or configure thumbnails.security_keys")
            }
            signingKey = first
        }
        do {
            print(try ThumborURLBuilder(key: signingKey).generate(options))
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension HorizontalAlignment: ExpressibleByArgument {}
extension VerticalAlignment: ExpressibleByArgument {}
