import CSystemSupport
import Foundation
import ServiceLifecycle

/// glibc gives every thread that allocates its own malloc arena; with render threads, NIO threads and
/// the cooperative pool that multiplies resident memory for no speed (shared/notes/libvips-swift.md §7).
/// Two arenas, as MALLOC_ARENA_MAX=2 would set, unless the operator chose otherwise.
/// And a fixed 1 MiB mmap threshold: glibc's default raises the threshold to the size of every large
/// block freed (up to 32 MiB), after which decoders' multi-megabyte buffers come from the arenas and stay
/// resident (measured: peak RSS 366 → 282 MB on the 14.7 MP progressive photo at c=8).
func limitMallocArenas() {
    let environment = ProcessInfo.processInfo.environment
    _ = pinhole_tune_malloc(environment["MALLOC_ARENA_MAX"] == nil ? 2 : 0,
                            environment["MALLOC_MMAP_THRESHOLD_"] == nil ? 1 << 20 : 0)
}

/// Gives free heap pages back to the system every second (glibc's `malloc_trim`). Renders of every
/// size leave free holes in the two arenas that glibc keeps resident, so RSS crept up by 7–14 % over
/// 10 000 mixed requests with no live memory behind it (measured: one `malloc_trim` brought it back to
/// the level after the first 1 000). A trim takes about a millisecond; under load what it releases is
/// soon mapped again, a few thousand page faults a second.
struct FreeMemoryRelease: Service {
    var interval: Duration = .seconds(1)

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                _ = pinhole_release_free_memory()
            }
        }
    }
}

/// glibc hands large allocations fresh 4 KiB pages every time, and faulting them in can cost more than
/// the work done with them: libjpeg's whole-image coefficient buffer for a progressive JPEG (88 MB for
/// the 14.7 MP corpus photo, even when only its DC scans are decoded) put 56 % of that render's CPU in
/// the kernel. With glibc's `glibc.malloc.hugetlb=1` tunable, malloc asks for transparent huge pages on
/// such blocks (madvise mode, the usual kernel setting): 96 → 67 ms of CPU per render, peak RSS under
/// load +11 MB. Tunables are read only when a process starts, so `serve` executes itself again, once,
/// with the tunable added; an operator who sets `glibc.malloc.hugetlb` in GLIBC_TUNABLES (0 turns it
/// off) keeps their choice. The process id does not change.
func restartWithHugePageTunable() {
    #if os(Linux)
    let name = "GLIBC_TUNABLES", tunable = "glibc.malloc.hugetlb=1"
    let current = ProcessInfo.processInfo.environment[name] ?? ""
    guard !current.contains("glibc.malloc.hugetlb") else { return }
    setenv(name, current.isEmpty ? tunable : current + ":" + tunable, 1)
    var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
    arguments.append(nil)
    execv("/proc/self/exe", arguments)
    // Only reached when exec failed: carry on without huge pages.
    unsetenv(name)
    if !current.isEmpty { setenv(name, current, 1) }
    #endif
}
