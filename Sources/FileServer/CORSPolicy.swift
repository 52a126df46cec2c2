import HTTPTypes

/// CORS as ftrack's nginx example answers it: the allowed origin on every response, and preflight
/// `OPTIONS` → 204 with the methods and headers a browser upload needs and a max age.
public struct CORSPolicy: Sendable {
    let origins: [String]
    let maxAge: Int

    public init(origins: [String], maxAge: Int) {
        self.origins = origins
        self.maxAge = maxAge
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, or nil when it is not allowed.
    func allowedOrigin(for origin: String?) -> String? {
        if origins.contains("*") { return "*" }
        guard let origin, origins.contains(origin) else { return nil }
        return origin
    }

    func apply(to headers: inout HTTPFields, origin: String?) {
        guard let allowed = allowedOrigin(for: origin) else { return }
        headers[.accessControlAllowOrigin] = allowed
        headers[.accessControlExposeHeaders] = "Content-Length, Content-Range, Content-Disposition, ETag, Accept-Ranges"
        if allowed != "*" { headers[.vary] = "Origin" }
    }

    func preflight(methods: String, origin: String?) -> HTTPFields {
        var headers = HTTPFields()
        apply(to: &headers, origin: origin)
        headers[.accessControlAllowMethods] = methods
        headers[.accessControlAllowHeaders] = "content-type, content-md5, content-length, content-disposition"
        headers[.accessControlMaxAge] = String(maxAge)
        return headers
    }
}
