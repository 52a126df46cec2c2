import Configuration
import ServiceSupport

/// How a node works with others behind a load balancer (section `cluster`).
struct ClusterConfiguration {
    /// The load balancer's thumbnail address (nginx with `hash $request_uri consistent`): pre-warm,
    /// on upload and from `pinhole prewarm`, goes through it, so each render lands on its URL's home
    /// node. Empty: render on this node.
    var balancerURL = ""
    /// How often the removal journal is read (other nodes' removals purge this node's caches).
    var removalPollSeconds = 1.0
    /// Removal journal entries older than this are deleted.
    var removalRetentionDays = 7

    static let keys: [(key: String, meaning: String)] = [
        ("cluster.balancer_url", "load balancer's thumbnail URL: pre-warm goes through it to each URL's home node (empty = this node)"),
        ("cluster.removal_poll_seconds", "how often other nodes' removals are read from the shared store (to purge this node's caches)"),
        ("cluster.removal_retention_days", "days removal journal entries are kept (a node down longer keeps stale thumbnails)"),
    ]

    init() {}

    init(reader: ConfigReader) throws {
        let r = ValueReader(reader: reader, prefix: "cluster")
        balancerURL = try r.string("balancer_url") ?? balancerURL
        while balancerURL.hasSuffix("/") { balancerURL.removeLast() }
        if !balancerURL.isEmpty, !(balancerURL.hasPrefix("http://") || balancerURL.hasPrefix("https://")) {
            throw ConfigurationError(key: "cluster.balancer_url", problem: "'\(balancerURL)' is not an http:// or https:// URL")
        }
        removalPollSeconds = try r.double("removal_poll_seconds", above: 0) ?? removalPollSeconds
        removalRetentionDays = try r.int("removal_retention_days", in: 1...3650) ?? removalRetentionDays
    }
}
