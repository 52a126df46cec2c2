import Foundation

/// Encoded image bytes at a fixed address for as long as any image decoded from them lives.
/// libvips' buffer loaders do not copy their input and decode lazily, so every `Image`
/// derived from these bytes holds a reference to them.
final class PinnedBytes: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(copying bytes: UnsafeRawBufferPointer) {
        count = bytes.count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        if let source = bytes.baseAddress, count > 0 {
            base.copyMemory(from: source, byteCount: count)
        }
    }

    deinit { base.deallocate() }
}

/// A private temporary copy of the source for formats libvips reads only from files (OpenEXR),
/// removed when the last image decoded from it is gone.
final class TemporarySourceFile: @unchecked Sendable {
    let path: String

    init(copying bytes: UnsafeRawBufferPointer) throws {
        var template = Array((NSTemporaryDirectory() + "/pinhole-source-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw VipsError(operation: "load", message: "cannot create a temporary file") }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 {
                unlink(path)
                throw VipsError(operation: "load", message: "cannot write a temporary file")
            }
            offset += written
        }
    }

    deinit { unlink(path) }

    /// OpenEXR's magic number; libvips 8.14 has no buffer loader for it.
    static func isNeeded(for bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x76 && bytes[1] == 0x2F && bytes[2] == 0x31 && bytes[3] == 0x01
    }
}
