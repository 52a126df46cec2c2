import Testing
@testable import ThumborURL

@Suite("URL signing (spec §2)")
struct SignerTests {
    let signer = URLSigner(key: "spec-example-key")

    @Test("worked examples", arguments: [
        ("spec-example-key", "300x200/smart/example.jpg", "205Js9Qpd2YcVPKrYfkC0bDgbRs="),
        ("spec-example-key", "fit-in/100x100/filters:quality(70)/http%3A%2F%2Fexample.org%2Fa.png", "EdWoUXSAgs1LU_7rtm6NbFt_shg="),
        ("spec-example-key", "fit-in/100x100/filters:quality(70)/http://example.org/a.png", "JQnw7VpwePUjw5gOrGLEIU9TESE="),
        ("MY_SECURE_KEY", "meta/200x0/example.jpg", "e4HloO0Zjsrk2vQI-azOOWRQNoE="),
    ])
    func workedExamples(key: String, path: String, expected: String) {
        #expect(URLSigner(key: key).signature(for: path) == expected)
    }

    @Test func signatureIsURLSafeAndPadded() {
        let signature = signer.signature(for: "fit-in/100x100/filters:quality(70)/http%3A%2F%2Fexample.org%2Fa.png")
        #expect(signature.count == 28)
        #expect(signature.hasSuffix("="))
        #expect(!signature.contains("+") && !signature.contains("/"))
    }

    @Test func verifierAcceptsEncodedPaddingAndRejectsMissingPadding() throws {
        let verifier = SignatureVerifier(keys: ["spec-example-key"])
        for (path, valid) in [
            ("/205Js9Qpd2YcVPKrYfkC0bDgbRs=/300x200/smart/example.jpg", true),
            ("/205Js9Qpd2YcVPKrYfkC0bDgbRs%3D/300x200/smart/example.jpg", true),
            ("/205Js9Qpd2YcVPKrYfkC0bDgbRs/300x200/smart/example.jpg", false),
            ("/205js9Qpd2YcVPKrYfkC0bDgbRs=/300x200/smart/example.jpg", false),
            ("/205Js9Qpd2YcVPKrYfkC0bDgbRs=/300x200/smart/example.jpg/", false),
            ("/205Js9Qpd2YcVPKrYfkC0bDgbRs=/300x201/smart/example.jpg", false),
        ] {
            let request = try ThumborPath.parse(path)
            #expect(verifier.isValid(rawPath: path, request: request) == valid, "\(path)")
        }
    }

    @Test func keyRotationAcceptsAnyConfiguredKey() throws {
        let path = "/205Js9Qpd2YcVPKrYfkC0bDgbRs=/300x200/smart/example.jpg"
        let request = try ThumborPath.parse(path)
        #expect(SignatureVerifier(keys: ["new-key", "spec-example-key"]).isValid(rawPath: path, request: request))
        #expect(!SignatureVerifier(keys: ["new-key"]).isValid(rawPath: path, request: request))
        #expect(!SignatureVerifier(keys: []).isValid(rawPath: path, request: request))
    }

    @Test func signedStringIsTheRawEncodedPath() throws {
        // Signing the decoded form of an encoded URL must not verify: clients sign the bytes they send.
        let verifier = SignatureVerifier(keys: ["spec-example-key"])
        let path = "/JQnw7VpwePUjw5gOrGLEIU9TESE=/fit-in/100x100/filters:quality(70)/http%3A%2F%2Fexample.org%2Fa.png"
        #expect(!verifier.isValid(rawPath: path, request: try ThumborPath.parse(path)))
    }
}

@Suite("libthumbor-compatible URL builder")
struct URLBuilderTests {
    @Test func specExample() throws {
        var options = ThumborURLBuilder.Options(imageURL: "example.jpg")
        options.meta = true
        options.trim = .position("bottom-right", tolerance: 5)
        options.crop = CropBox(left: 10, top: 10, right: 90, bottom: 90)
        options.flip = true
        options.halign = .left
        options.valign = .top
        let plain = try ThumborURLBuilder.plainImageURL(options)
        #expect(plain == "meta/trim:bottom-right:5/10x10:90x90/-0x0/left/top/example.jpg")
    }

    @Test func signedAndUnsafeForms() throws {
        var options = ThumborURLBuilder.Options(imageURL: "example.jpg")
        options.width = 300
        options.height = 200
        options.smart = true
        let builder = ThumborURLBuilder(key: "spec-example-key")
        #expect(try builder.generate(options) == "/205Js9Qpd2YcVPKrYfkC0bDgbRs=/300x200/smart/example.jpg")
        options.unsafe = true
        #expect(try builder.generate(options) == "unsafe/300x200/smart/example.jpg")
    }

    @Test("flip and flop spellings", arguments: [
        (300, 0, true, false, "-300x0"), (0, 200, false, true, "0x-200"), (0, 0, true, true, "-0x-0"),
        (0, 0, false, true, "0x-0"), (300, 200, true, true, "-300x-200"),
    ])
    func flips(width: Int, height: Int, flip: Bool, flop: Bool, expected: String) throws {
        var options = ThumborURLBuilder.Options(imageURL: "a.jpg")
        options.width = width; options.height = height; options.flip = flip; options.flop = flop
        #expect(try ThumborURLBuilder.plainImageURL(options) == "\(expected)/a.jpg")
    }

    @Test func fitInWithoutSizeIsAnError() {
        var options = ThumborURLBuilder.Options(imageURL: "a.jpg")
        options.fitIn = true
        #expect(throws: ThumborURLBuilder.BuildError.fitInNeedsSize) { try ThumborURLBuilder.plainImageURL(options) }
    }

    @Test func filtersAndTrimForms() throws {
        var options = ThumborURLBuilder.Options(imageURL: "a.jpg")
        options.trim = .plain
        options.filters = ["quality(70)", "grayscale()"]
        options.fullFitIn = true
        options.width = 10
        #expect(try ThumborURLBuilder.plainImageURL(options) == "trim/full-fit-in/10x0/filters:quality(70):grayscale()/a.jpg")
    }
}
