import Foundation
import Imaging
import NIOCore
import NIOPosix

/// Thumbnails a large MP4 or MOV from the few parts of it a frame needs (`VideoExcerpt`): the boxes
/// other than media data, then the packets FFmpeg's index names, written at their own offsets into a
/// sparse file in the decoder pool's directory, which a worker reads as if it were the whole video.
struct VideoExcerptReader {
    let source: RangedSource
    let decoders: DecoderPool
    /// Names the source for the pool's remembered failures (the URL and the length).
    let key: String

    /// The frame at `still` (nil: the first), decoded by a worker (with the video's facts when asked),
    /// and how many bytes were read.
    func decode(still: String?, facts: Bool) async throws -> (IsolatedDecoding.Decoded, bytesRead: Int64) {
        let path = decoders.sharedDirectory + "/excerpt-" + UUID().uuidString
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ServiceError(.internalServerError, "cannot write a video excerpt", detail: String(cString: strerror(errno))) }
        defer {
            close(descriptor)
            unlink(path)
        }
        guard ftruncate(descriptor, off_t(source.length)) == 0 else {
            throw ServiceError(.internalServerError, "cannot write a video excerpt", detail: String(cString: strerror(errno)))
        }
        var bytesRead = Int64(source.head.readableBytes)
        try write(source.head, at: 0, to: descriptor)
        for box in try await boxes(bytesRead: &bytesRead) where !box.isMediaData && box.end > Int64(source.head.readableBytes) {
            let bytes = try await source.read(box.offset..<box.end)
            bytesRead += Int64(box.size)
            try write(bytes, at: box.offset, to: descriptor)
        }
        let decoders = self.decoders, key = self.key
        let listing = try await decoders.waiting.run { () -> Result<IsolatedDecoding.Decoded, RenderError> in
            Result { () throws(RenderError) in try decoders.run(WorkerJob(kind: .packets, path: path, firstOnly: still == nil), key: key + "#packets") }
        }.get()
        let index = VideoExcerpt.listing(fromFFprobe: String(decoding: listing.tiff, as: UTF8.self))
        guard !index.packets.isEmpty else { throw ServiceError(.badRequest, "source video has no frame Pinhole could decode (no video packets)") }
        for range in VideoExcerpt.ranges(for: index, position: still) {
            let bytes = try await source.read(range)
            bytesRead += Int64(range.count)
            try write(bytes, at: range.lowerBound, to: descriptor)
        }
        let decoded = try await decoders.waiting.run { () -> Result<IsolatedDecoding.Decoded, RenderError> in
            Result { () throws(RenderError) in try decoders.run(WorkerJob(still: still, path: path, facts: facts), key: key + (still.map { "@" + $0 } ?? "")) }
        }.get()
        return (decoded, bytesRead)
    }

    /// The file's top-level boxes, walked through ranged reads of their headers alone.
    func boxes(bytesRead: inout Int64) async throws(ServiceError) -> [VideoExcerpt.Box] {
        var found: [VideoExcerpt.Box] = []
        var offset: Int64 = 0
        var indexBytes: Int64 = 0
        let head = source.head
        while offset < source.length {
            let header: ByteBuffer
            if offset + 16 <= Int64(head.readableBytes) || Int64(head.readableBytes) == source.length {
                header = head.getSlice(at: head.readerIndex + Int(offset), length: Int(min(16, Int64(head.readableBytes) - offset)))!
            } else {
                header = try await source.read(offset..<min(offset + 16, source.length))
                bytesRead += Int64(header.readableBytes)
            }
            guard let box = header.withUnsafeReadableBytes({ VideoExcerpt.box(header: $0, at: offset, length: source.length) }) else {
                throw ServiceError(.badRequest, "source video could not be decoded: malformed box at byte \(offset)")
            }
            found.append(box)
            guard found.count <= VideoExcerpt.maxBoxes else {
                throw ServiceError(.badRequest, "source video could not be decoded: more than \(VideoExcerpt.maxBoxes) top-level boxes")
            }
            if !box.isMediaData {
                indexBytes += box.size
                guard indexBytes <= VideoExcerpt.maxIndexBytes else {
                    throw ServiceError(.badRequest, "source video could not be decoded: its index is over \(VideoExcerpt.maxIndexBytes) bytes")
                }
            }
            offset = box.end
        }
        return found
    }

    func write(_ bytes: ByteBuffer, at offset: Int64, to descriptor: Int32) throws(ServiceError) {
        let written = bytes.withUnsafeReadableBytes { pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == bytes.readableBytes else {
            throw ServiceError(.internalServerError, "cannot write a video excerpt", detail: String(cString: strerror(errno)))
        }
    }
}
