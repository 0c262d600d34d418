import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A flag the watcher raises and the scan loop lowers: "something changed, scan soon".
final class ChangeFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false

    func raise() {
        lock.lock()
        raised = true
        lock.unlock()
    }

    /// Whether it was raised since the last call.
    func lower() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let was = raised
        raised = false
        return was
    }
}

/// Recursive inotify watching on Linux: every folder a scan looked into is watched for files created, closed after
/// writing, moved in or out, deleted, or having their attributes changed; any event raises the flag. New folders are
/// watched from the next scan, which the event itself triggers. Where inotify is unavailable or silent (NFS, Lustre)
/// the periodic rescan finds everything anyway.
final class Watcher: @unchecked Sendable {
    private let descriptor: Int32
    private let source: DispatchSourceRead
    private let lock = NSLock()
    private var watched = Set<String>()

    /// Starts watching, raising `flag` on events; `nil` when inotify is not available (the caller polls).
    init?(flag: ChangeFlag) {
        #if os(Linux)
            let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard fd >= 0 else { return nil }
            descriptor = fd
            source = DispatchSource.makeReadSource(
                fileDescriptor: fd, queue: DispatchQueue(label: "extrapolate.watcher"))
            source.setEventHandler {
                // Drain; the events' content does not matter: a scan reads the folders.
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                var any = false
                while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 { any = true }
                if any { flag.raise() }
            }
            source.setCancelHandler { close(fd) }
            source.resume()
        #else
            return nil
        #endif
    }

    deinit { source.cancel() }

    /// Watches `folders` (those already watched are skipped; the kernel drops watches of deleted folders, and a
    /// folder created again at the same path is watched again on the scan after its creation).
    func watch(_ folders: [String]) {
        #if os(Linux)
            lock.lock()
            defer { lock.unlock() }
            let mask = UInt32(
                IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_ATTRIB)
            for folder in folders {
                // Re-adding an existing watch is cheap and keeps it; a recreated folder gets a new one.
                if inotify_add_watch(descriptor, folder, mask) >= 0 { watched.insert(folder) }
            }
        #endif
    }

    /// How many folders are watched.
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return watched.count
    }
}
