import Testing
import ThumborURL
@testable import Imaging

/// The lookup tables reproduce Thumbor's C filters' integer arithmetic (values worked by hand from
/// thumbor/ext/filters/*.c).
@Suite("Thumbor's per-channel filters as lookup tables")
struct ToneTablesTests {
    @Test func brightnessAndContrast() {
        // brightness(40): delta = 255·40/100 = 102 (integer division).
        #expect(ToneTables.brightness(40)[0] == 102 && ToneTables.brightness(40)[200] == 255)
        #expect(ToneTables.brightness(-60)[200] == 47)   // 200 − 153
        // contrast(50): d = 150²/100 = 225; (225·(0 − 128))/100 + 128 = −288 + 128 → 0; 200 → 162 + 128 = 290 → 255.
        #expect(ToneTables.contrast(50)[0] == 0 && ToneTables.contrast(50)[140] == 155)   // 225·12/100 = 27
    }

    @Test func colorizeTruncates() {
        // (100·60 + 255·40)/100 = 162.0
        #expect(ToneTables.colorize(percent: 40, fill: 255)[100] == 162)
        // (33·90 + 0·10)/100 = 29.7 → 29
        #expect(ToneTables.colorize(percent: 10, fill: 0)[33] == 29)
    }

    @Test func curveThroughItsPoints() {
        let identity = ToneTables.curve([.init(x: 0, y: 0), .init(x: 255, y: 255)])
        #expect(identity == (0..<256).map { UInt8($0) })
        let lifted = ToneTables.curve([.init(x: 0, y: 0), .init(x: 128, y: 180), .init(x: 255, y: 255)])
        #expect(lifted[128] == 180 && lifted[0] == 0 && lifted[255] == 255 && lifted[64] > 64)
    }

    @Test func equalizeKeepsThumborsMinimumQuirk() {
        // Band 0 has pixels from value 10, band 1 from value 20: the search stops at 10, band 1 keeps min 0.
        var red = [Int](repeating: 0, count: 256), green = red
        red[10] = 1; red[200] = 3
        green[20] = 2; green[100] = 2
        let tables = ToneTables.equalize([red, green])
        #expect(tables[0][10] == 0 && tables[0][200] == 255)
        #expect(tables[1][20] == 127 && tables[1][100] == 255)   // 2/4·255 = 127.5 → 127
    }
}
