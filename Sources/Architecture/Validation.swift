// Validation: every problem of a declaration at once, each with its location.

extension Architecture {
    /// Checks the declaration and throws one error listing every problem.
    /// - Throws: `ArchitectureError.invalid` with all problems found.
    public func validate() throws(ArchitectureError) {
        let problems = self.problems()
        if !problems.isEmpty { throw .invalid(name: name, problems: problems) }
    }

    /// Validates an architecture read from `path`; the error names the file.
    /// - Throws: `ArchitectureError.invalid` naming the architecture and `path`, with every problem.
    public func validate(readFrom path: String) throws(ArchitectureError) {
        let problems = self.problems()
        if !problems.isEmpty { throw .invalid(name: "\(name) from \(path)", problems: problems) }
    }

    /// Every problem of the declaration (empty when valid).
    public func problems() -> [ArchitectureProblem] {
        var problems: [ArchitectureProblem] = []
        func report(_ location: String, _ message: String) {
            problems.append(ArchitectureProblem(location: location, message: message))
        }
        if trainedLength < 1 { report("trainedLength", "must be at least 1, got \(trainedLength)") }
        if formatVersion > Self.formatVersion {
            report("formatVersion", "\(formatVersion) is newer than this build understands (\(Self.formatVersion))")
        }
        checkTopLevelOrder(report)
        let expanded = Self.expandedCount(layers)
        if expanded > Self.maximumExpandedLayers {
            // The manifest below would list every tensor of every repetition: a config.json with
            // "num_hidden_layers": 558256 (found by fuzzing) took seconds, a billion would take hours.
            report(
                "layers",
                "expands to \(expanded == Int.max ? "more than \(Int.max)" : "\(expanded)") layers (norms, attention "
                    + "and feed-forward counted one by one, repeats multiplied out); at most "
                    + "\(Self.maximumExpandedLayers) are read, and the deepest published models have a few hundred "
                    + "blocks: is a layer count such as num_hidden_layers wrong?")
            return problems
        }
        let end = Walk.visit(layers, expandRepeats: false) { visit in
            Self.check(visit, trainedLength: trainedLength, report: report)
        }
        if let embedding = end.embeddingWidth, let width = end.width, hasTiedUnembedding, embedding != width {
            report("unembedding", "tied to a \(embedding)-wide embedding but the final width is \(width)")
        }
        for name in manifest.conflicts {
            report("manifest", "tensor '\(name)' is declared twice with different shapes")
        }
        return problems
    }

    /// The most layers a declaration may have with its repeats multiplied out: about 2,000 blocks, ten times the
    /// deepest published decoder; validation builds every layer's tensor list, so the bound is also its cost.
    public static let maximumExpandedLayers = 8_192

    /// Layers with repeats multiplied out (saturating at `Int.max`), without walking the repetitions.
    static func expandedCount(_ layers: [Layer]) -> Int {
        var total = 0
        for layer in layers {
            let count: Int
            switch layer {
            case .repeated(let node):
                let (product, overflow) = max(node.count, 0).multipliedReportingOverflow(by: expandedCount(node.body))
                count = overflow ? Int.max : product
            case .residual(let node): count = expandedCount(node.body)
            case .parallelResidual(let node):
                count = node.branches.reduce(0) { sum, branch in
                    let (next, overflow) = sum.addingReportingOverflow(expandedCount(branch))
                    return overflow ? Int.max : next
                }
            case .branch(let body): count = expandedCount(body)
            default: count = 1
            }
            let (next, overflow) = total.addingReportingOverflow(count)
            total = overflow ? Int.max : next
        }
        return total
    }

    private var hasTiedUnembedding: Bool {
        layers.contains { if case .unembedding(let u) = $0 { u.tied } else { false } }
    }

    private func checkTopLevelOrder(_ report: (String, String) -> Void) {
        let embeddings = layers.indices.filter { if case .tokenEmbedding = layers[$0] { true } else { false } }
        if embeddings != [0] {
            report(
                "layers",
                embeddings.isEmpty
                    ? "the first layer must be a TokenEmbedding; there is none"
                    : "exactly one TokenEmbedding, first; found at \(embeddings.map { "layers[\($0)]" }.joined(separator: ", "))"
            )
        }
        guard let last = layers.last, case .unembedding = last else {
            report("layers", "the last layer must be an Unembedding")
            return
        }
    }

    private static func check(_ visit: WalkVisit, trainedLength: Int, report: (String, String) -> Void) {
        let at = visit.context.location
        let width = visit.context.width
        func needsWidth(_ what: String) -> Int? {
            if width == nil { report(at, "\(what) comes before the TokenEmbedding that sets the width") }
            return width
        }
        func matches(_ declared: Int, _ what: String) {
            if let width = needsWidth(what), declared != width {
                report(at, "\(what) width \(declared) does not match the residual width \(width)")
            }
        }
        switch visit.layer {
        case .tokenEmbedding(let node):
            if node.vocabulary < 1 { report(at, "vocabulary must be at least 1, got \(node.vocabulary)") }
            if node.width < 1 { report(at, "width must be at least 1, got \(node.width)") }
            if let scale = node.scale, !(scale.isFinite && scale > 0) {
                report(at, "scale must be a positive number, got \(scale)")
            }
        case .positionEmbedding(let node):
            _ = needsWidth("PositionEmbedding")
            if case .learned(let rows, let offset) = node.encoding {
                if rows < 1 || offset < 0 { report(at, "a learned table needs rows ≥ 1 and offset ≥ 0") }
                if case .unsupported(let why) = node.encoding.support(at: trainedLength) {
                    report(at, "cannot cover the trained length \(trainedLength): \(why)")
                }
            }
        case .linear(let node):
            matches(node.input, "Linear input")
            if node.output < 1 { report(at, "Linear output must be at least 1") }
        case .layerNorm(let node):
            matches(node.width, "LayerNorm")
            if !(node.epsilon > 0) { report(at, "epsilon must be positive") }
        case .rmsNorm(let node):
            matches(node.width, "RMSNorm")
            if !(node.epsilon > 0) { report(at, "epsilon must be positive") }
            if let offset = node.gainOffset, !offset.isFinite { report(at, "gainOffset must be finite") }
        case .attention(let node):
            checkAttention(node, width: needsWidth("Attention"), at: at, report: report)
        case .feedForward(let node):
            _ = needsWidth("FeedForward")
            if node.hidden < 1 { report(at, "hidden width must be at least 1, got \(node.hidden)") }
        case .unembedding(let node):
            _ = needsWidth("Unembedding")
            if let cap = node.softcap, !(cap > 0 && cap.isFinite) { report(at, "softcap must be positive, got \(cap)") }
        case .repeated(let node):
            if node.count < 1 { report(at, "Repeat count must be at least 1, got \(node.count)") }
            if node.body.isEmpty { report(at, "Repeat has an empty body") }
        case .residual(let node):
            if node.body.isEmpty { report(at, "Residual has an empty body") }
            if node.placement == .post, !(node.body.last.map(isNorm) ?? false) {
                report(at, "a post-norm Residual must end with its LayerNorm or RMSNorm")
            }
        case .parallelResidual(let node):
            if node.branches.count < 2 { report(at, "ParallelResidual needs at least two branches") }
        case .branch:
            if !visit.context.insideParallel { report(at, "Branch is only meaningful inside ParallelResidual") }
        }
    }

    private static func isNorm(_ layer: Layer) -> Bool {
        switch layer {
        case .layerNorm, .rmsNorm: true
        default: false
        }
    }
}
