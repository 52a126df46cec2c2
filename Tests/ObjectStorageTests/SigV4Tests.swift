import Foundation
import Testing
@testable import ObjectStorage

/// AWS's published Signature Version 4 examples: the S3 developer guide's header-signing examples
/// (examplebucket, 2013-05-24) and the SigV4 test suite's vanilla requests (service "service", 2015-08-30).
@Suite("SigV4: AWS's published test vectors")
struct SigV4Tests {
    static let s3Signer = SigV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z
    static let suiteSigner = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                   region: "us-east-1", service: "service")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z

    func signature(_ authorization: String) -> String {
        String(authorization.split(separator: "=").last ?? "")
    }

    func s3(_ method: String, _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [],
            payload: String = SigV4.emptyPayloadHash) -> String {
        let all = [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"), ("x-amz-content-sha256", payload)] + headers
        return Self.s3Signer.authorization(method: method, path: path, query: query, headers: all, payloadHash: payload, date: Self.s3Date)
    }

    @Test func timestamps() {
        #expect(SigV4.timestamps(Self.s3Date) == ("20130524T000000Z", "20130524"))
        #expect(SigV4.timestamps(Self.suiteDate) == ("20150830T123600Z", "20150830"))
    }

    @Test func getObjectWithRange() {
        let authorization = s3("GET", "/test.txt", headers: [("Range", "bytes=0-9")])
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObjectWithAnEscapedKeyAndAPayload() {
        let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"  // SHA-256 of "Welcome to Amazon S3."
        let path = "/" + SigV4.encode("test$file.text", keepingSlash: true)
        #expect(path == "/test%24file.text")
        let authorization = s3("PUT", path, headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                               payload: payload)
        #expect(signature(authorization) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycleWithAValuelessParameter() {
        #expect(signature(s3("GET", "/", query: [("lifecycle", "")])) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjectsSortsTheQuery() {
        #expect(signature(s3("GET", "/", query: [("prefix", "J"), ("max-keys", "2")]))
            == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func suiteGetVanilla() {
        let authorization = Self.suiteSigner.authorization(
            method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4.emptyPayloadHash, date: Self.suiteDate)
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func suiteQueryOrderKeyCase() {
        let authorization = Self.suiteSigner.authorization(
            method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4.emptyPayloadHash, date: Self.suiteDate)
        #expect(signature(authorization) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    @Test func encoding() {
        #expect(SigV4.encode("a b*(c)~-_.") == "a%20b%2A%28c%29~-_.")
        #expect(SigV4.encode("ü/x", keepingSlash: true) == "%C3%BC/x")
        #expect(SigV4.encode("a/b") == "a%2Fb")
    }

    @Test func addressing() {
        let path = S3Location(endpoint: "http://127.0.0.1:8333/", bucket: "components", region: "us-east-1", accessKey: "k", secretKey: "s")
        #expect(path.target(key: "a b/c") == ("http://127.0.0.1:8333", "127.0.0.1:8333", "/components/a%20b/c"))
        let virtual = S3Location(endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "studio", region: "eu-west-1",
                                 accessKey: "k", secretKey: "s", addressing: .virtualHost)
        #expect(virtual.target(key: "id") == ("https://studio.s3.eu-west-1.amazonaws.com", "studio.s3.eu-west-1.amazonaws.com", "/id"))
        #expect(virtual.target(key: "") == ("https://studio.s3.eu-west-1.amazonaws.com", "studio.s3.eu-west-1.amazonaws.com", "/"))
    }
}
