import Logging
import NIOCore
import NIOEmbedded
@testable import ServiceSupport
import Testing
@testable import HTTPServing

@Suite("Request ids")
struct RequestIDTests {
    @Test func madeIdsAreSixteenHexCharactersAndUnique() {
        let ids = (0..<1000).map { _ in RequestID.make() }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test func aClientsPlainTokenIsKeptAnythingElseReplaced() {
        #expect(RequestID.accepting("proxy-7f3a.91:x_y") == "proxy-7f3a.91:x_y")
        for offered in [nil, "", "has space", "quote\"", "new\nline", String(repeating: "a", count: 129), "ünïcode"] {
            let id = RequestID.accepting(offered)
            #expect(id != offered && id.count == 16, "\(String(describing: offered))")
        }
    }
}

@Suite("Connection registry: room is made from the longest-waiting idle connection")
struct ConnectionRegistryTests {
    @Test func evictsTheLongestWaitingIdleConnectionThenRefuses() throws {
        let registry = ConnectionRegistry(limit: 2)
        let first = ConnectionTicket(channel: EmbeddedChannel())
        let second = ConnectionTicket(channel: EmbeddedChannel())
        #expect(registry.admit(first).0 == .admitted)
        #expect(registry.admit(second).0 == .admitted)
        // The first has a request in progress: the second, though newer, is the one closed for room.
        first.setWaiting(false)
        let third = ConnectionTicket(channel: EmbeddedChannel())
        let (admission, open) = registry.admit(third)
        #expect(admission == .admittedByEvicting && open == 2)
        #expect(!second.channel.isActive || (second.channel as! EmbeddedChannel).isActive == false)
        third.setWaiting(false)
        // Both remaining connections are busy: a new one is refused.
        #expect(registry.admit(ConnectionTicket(channel: EmbeddedChannel())).0 == .refused)
        #expect(registry.remove(first) == 1)
    }
}

@Suite("Limits configuration")
struct ConnectionLimitsTests {
    @Test func readsEachKeyAndRefusesBadValues() async throws {
        let reader = try await ConfigurationSource.reader(file: nil, environment: [
            "PINHOLE_FILES_HEADER_TIMEOUT": "2.5", "PINHOLE_FILES_MAX_CONNECTIONS": "8", "PINHOLE_FILES_BODY_MIN_RATE": "0",
        ])
        var limits = ConnectionLimits()
        try limits.read(ValueReader(reader: reader, prefix: "files"))
        #expect(limits.headerTimeout == 2.5 && limits.maxConnections == 8 && limits.bodyMinRate == 0 && limits.idleTimeout == 60)
        let bad = try await ConfigurationSource.reader(file: nil, environment: ["PINHOLE_FILES_MAX_URL_BYTES": "12"])
        #expect(throws: ConfigurationError.self) { try limits.read(ValueReader(reader: bad, prefix: "files")) }
    }
}

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func numbersStayNumbersAndStringsAreEscaped() {
        var line = ""
        JSONLogHandler.append(.stringConvertible(404), to: &line)
        line += ","
        JSONLogHandler.append(.stringConvertible(12.5), to: &line)
        line += ","
        JSONLogHandler.append(.string("a \"quoted\"\nline\u{1}"), to: &line)
        line += ","
        JSONLogHandler.append(.array([.string("x"), .stringConvertible(true)]), to: &line)
        #expect(line == #"404,12.5,"a \"quoted\"\nline\u0001",["x",true]"#)
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        let stamp = JSONLogHandler.timestamp()
        #expect(stamp.count == 24 && stamp.hasSuffix("Z") && stamp.dropFirst(19).first == ".")
    }
}
