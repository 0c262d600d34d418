import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `@HuggingFaceConfig`: generates `init(from:)` reading snake_case (or `@ConfigKey`) keys with defaults, and
/// `configKeys`, every key that initializer reads (so an importer can tell which keys of a config it did not read).
public struct HuggingFaceConfigMacro: ExtensionMacro {
    public static func expansion(
        of node: AttributeSyntax, attachedTo declaration: some DeclGroupSyntax,
        providingExtensionsOf type: some TypeSyntaxProtocol, conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        guard let structDecl = declaration.as(StructDeclSyntax.self) else {
            context.diagnose(
                Diagnostic(
                    node: node,
                    message: ArchitectureDiagnostic.error(
                        "notStruct", "@HuggingFaceConfig applies to a struct")))
            return []
        }
        var assignments: [String] = []
        var keys: [String] = []
        for member in structDecl.memberBlock.members {
            guard let variable = member.decl.as(VariableDeclSyntax.self),
                let (line, read) = assignment(for: variable, in: context)
            else { continue }
            assignments.append(line)
            keys += read
        }
        let isPublic = structDecl.modifiers.contains { $0.name.tokenKind == .keyword(.public) }
        let access = isPublic ? "public " : ""
        let body = assignments.map { "        \($0)" }.joined(separator: "\n")
        let keyList = keys.map { "\"\($0)\"" }.joined(separator: ", ")
        let source: DeclSyntax = """
            extension \(type.trimmed): Decodable {
                /// The config keys `init(from:)` reads.
                \(raw: access)static let configKeys: [String] = [\(raw: keyList)]
                \(raw: access)init(from decoder: any Decoder) throws {
                    let container = try decoder.container(keyedBy: HuggingFaceKey.self)
            \(raw: body)
                }
            }
            """
        guard let ext = source.as(ExtensionDeclSyntax.self) else { return [] }
        return [ext]
    }

    /// The generated line for one stored property and the keys it reads, or `nil` for properties the decoder must
    /// not touch.
    static func assignment(
        for variable: VariableDeclSyntax, in context: some MacroExpansionContext
    ) -> (line: String, keys: [String])? {
        let isStatic = variable.modifiers.contains {
            $0.name.tokenKind == .keyword(.static) || $0.name.tokenKind == .keyword(.class)
        }
        guard !isStatic, let binding = variable.bindings.first, variable.bindings.count == 1,
            binding.accessorBlock == nil,
            let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text
        else { return nil }
        let isLet = variable.bindingSpecifier.tokenKind == .keyword(.let)
        let initial = binding.initializer?.value.trimmedDescription
        if isLet && initial != nil { return nil }
        guard let type = binding.typeAnnotation?.type ?? inferredType(binding.initializer?.value) else {
            context.diagnose(
                Diagnostic(
                    node: binding,
                    message: ArchitectureDiagnostic.error(
                        "needsType", "give '\(name)' a type annotation so @HuggingFaceConfig can decode it")))
            return nil
        }
        let keys = configKeys(of: variable) ?? [snakeCase(name)]
        let keyList = "[" + keys.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        let optional = type.as(OptionalTypeSyntax.self)
        let wrapped = optional?.wrappedType.trimmedDescription ?? type.trimmedDescription
        let read = "try container.huggingFaceValue(\(wrapped).self, keys: \(keyList))"
        if let initial { return ("self.\(name) = \(read) ?? \(initial)", keys) }
        if optional != nil { return ("self.\(name) = \(read)", keys) }
        return ("self.\(name) = try container.huggingFaceRequired(\(wrapped).self, keys: \(keyList))", keys)
    }

    /// Keys from a `@ConfigKey("a", "b")` attribute, if present.
    static func configKeys(of variable: VariableDeclSyntax) -> [String]? {
        for attribute in variable.attributes {
            guard let attr = attribute.as(AttributeSyntax.self),
                attr.attributeName.trimmedDescription == "ConfigKey",
                let arguments = attr.arguments?.as(LabeledExprListSyntax.self)
            else { continue }
            let keys = arguments.compactMap { $0.expression.as(StringLiteralExprSyntax.self)?.representedLiteralValue }
            if !keys.isEmpty { return keys }
        }
        return nil
    }

    /// `layerNormEpsilon` → `layer_norm_epsilon`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for character in name {
            if character.isUppercase {
                if !out.isEmpty { out.append("_") }
                out.append(contentsOf: character.lowercased())
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// The type of a literal default (`768` → Int, `1e-5` → Double, `true` → Bool, `"x"` → String).
    static func inferredType(_ value: ExprSyntax?) -> TypeSyntax? {
        guard let value else { return nil }
        if value.is(IntegerLiteralExprSyntax.self) { return "Int" }
        if value.is(FloatLiteralExprSyntax.self) { return "Double" }
        if value.is(BooleanLiteralExprSyntax.self) { return "Bool" }
        if value.is(StringLiteralExprSyntax.self) { return "String" }
        if let prefix = value.as(PrefixOperatorExprSyntax.self), prefix.operator.text == "-" {
            return inferredType(prefix.expression)
        }
        return nil
    }
}

/// `@ConfigKey("a", "b")`: a marker read by `@HuggingFaceConfig`; generates nothing itself.
public struct ConfigKeyMacro: PeerMacro {
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol,
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] {
        let keys =
            node.arguments?.as(LabeledExprListSyntax.self)?.compactMap {
                $0.expression.as(StringLiteralExprSyntax.self)?.representedLiteralValue
            } ?? []
        if keys.isEmpty {
            context.diagnose(
                Diagnostic(
                    node: node,
                    message: ArchitectureDiagnostic.error(
                        "emptyConfigKey", "@ConfigKey needs at least one string literal key")))
        }
        return []
    }
}
