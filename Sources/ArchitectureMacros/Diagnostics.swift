import SwiftDiagnostics

/// A diagnostic of the architecture macros, identified for tests.
struct ArchitectureDiagnostic: DiagnosticMessage {
    let message: String
    let id: String
    let severity: DiagnosticSeverity

    var diagnosticID: MessageID { MessageID(domain: "ArchitectureMacros", id: id) }

    static func error(_ id: String, _ message: String) -> Self { Self(message: message, id: id, severity: .error) }
}
