import Imaging
import ServiceSupport
import ThumborURL

/// Thumbor's `/meta` JSON (spec §5.6): the operations a render performs, its target and focal points.
/// Unlike Thumbor 7.8.0, `source.width/height` report the true source size, and `target` is always the
/// size of the image the same URL serves (`served`).
enum MetaDocument {
    static func json(for plan: RenderPlan, imageURL: String, frameCount: Int, served: PixelSize, video: VideoFacts? = nil) -> String {
        let operations = plan.geometry.operations.map { operation in
            "{" + ([#""type": "\#(operation.thumborType)""#] + operation.thumborFields.map { #""\#($0.name)": \#($0.value.json)"# })
                .joined(separator: ", ") + "}"
        }
        // Thumbor's target is the result of the last crop or resize, else the final image's size: after a
        // filter that changes the size (upscale, proportion, rotate, fill, frame) its last operation no
        // longer describes the image served. The served size is the truth; Thumbor's numbers (a float
        // width after fit-in) are kept where they agree with it.
        var target = (width: PyNumber.int(served.width), height: PyNumber.int(served.height))
        for operation in plan.geometry.operations {
            switch operation {
            case let .crop(r): target = (.int(r.width), .int(r.height))
            case let .resize(w, h): target = (w, h)
            default: break
            }
        }
        if Int(target.width.value) != served.width || Int(target.height.value) != served.height {
            target = (.int(served.width), .int(served.height))
        }
        let points = plan.geometry.focalPoints.map { p in
            #"{"x": \#(p.x), "y": \#(p.y), "z": \#(PyNumber.float(p.weight).json), "height": \#(p.height), "width": \#(p.width), "origin": "\#(p.origin.rawValue)"}"#
        }
        // A video's source also says how long it runs and how fast (seconds; frames per second).
        let videoFields = video.map { #", "duration": \#(PyNumber.float($0.duration).json), "frameRate": \#(PyNumber.float($0.frameRate).json)"# } ?? ""
        return #"{"thumbor": {"source": {"url": \#(jsonString(imageURL)), "width": \#(plan.logicalSource.width), "height": \#(plan.logicalSource.height), "frameCount": \#(frameCount)\#(videoFields)}, "operations": [\#(operations.joined(separator: ", "))], "target": {"width": \#(target.width.json), "height": \#(target.height.json)}, "focal_points": [\#(points.joined(separator: ", "))]}}"#
    }

    static func jsonString(_ text: String) -> String { JSONValue.quoted(text) }
}
