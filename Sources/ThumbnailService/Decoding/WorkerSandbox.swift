import Foundation

/// What a decode worker is started inside, best first:
/// - `bubblewrap`: new network, IPC, PID and UTS namespaces; the system (`/usr`, `/etc`, `/opt`, the
///   binary's directory) read-only, nothing else of the host's files (no components, no cache, no home);
///   a private `/tmp` with only the worker's own directory writable and the pool's directory (ImageMagick's
///   policy, video excerpts) readable; no capabilities; killed with bwrap.
/// - `unshare`: util-linux `unshare --net` (as root; else in a user namespace where the kernel allows
///   one): no network, the host's files as the server sees them.
/// - `none`: rlimits and the timeout alone (they apply inside every sandbox too).
public enum WorkerSandbox: Equatable, Sendable, CustomStringConvertible {
    case bubblewrap, unshare, none

    static let bwrap = "/usr/bin/bwrap", unshareProgram = "/usr/bin/unshare"

    /// The sandboxes this machine has the programs for, best first; `none` last.
    public static var available: [WorkerSandbox] {
        var found: [WorkerSandbox] = []
        if FileManager.default.isExecutableFile(atPath: bwrap) { found.append(.bubblewrap) }
        if FileManager.default.isExecutableFile(atPath: unshareProgram) { found.append(.unshare) }
        return found + [.none]
    }

    public var description: String {
        switch self {
        case .bubblewrap: "bubblewrap"
        case .unshare: "unshare"
        case .none: "none"
        }
    }

    /// The command put before the worker's own (empty for `none`).
    func command(workerDirectory: String, poolDirectory: String, executable: String) -> [String] {
        command(readOnly: [poolDirectory], writable: [workerDirectory], workingDirectory: workerDirectory, executable: executable)
    }

    /// The command put before a confined program's own (empty for `none`): under bubblewrap it sees the
    /// system, `readOnly` (files or directories), and can write only `writable` (bound after, so a writable
    /// directory may sit inside a read-only one) and a private `/tmp`. `executable`'s directory is bound
    /// read-only when it is outside `/usr` and `/opt` (a Pinhole binary in a checkout).
    public func command(readOnly: [String], writable: [String], workingDirectory: String, executable: String?) -> [String] {
        switch self {
        case .none:
            return []
        case .unshare:
            return geteuid() == 0 ? [Self.unshareProgram, "--net", "--"] : [Self.unshareProgram, "--user", "--map-root-user", "--net", "--"]
        case .bubblewrap:
            // A private /tmp first: everything bound after it shows through, even from under the host's /tmp
            // (the binary of a checkout in /tmp, the pool's directory).
            var arguments = [Self.bwrap, "--unshare-net", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--die-with-parent",
                             "--cap-drop", "ALL", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
            let fileManager = FileManager.default
            for path in ["/usr", "/etc", "/opt"] where fileManager.fileExists(atPath: path) {
                arguments += ["--ro-bind", path, path]
            }
            // Debian's merged /usr: /bin, /lib and friends are symbolic links into it.
            for path in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
                if let target = try? fileManager.destinationOfSymbolicLink(atPath: path) {
                    arguments += ["--symlink", target, path]
                } else if fileManager.fileExists(atPath: path) {
                    arguments += ["--ro-bind", path, path]
                }
            }
            if let executable {
                let binaryDirectory = (executable as NSString).deletingLastPathComponent
                if !["/usr/", "/opt/"].contains(where: { binaryDirectory.hasPrefix($0) }) {
                    arguments += ["--ro-bind", binaryDirectory, binaryDirectory]
                }
            }
            for path in readOnly { arguments += ["--ro-bind", path, path] }
            for path in writable { arguments += ["--bind", path, path] }
            arguments += ["--chdir", workingDirectory, "--"]
            return arguments
        }
    }
}
