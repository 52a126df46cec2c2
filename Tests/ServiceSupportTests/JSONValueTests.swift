import Foundation
import ServiceSupport
import Testing

@Suite("JSON values: Python's number spellings kept")
struct JSONValueTests {
    @Test func floatsAndIntsAreSpelledAsPythonPrintsThem() {
        let value = JSONValue.object(["type": .string("resize"), "width": .float(300), "height": .int(188), "z": .float(0.5)])
        #expect(value.text(indent: 0) == #"{"height":188,"type":"resize","width":300.0,"z":0.5}"#)
    }

    @Test func foundationValuesConvertAndNestedValuesAreKept() throws {
        let document: [String: Any] = ["a": [1, 2], "b": NSNull(), "c": true, "d": "x\n\"y\"",
                                       "e": [JSONValue.float(3)], "f": ["g": 2.5]]
        let text = JSONValue(document).text()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(parsed["d"] as? String == "x\n\"y\"")
        #expect(parsed["c"] as? Bool == true)
        #expect(text.contains("3.0"))
        #expect(JSONValue(document).text(indent: 0) == #"{"a":[1,2],"b":null,"c":true,"d":"x\n\"y\"","e":[3.0],"f":{"g":2.5}}"#)
    }

    @Test func controlCharactersAreEscaped() {
        #expect(JSONValue.string("\u{1}\u{2028}").text() == #""\u0001\u2028""#)
        #expect(JSONValue.float(.nan).text() == "null")
    }
}
