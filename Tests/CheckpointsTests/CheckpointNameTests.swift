import Checkpoints
import Testing

@Suite("Checkpoint names: run and step from the path")
struct CheckpointNameTests {
    @Test(
        "Each naming scheme reads its run and step",
        arguments: [
            ("runs/alibi/checkpoint-1500", "alibi", 1500, CheckpointNamingScheme.huggingFace),
            ("runs/alibi/checkpoint-1500/", "alibi", 1500, .huggingFace),
            ("runs/alibi/checkpoint-1500/model.safetensors", "alibi", 1500, .huggingFace),
            ("runs/alibi/checkpoint-1500/model.safetensors.index.json", "alibi", 1500, .huggingFace),
            ("Datasets/demo/t5/step-500.safetensors", "t5", 500, .stepFile),
            ("runs/rope/model_2000.safetensors", "rope", 2000, .numberedFile),
            ("runs/rope/ckpt-300.safetensors", "rope", 300, .numberedFile),
            ("runs/olmo/step1000", "olmo", 1000, .stepFolder),
            ("runs/olmo/step_1000/model.safetensors", "olmo", 1000, .stepFolder),
            ("runs/ds/global_step250", "ds", 250, .stepFolder),
            ("runs/megatron/iter_0002000", "megatron", 2000, .stepFolder),
        ] as [(String, String, Int, CheckpointNamingScheme)])
    func schemes(_ path: String, _ run: String, _ step: Int, _ scheme: CheckpointNamingScheme) {
        let name = CheckpointName(path: path)
        #expect(name.run == run && name.step == step && name.scheme == scheme, "\(path): \(name)")
    }

    @Test("Names without a step are plain; shards are not steps; order is by run, then step")
    func plainAndOrder() {
        #expect(CheckpointName(path: "models/gpt2").step == nil && CheckpointName(path: "models/gpt2").run == "gpt2")
        #expect(CheckpointName(path: "runs/x/model.safetensors") == CheckpointName(run: "x", step: nil, scheme: .plain))
        #expect(CheckpointName(path: "runs/x/model-00001-of-00002.safetensors").step == nil)
        #expect(CheckpointName(path: "runs/x/checkpoint-final").step == nil)
        #expect(
            CheckpointName(path: "runs/x/steps").step == nil && CheckpointName(path: "runs/x/iteration").step == nil)
        let names = [
            "r/b/step-20.safetensors", "r/a/step-1000.safetensors", "r/a/step-500.safetensors", "r/a/final.safetensors",
        ]
        .map { CheckpointName(path: $0) }.sorted()
        #expect(names.map(\.description) == ["a step 500", "a step 1000", "a", "b step 20"])
    }
}
