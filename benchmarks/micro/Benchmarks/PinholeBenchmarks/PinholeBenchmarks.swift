import Benchmark
import Foundation
import Imaging
import ThumborURL
import Vips

/// URL parse, sign, plan and one thumbnail: the per-request costs below the HTTP layer.
let benchmarks: @Sendable () -> Void = {
    let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/corpus")
    let photo = try! Array(Data(contentsOf: corpus.appendingPathComponent("photo-kite-2560x1600.jpg")))
    let path = "/205Js9Qpd2YcVPKrYfkC0bDgbRs=/fit-in/300x300/filters:quality(70)/http%3A%2F%2Ffiles.example%3A9000%2Fget%3Fid%3D3f2504e0-4f89-11d3-9a0c-0305e82c3301%26signature%3Dabc"
    let signer = URLSigner(key: "benchmark-key")
    try! VipsRuntime.start()
    let header = try! photo.withUnsafeBytes { try Image.header(of: $0) }
    let request = try! ThumborPath.parse("/unsafe/fit-in/300x300/photo.jpg")

    Benchmark("URL parse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? ThumborPath.parse(path)) }
    }
    Benchmark("sign") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(signer.signature(for: "fit-in/300x300/photo.jpg")) }
    }
    Benchmark("plan") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? RenderPlan.make(request: request, header: header, settings: RenderSettings())) }
    }
    Benchmark("one thumbnail (2560x1600 JPEG → fit-in/300x300)", configuration: .init(maxDuration: .seconds(5))) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? photo.withUnsafeBytes { try Renderer.render($0, request: request, settings: RenderSettings()) })
        }
    }
}
