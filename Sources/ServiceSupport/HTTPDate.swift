import Foundation
import Synchronization

/// RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) without a shared, non-thread-safe formatter.
public enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func string(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// Parses an IMF-fixdate (the only form servers send and the one clients echo back).
    public static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        // A client's header: out-of-range fields are refused here, before they are narrowed to Int32.
        guard clock.count == 3, (1...31).contains(day), (1...9999).contains(year), (0...23).contains(clock[0]),
              (0...59).contains(clock[1]), (0...60).contains(clock[2]) else { return nil }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(clock[0])
        fields.tm_min = Int32(clock[1])
        fields.tm_sec = Int32(clock[2])
        let seconds = timegm(&fields)
        return seconds < 0 ? nil : Date(timeIntervalSince1970: Double(seconds))
    }
}

/// `HTTPDate.string(now + offset)`, formatted once per second rather than once per response: the
/// Expires header of every cache hit.
public final class HTTPDateClock: Sendable {
    private let last = Mutex<(second: Int, offset: Int, text: String)>((-1, 0, ""))

    public init() {}

    public func string(secondsFromNow offset: Int) -> String {
        let second = Int(Date().timeIntervalSince1970)
        return last.withLock { last in
            if last.second != second || last.offset != offset {
                last = (second, offset, HTTPDate.string(Date(timeIntervalSince1970: Double(second + offset))))
            }
            return last.text
        }
    }
}
