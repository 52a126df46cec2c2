import Foundation

/// Shared test helpers: where the shared corpus is, and reading its files.
public enum Corpus {
    /// `../shared/corpus` beside the repository (CI lays `shared/` next to the clone).
    public static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["PINHOLE_CORPUS"] { return URL(fileURLWithPath: override) }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repository.deletingLastPathComponent().appendingPathComponent("shared/corpus")
    }()

    public static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    public static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: url(name)))
    }

    public static let photos = [
        "photo-bythewater-2560x1600.jpg", "photo-coldripple-2560x1600.jpg", "photo-colorfulcups-2560x1600.jpg",
        "photo-eveningglow-2560x1600.jpg", "photo-fallenleaf-2560x1600.jpg", "photo-kite-2560x1600.jpg",
        "photo-onestandsout-2560x1600.jpg", "photo-path-2560x1600.jpg",
    ]

    public static let bad = ["bad/empty.jpg", "bad/truncated.jpg", "bad/text-named.jpg", "bad/garbage.png",
                             "bad/dimensions-65000x65000.jpg", "bad/bomb-30000x30000.png"]
}
