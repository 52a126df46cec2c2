import _NIOFileSystem

extension FileHandleProtocol {
    /// Closes the handle even in a cancelled task (a request cut when the shutdown grace ends): NIO's
    /// `close()` can refuse to run there, and a handle released unclosed is a fatal error. The
    /// descriptor is then detached and closed directly.
    func closeEvenIfCancelled() async {
        if !Task.isCancelled, (try? await close()) != nil { return }
        if let descriptor = try? detachUnsafeFileDescriptor() { try? descriptor.close() }
    }
}
