import Foundation

/// The pipe protocol between the server and `pinhole decode-worker`, one job at a time:
/// - request: options (UInt32 length + UTF-8: `still=<position>` or empty), then the source's length
///   (UInt64, little-endian) and its bytes;
/// - answer: a status byte, a UTF-8 text (UInt32 length + bytes: the loader on success, the reason on a
///   refusal) and a payload (UInt64 length + bytes: the decoded TIFF). A worker greets the server with
///   one answer when it starts, its text saying which confinement took effect.
public enum WorkerFrames {
    public enum Status: UInt8, Sendable {
        case decoded = 0
        /// The source is bad or unsupported: a 4xx with the text.
        case refused = 1
    }

    /// Reads exactly `count` bytes; nil at end of file (or on any read error) before that.
    public static func read(_ fd: Int32, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return nil }
        }
        return buffer
    }

    /// Writes all of `bytes`; false when the other side has gone (EPIPE: SIGPIPE must be ignored).
    @discardableResult
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return false }
        }
        return true
    }

    @discardableResult
    public static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { write(fd, $0) } }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func integer<T: FixedWidthInteger>(_ bytes: [UInt8]) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
    }

    // MARK: Requests

    public static func writeRequest(_ fd: Int32, _ source: UnsafeRawBufferPointer, options: String = "") -> Bool {
        let text = Array(options.utf8)
        return write(fd, littleEndian(UInt32(text.count)) + text + littleEndian(UInt64(source.count))) && write(fd, source)
    }

    /// The next job's options and source; nil at end of input (the server closed the pipe).
    public static func readRequest(_ fd: Int32, maxBytes: Int) -> (options: String, source: [UInt8])? {
        guard let textLength = read(fd, count: 4) else { return nil }
        let textCount: UInt32 = integer(textLength)
        guard textCount <= 4096, let text = read(fd, count: Int(textCount)), let length = read(fd, count: 8) else { return nil }
        let count: UInt64 = integer(length)
        guard count <= UInt64(maxBytes), let source = read(fd, count: Int(count)) else { return nil }
        return (String(decoding: text, as: UTF8.self), source)
    }

    // MARK: Answers

    @discardableResult
    public static func writeAnswer(_ fd: Int32, status: Status, text: String, payload: [UInt8] = []) -> Bool {
        let utf8 = Array(text.utf8)
        return write(fd, [status.rawValue] + littleEndian(UInt32(utf8.count)) + utf8 + littleEndian(UInt64(payload.count)))
            && write(fd, payload)
    }

    /// An answer; nil when the worker died (or wrote garbage) before finishing it.
    public static func readAnswer(_ fd: Int32, maxPayload: Int) -> (status: Status, text: String, payload: [UInt8])? {
        guard let head = read(fd, count: 5), let status = Status(rawValue: head[0]) else { return nil }
        let textLength: UInt32 = integer(Array(head[1...4]))
        guard textLength <= 65536, let text = read(fd, count: Int(textLength)),
              let lengthBytes = read(fd, count: 8) else { return nil }
        let payloadLength: UInt64 = integer(lengthBytes)
        guard payloadLength <= UInt64(maxPayload), let payload = read(fd, count: Int(payloadLength)) else { return nil }
        return (status, String(decoding: text, as: UTF8.self), payload)
    }
}
