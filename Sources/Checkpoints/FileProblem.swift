import Foundation

/// Why a file operation failed, in words a person can act on ("no such folder", "permission denied"), instead of
/// Foundation's "The operation could not be completed (NSCocoaErrorDomain Code=512)".
public enum FileProblem {
    /// The cause of `error`, raised while reading or writing `path` (a file, or a folder when `folder`).
    public static func describe(_ error: any Error, path: String, folder: Bool = false) -> String {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue != folder {
            return folder ? "it is a file; give a folder" : "it is a folder; give a file path"
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, !manager.fileExists(atPath: parent) {
            return "the folder \(parent) does not exist"
        }
        if let code = posixCode(error) { return String(cString: strerror(code)).lowercased() }
        return "\(error)"
    }

    /// The errno under a Foundation error, where it has one.
    private static func posixCode(_ error: any Error) -> Int32? {
        var current: NSError? = error as NSError
        while let error = current {
            if error.domain == NSPOSIXErrorDomain { return Int32(error.code) }
            current = error.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        return nil
    }
}
