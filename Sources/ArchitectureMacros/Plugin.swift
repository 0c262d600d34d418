import SwiftCompilerPlugin
import SwiftSyntaxMacros

@main
struct ArchitectureMacrosPlugin: CompilerPlugin {
    let providingMacros: [any Macro.Type] = [
        HuggingFaceConfigMacro.self,
        ConfigKeyMacro.self,
        ArchitectureCheckMacro.self,
    ]
}
