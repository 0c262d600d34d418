import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `#architecture("name", trainedLength: L) { … }`: expands to `Architecture("name", trainedLength: L) { … }`
/// unchanged, after checking the integer literals it can see. Non-literal values are left to `validate()`.
public struct ArchitectureCheckMacro: ExpressionMacro {
    public static func expansion(
        of node: some FreestandingMacroExpansionSyntax, in context: some MacroExpansionContext
    ) throws -> ExprSyntax {
        if let length = node.arguments.first(where: { $0.label?.text == "trainedLength" }),
            let value = LiteralReader.int(length.expression), value < 1
        {
            context.diagnose(
                Diagnostic(
                    node: length.expression,
                    message: ArchitectureDiagnostic.error(
                        "trainedLength", "trainedLength must be at least 1, got \(value)")))
        }
        var checker = WidthChecker()
        if let closure = node.trailingClosure {
            checker.walk(Syntax(closure))
        } else if let closure = node.arguments.first(where: { $0.label?.text == "layers" })?.expression {
            checker.walk(Syntax(closure))
        }
        for (syntax, message) in checker.problems { context.diagnose(Diagnostic(node: syntax, message: message)) }
        let arguments = node.arguments.trimmedDescription
        let trailing = node.trailingClosure.map { " " + $0.trimmedDescription } ?? ""
        return "Architecture(\(raw: arguments))\(raw: trailing)"
    }
}

/// Reads integer literals (also `-n` and parenthesised) out of expressions; anything else is unknown.
enum LiteralReader {
    static func int(_ expression: ExprSyntax) -> Int? {
        if let literal = expression.as(IntegerLiteralExprSyntax.self) {
            return Int(String(literal.literal.text.filter { $0 != "_" }))
        }
        if let prefix = expression.as(PrefixOperatorExprSyntax.self), prefix.operator.text == "-" {
            return int(prefix.expression).map { -$0 }
        }
        if let tuple = expression.as(TupleExprSyntax.self), tuple.elements.count == 1, let only = tuple.elements.first {
            return int(only.expression)
        }
        return nil
    }

    static func argument(_ call: FunctionCallExprSyntax, _ label: String?) -> LabeledExprSyntax? {
        call.arguments.first { $0.label?.text == label }
    }

    static func int(_ call: FunctionCallExprSyntax, _ label: String?) -> Int? {
        argument(call, label).flatMap { int($0.expression) }
    }
}

/// Walks DSL calls in source order, tracking the residual width set by `TokenEmbedding`/`Linear` literals.
struct WidthChecker {
    private(set) var problems: [(Syntax, ArchitectureDiagnostic)] = []
    private var width: Int?

    mutating func walk(_ root: Syntax) {
        let collector = CallCollector(viewMode: .sourceAccurate)
        collector.walk(root)
        for call in collector.calls {
            guard let callee = call.calledExpression.lastToken(viewMode: .sourceAccurate)?.text else { continue }
            check(call, callee: callee)
        }
    }

    private mutating func report(_ node: some SyntaxProtocol, _ id: String, _ message: String) {
        problems.append((Syntax(node), .error(id, message)))
    }

    private mutating func check(_ call: FunctionCallExprSyntax, callee: String) {
        let int = { (label: String?) in LiteralReader.int(call, label) }
        let at = { (label: String?) -> Syntax in
            LiteralReader.argument(call, label).map { Syntax($0.expression) } ?? Syntax(call)
        }
        switch callee {
        case "TokenEmbedding":
            width = int("width")
            if let w = width, w < 1 {
                report(at("width"), "width", "TokenEmbedding width must be at least 1, got \(w)")
            }
            if let v = int("vocabulary"), v < 1 {
                report(at("vocabulary"), "vocabulary", "vocabulary must be at least 1")
            }
        case "Linear":
            if let input = int("input"), let w = width, input != w {
                report(at("input"), "linearInput", "Linear input \(input) does not match the residual width \(w)")
            }
            width = int("output")
        case "LayerNorm", "RMSNorm":
            if let declared = int(nil), let w = width, declared != w {
                report(at(nil), "normWidth", "\(callee) width \(declared) does not match the residual width \(w)")
            }
        case "Attention":
            checkAttention(call, int: int, at: at)
        case "Repeat":
            if let count = int(nil), count < 1 { report(at(nil), "repeatCount", "Repeat count must be at least 1") }
        case "FeedForward":
            if let hidden = int("hidden"), hidden < 1 {
                report(at("hidden"), "hidden", "FeedForward hidden must be at least 1")
            }
        case "rotary":
            if let d = int("dimensions"), d < 2 || d % 2 != 0 {
                report(at("dimensions"), "rotaryWidth", "rotary dimensions must be even and at least 2, got \(d)")
            }
        default:
            break
        }
    }

    private mutating func checkAttention(
        _ call: FunctionCallExprSyntax, int: (String?) -> Int?, at: (String?) -> Syntax
    ) {
        guard let heads = int("heads") else { return }
        if heads < 1 { report(at("heads"), "heads", "heads must be at least 1, got \(heads)"); return }
        if int("headWidth") == nil, LiteralReader.argument(call, "headWidth") == nil, let w = width, w % heads != 0 {
            report(at("heads"), "headsDivide", "width \(w) is not divisible by \(heads) heads")
        }
        if let kv = int("kvHeads"), kv < 1 || heads % kv != 0 {
            report(at("kvHeads"), "kvHeads", "kvHeads \(kv) must divide heads \(heads)")
        }
    }
}

/// Collects function calls in source order (pre-order, so outer calls come before their arguments).
final class CallCollector: SyntaxVisitor {
    private(set) var calls: [FunctionCallExprSyntax] = []

    override func visit(_ node: FunctionCallExprSyntax) -> SyntaxVisitorContinueKind {
        calls.append(node)
        return .visitChildren
    }
}
