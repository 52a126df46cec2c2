/// Encoded image bytes at a fixed address for as long as any image decoded from them lives.
/// libvips' buffer loaders do not copy their input and decode lazily, so every `VipsImage`
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
