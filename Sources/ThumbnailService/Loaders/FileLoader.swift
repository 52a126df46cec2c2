import Foundation
import Imaging
import NIOCore
import NIOFileSystem
import NIOPosix
import ServiceSupport
import ThumborURL

/// Thumbor's file_loader: the image part is a path below `root`. Nothing outside the root is ever read:
/// not through `..`, not through encoded slashes, not through a symlink that points out.
public struct FileLoader: ImageLoader {
    public let root: String
    public let maxBytes: Int

    public init(root: String, maxBytes: Int) {
        self.root = (root as NSString).standardizingPath
        self.maxBytes = maxBytes
    }

    public func validate(_ imageURL: String) -> ServiceError? { nil }

    /// The file a key names, if it lies inside the root. Thumbor tries the decoded path, then the literal one.
    func resolve(_ imageURL: String) -> String? {
        let decoded = PercentEncoding.decode(imageURL)
        for candidate in [decoded, imageURL].compactMap({ $0 }) {
            guard !candidate.utf8.contains(0) else { continue }
            let relative = String(candidate.drop(while: { $0 == "/" }))
            guard !relative.isEmpty else { continue }
            let parts = relative.split(separator: "/", omittingEmptySubsequences: true)
            if parts.contains(where: { $0 == ".." }) { continue }
            let joined = (root as NSString).appendingPathComponent(relative)
            // Resolve symlinks and require the real path to stay under the real root.
            guard let real = realPath(joined), let realRoot = realPath(root) else { continue }
            guard real == realRoot || real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") else { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            return real
        }
        return nil
    }

    private func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func loadSource(_ imageURL: String, rangedAbove: Int64) async throws(ServiceError) -> LoadedSource {
        guard let path = resolve(imageURL) else { throw ServiceError.sourceNotFound }
        var status = stat()
        if stat(path, &status) == 0, Int64(status.st_size) > rangedAbove {
            let length = Int64(status.st_size)
            let head = try await Self.read(path, 0..<min(length, Int64(RangedSource.headBytes)))
            if head.withUnsafeReadableBytes(VideoExcerpt.isExcerptable) {
                return .ranged(RangedSource(head: head, length: length) { range throws(ServiceError) in try await Self.read(path, range) })
            }
        }
        return .whole(try await load(imageURL))
    }

    /// Bytes `range` of the file at `path`.
    static func read(_ path: String, _ range: Range<Int64>) async throws(ServiceError) -> ByteBuffer {
        do {
            return try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                try await handle.readChunk(fromAbsoluteOffset: range.lowerBound, length: .bytes(Int64(range.count)))
            }
        } catch {
            throw ServiceError(.notFound, "source image not found", detail: OperatorText.describe(error))
        }
    }

    public func load(_ imageURL: String) async throws(ServiceError) -> ByteBuffer {
        guard let path = resolve(imageURL) else { throw ServiceError.sourceNotFound }
        do {
            return try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                let info = try await handle.info()
                if info.size > Int64(maxBytes) {
                    throw ServiceError(.badRequest, "source is larger than \(maxBytes) bytes")
                }
                return try await handle.readToEnd(maximumSizeAllowed: .bytes(Int64(maxBytes)))
            }
        } catch let error as ServiceError {
            throw error
        } catch {
            throw ServiceError(.notFound, "source image not found", detail: OperatorText.describe(error))
        }
    }
}
