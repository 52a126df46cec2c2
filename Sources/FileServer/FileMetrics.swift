import HTTPServing
import Metrics

/// The file server's transfer counters, from each finished request: uploads stored and downloads served,
/// with their bytes (an `X-Accel-Redirect` download counts once with the bytes nginx was told to send: none here).
enum FileMetrics {
    static let uploads = Counter(label: "pinhole_files_uploads_total")
    static let uploadBytes = Counter(label: "pinhole_files_upload_bytes_total")
    static let downloads = Counter(label: "pinhole_files_downloads_total")
    static let downloadBytes = Counter(label: "pinhole_files_download_bytes_total")

    @Sendable static func record(_ request: CompletedRequest) {
        switch request.route {
        case "put" where (200..<300).contains(request.status):
            uploads.increment()
            uploadBytes.increment(by: request.requestBytes)
        case "get" where request.status == 200 || request.status == 206:
            downloads.increment()
            downloadBytes.increment(by: request.responseBytes)
        default:
            break
        }
    }
}
