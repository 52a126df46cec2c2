import FileServer
import ThumbnailService
import ThumborURL

/// The source URL of a component, as it appears (percent-encoded) in the image part of a thumbnail URL.
struct ComponentSources {
    let template: String
    let secret: String?

    init(thumbnails: ServiceConfiguration, files: FileServerConfiguration) {
        template = thumbnails.prewarmSourceURL.isEmpty
            ? "http://\(files.host):\(files.port)/get?id={id}&signature={signature}" : thumbnails.prewarmSourceURL
        secret = files.secrets.first
    }

    /// A component id becomes its signed source URL; a URL is taken as it is. Either is then encoded
    /// whole, as ftrack puts it in thumbnail URLs.
    func imageURL(for input: String) -> String {
        let url: String
        if input.contains("://") {
            url = input
        } else {
            let signature = secret.map { RequestSignature.sign("id=\(input)", secret: $0) } ?? ""
            // Ids are UUIDs and signatures URL-safe base64: both go into the query as they are.
            url = template.replacingOccurrences(of: "{id}", with: input).replacingOccurrences(of: "{signature}", with: signature)
        }
        return PercentEncoding.quote(url, safe: "")
    }
}
