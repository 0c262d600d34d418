// Attention-specific checks: head arithmetic and every position method's own constraints.

extension Architecture {
    static func checkAttention(_ node: Attention, width: Int?, at: String, report: (String, String) -> Void) {
        if node.heads < 1 { report(at, "heads must be at least 1, got \(node.heads)"); return }
        if let width, node.headWidth == nil, width % node.heads != 0 {
            report(
                at, "width \(width) is not divisible by \(node.heads) heads; give headWidth explicitly or change heads")
        }
        if let hs = node.headWidth, hs < 1 { report(at, "headWidth must be at least 1, got \(hs)") }
        if let kv = node.kvHeads, kv < 1 || node.heads % kv != 0 {
            report(at, "kvHeads \(kv) must divide heads \(node.heads)")
        }
        if let window = node.window, window < 1 { report(at, "window must be at least 1, got \(window)") }
        if let scale = node.scale, !(scale > 0 && scale.isFinite) { report(at, "scale must be positive, got \(scale)") }
        if let cap = node.softcap, !(cap > 0 && cap.isFinite) { report(at, "softcap must be positive, got \(cap)") }
        if let norm = node.queryKeyNorm, !(norm.epsilon > 0 && norm.epsilon.isFinite) {
            report(at, "queryKeyNorm epsilon must be positive, got \(norm.epsilon)")
        }
        guard let width else { return }
        let hs = node.resolvedHeadWidth(residualWidth: width)
        for message in positionProblems(node.position, headWidth: hs, heads: node.heads) { report(at, message) }
    }

    static func positionProblems(_ position: AttentionPosition, headWidth hs: Int, heads: Int) -> [String] {
        switch position {
        case .none:
            return []
        case .rotary(let rotary):
            let d = rotary.rotaryWidth(headWidth: hs)
            var problems: [String] = []
            if d < 2 || d % 2 != 0 { problems.append("rotary width \(d) must be even and at least 2") }
            if d > hs { problems.append("rotary width \(d) exceeds the head width \(hs)") }
            if !(rotary.base > 1) { problems.append("rotary base must be greater than 1, got \(rotary.base)") }
            return problems + scalingProblems(rotary.scaling, rotaryWidth: d)
        case .xpos(let xpos):
            var problems = hs % 2 == 0 ? [] : ["xPos needs an even head width, got \(hs)"]
            if !(xpos.scaleBase > 0) { problems.append("xPos scaleBase must be positive") }
            return problems
        case .alibi(let alibi):
            if let maxBias = alibi.maxBias, !(maxBias > 0) { return ["ALiBi maxBias must be positive, got \(maxBias)"] }
            return []
        case .t5(let t5):
            var problems: [String] = []
            let halves = t5.bidirectional ? t5.buckets / 2 : t5.buckets
            if halves < 2 { problems.append("T5 needs at least 2 buckets per direction, got \(t5.buckets)") }
            if t5.bidirectional, t5.buckets % 2 != 0 { problems.append("bidirectional T5 needs an even bucket count") }
            if t5.maxDistance <= halves / 2 {
                problems.append("T5 maxDistance \(t5.maxDistance) must exceed the exact range \(halves / 2)")
            }
            return problems
        case .kerple:
            return []
        case .fire(let fire):
            return fire.hidden < 1 || !(fire.initialThreshold > 0)
                ? ["FIRE needs hidden ≥ 1 and a positive threshold"] : []
        case .sandwich(let sandwich):
            return sandwich.dimension < 2 || sandwich.dimension % 2 != 0
                ? ["Sandwich dimension must be even and at least 2, got \(sandwich.dimension)"] : []
        }
    }

    static func scalingProblems(_ scaling: RotaryScaling, rotaryWidth d: Int) -> [String] {
        var problems: [String] = []
        if !(scaling.factor >= 1) {
            problems.append("\(scaling.name) scaling factor must be ≥ 1, got \(scaling.factor)")
        }
        switch scaling {
        case .none, .linear:
            break
        case .ntk, .dynamic:
            if d <= 2 { problems.append("\(scaling.name) scaling needs a rotary width above 2") }
            if case .dynamic(_, let original) = scaling, original < 1 {
                problems.append("dynamic scaling needs an original length ≥ 1")
            }
        case .yarn(let yarn):
            if yarn.originalLength < 1 { problems.append("yarn needs an original length ≥ 1") }
            if !(yarn.betaFast > yarn.betaSlow) { problems.append("yarn betaFast must exceed betaSlow") }
        case .llama3(let llama3):
            if !(llama3.highFrequencyFactor > llama3.lowFrequencyFactor) {
                problems.append("llama3 high_freq_factor must exceed low_freq_factor")
            }
        case .longRoPE(let longRoPE):
            for (name, list) in [("short_factor", longRoPE.shortFactor), ("long_factor", longRoPE.longFactor)]
            where list.count != d / 2 {
                problems.append("longrope \(name) has \(list.count) entries; rotary width \(d) needs \(d / 2)")
            }
        }
        return problems
    }
}
