import Architecture
import Evaluation
import Foundation
import Training

// A two-layer ALiBi model on bytes, checked at compile time by #architecture.
let architecture = #architecture("my-alibi", trainedLength: 64) {
    TokenEmbedding(vocabulary: 256, width: 64, key: "embed", scale: 8)
    Repeat(2, key: "layers") {
        Residual {
            LayerNorm(64, key: "attention_norm")
            Attention(heads: 4, position: .alibi(), key: "attention")
        }
        Residual {
            LayerNorm(64, key: "mlp_norm")
            FeedForward(hidden: 256, activation: .gelu, key: "mlp")
        }
    }
    LayerNorm(64, key: "final_norm")
    Unembedding(tied: true)
}
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../..").path
let data = CommandLine.arguments.dropFirst().first ?? "\(repository)/Datasets/kjv"
var settings = TrainingSettings(steps: Int(ProcessInfo.processInfo.environment["STEPS"] ?? "") ?? 300)
settings.batch = 8
settings.optimizer.warmup = 30
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("my-alibi-\(getpid())").path
let run = try TrainingRun(
    source: .architecture(architecture), data: "\(data)/train.tokens.zst", folder: folder, settings: settings)
let checkpoint = try run.run(progress: { if $0.step % 50 == 0 { print("step \($0.step): loss \($0.loss)") } })!
for length in [64, 256, 1024] {  // train short, test long
    let score = try ScoreResult.run(
        checkpoint: checkpoint, data: DataReference(path: "\(data)/valid.tokens.zst"), offset: 0, length: length,
        keepTokens: false)
    print("perplexity at \(length) tokens: \(score.perplexity)")
}
