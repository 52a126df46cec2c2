import Foundation
import Synchronization

/// The access log: one line per response, in the process's log format (`log.format`), with the same
/// fields whichever port answered. Lines are formatted directly and written in batches (every 100 ms,
/// or at 64 KB) instead of one flushed write per request through swift-log, which measured 35 % of
/// the throughput of cache hits.
public final class AccessLog: Sendable {
    public struct Line {
        public var requestID, service, method, path, cache, remote: String
        public var status, bytes: Int
        public var milliseconds: Double

        public init(requestID: String, service: String, method: String, path: String, status: Int, milliseconds: Double, bytes: Int,
                    cache: String, remote: String) {
            (self.requestID, self.service, self.method, self.path, self.status) = (requestID, service, method, path, status)
            (self.milliseconds, self.bytes, self.cache, self.remote) = (milliseconds, bytes, cache, remote)
        }
    }

    let format: LogConfiguration.Format
    private let pending = Mutex<[UInt8]>([])
    private let writing = Mutex<Void>(())
    private let stamp = Mutex<(second: Int, text: String)>((-1, ""))
    private let descriptor: Int32

    /// `descriptor`: where lines go (standard error, like every other log line).
    public init(format: LogConfiguration.Format, descriptor: Int32 = 2) {
        self.format = format
        self.descriptor = descriptor
        let flusher = Thread { [weak self] in
            while let log = self {
                log.flush()
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        flusher.name = "pinhole-access-log"
        flusher.start()
    }

    public func record(_ line: Line) {
        var text = ""
        text.reserveCapacity(256 + line.path.utf8.count)
        switch format {
        case .text:
            text += timestamp(json: false)
            text += " info pinhole.access: bytes=\(line.bytes) cache=\(line.cache) duration_ms=\(line.milliseconds) method=\(line.method) path="
            text += line.path
            text += " remote=\(line.remote) request_id=\(line.requestID) service=\(line.service) status=\(line.status) [HTTPServing] request\n"
        case .json:
            text += "{\"time\":\"\(timestamp(json: true))\",\"level\":\"info\",\"label\":\"pinhole.access\",\"message\":\"request\",\"bytes\":\(line.bytes),\"cache\":"
            JSONLogHandler.appendString(line.cache, to: &text)
            text += ",\"duration_ms\":\(line.milliseconds),\"method\":"
            JSONLogHandler.appendString(line.method, to: &text)
            text += ",\"path\":"
            JSONLogHandler.appendString(line.path, to: &text)
            text += ",\"remote\":"
            JSONLogHandler.appendString(line.remote, to: &text)
            text += ",\"request_id\":"
            JSONLogHandler.appendString(line.requestID, to: &text)
            text += ",\"service\":"
            JSONLogHandler.appendString(line.service, to: &text)
            text += ",\"status\":\(line.status)}\n"
        }
        let full = pending.withLock { pending in
            pending.append(contentsOf: text.utf8)
            return pending.count >= 64 * 1024
        }
        if full { flush() }
    }

    /// Writes what is pending (the flusher does so every 100 ms; call it before the process exits).
    public func flush() {
        writing.withLock { _ in
            let bytes = pending.withLock { pending -> [UInt8] in
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written <= 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }

    /// The time as each format writes it: swift-log's text stamp (per second), or ISO 8601 UTC with ms.
    private func timestamp(json: Bool) -> String {
        if json { return JSONLogHandler.timestamp() }
        let second = Int(Date().timeIntervalSince1970)
        return stamp.withLock { stamp in
            if stamp.second != second {
                var time = time_t(second)
                var parts = tm()
                localtime_r(&time, &parts)
                var buffer = [CChar](repeating: 0, count: 64)
                strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
                stamp = (second, String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return stamp.text
        }
    }
}
