import Foundation
import ServiceSupport

/// Registers a job's renditions with ftrack the way ftrack-python-api's `AssetVersion.create_component`
/// and `create_thumbnail` do: a `FileComponent` on the source's version, its `ComponentLocation` in
/// `ftrack.server` (the resource identifier is the component id: Pinhole's file server stores it under
/// that id), its `ftr_meta` metadata; then the version's `thumbnail_id`.
///
/// It asks before it creates: a component that already exists (a crash after ftrack committed but before
/// the job recorded it) is not created again, so nothing is registered twice.
struct FtrackRegistration: Sendable {
    let client: FtrackClient
    /// ftrack's fixed id of the `ftrack.server` location (ftrack_api.symbol.SERVER_LOCATION_ID).
    static let serverLocationID = "3a372bde-05bc-11e4-8908-20c9d081909b"

    enum Failure: Error, CustomStringConvertible {
        case api(FtrackClient.Failure)
        /// The upload reaches Pinhole before its client commits the component to ftrack: retried.
        case sourceNotInFtrack(String)

        var description: String {
            switch self {
            case let .api(failure): failure.description
            case let .sourceNotInFtrack(id): "the source component \(id) is not in ftrack (yet)"
            }
        }
    }

    /// Registers what is not registered yet; `job` records each step as it lands (through `save`).
    func register(_ job: inout ReviewJob, save: (ReviewJob) throws -> Void) async throws(Failure) {
        do {
            let versionID: String
            if let known = job.versionID {
                versionID = known
            } else {
                let found = try await client.query(#"select version_id from FileComponent where id is "\#(job.source)""#)
                guard let id = found.first?["version_id"] as? String, !id.isEmpty else { throw Failure.sourceNotInFtrack(job.source) }
                versionID = id
                job.versionID = id
                try? save(job)
            }
            let ids = job.renditions.filter { !$0.registered }.map(\.componentID)
            var existing = Set<String>()
            if !ids.isEmpty {
                let list = ids.map { "\"\($0)\"" }.joined(separator: ", ")
                for entity in try await client.query("select id from FileComponent where id in (\(list))") {
                    if let id = entity["id"] as? String { existing.insert(id) }
                }
            }
            for index in job.renditions.indices where !job.renditions[index].registered {
                let rendition = job.renditions[index]
                if !existing.contains(rendition.componentID) {
                    _ = try await client.call(Self.operations(for: rendition, versionID: versionID))
                }
                job.renditions[index].registered = true
                try? save(job)
            }
            if let thumbnail = job.renditions.first(where: \.isThumbnail) {
                _ = try await client.call([FtrackClient.update("AssetVersion", id: versionID, attribute: "thumbnail_id", value: thumbnail.componentID)])
            }
            job.registration = .registered
        } catch let failure as Failure {
            throw failure
        } catch let failure as FtrackClient.Failure {
            throw .api(failure)
        } catch {
            throw .api(.malformed(OperatorText.describe(error)))
        }
    }

    /// One transaction per rendition: the component, its location, its `ftr_meta`.
    static func operations(for rendition: Rendition, versionID: String) -> [[String: Any]] {
        // The location's own id is its key, made here as the API's `create` would.
        let locationID = UUID().uuidString.lowercased()
        var operations = [
            FtrackClient.create("FileComponent", key: [rendition.componentID], data: [
                "id": rendition.componentID, "name": rendition.name, "version_id": versionID,
                "file_type": rendition.fileType, "size": rendition.size ?? 0, "system_type": "file",
            ]),
            FtrackClient.create("ComponentLocation", key: [locationID], data: [
                "id": locationID,
                "component": FtrackClient.reference("FileComponent", rendition.componentID),
                "location": FtrackClient.reference("Location", serverLocationID),
                "resource_identifier": rendition.componentID,
            ]),
        ]
        if let meta = rendition.meta {
            operations.append(FtrackClient.create("Metadata", key: [rendition.componentID, "ftr_meta"], data: [
                "parent_id": rendition.componentID, "parent_type": "FileComponent", "key": "ftr_meta", "value": meta,
            ]))
        }
        return operations
    }
}
