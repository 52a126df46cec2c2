import CSystemSupport

/// What kind of filesystem a store root is on: a network filesystem (NFS, SMB) caches attributes and
/// directory entries per client, so what another node just wrote may be unseen for a few seconds.
public enum SharedFilesystem {
    static let nfs: Int = 0x6969
    static let smb: Int = 0x517B
    static let cifs: Int = 0xFF53_4D42
    static let smb2: Int = 0xFE53_4D42

    public static func isNetworked(_ path: String) -> Bool {
        let type = pinhole_filesystem_type(path)
        return type >= 0 && [nfs, smb, cifs, smb2].contains(Int(type))
    }
}
