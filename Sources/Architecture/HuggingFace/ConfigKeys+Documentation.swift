import Foundation

extension HuggingFace {
    /// `Docs/config-keys.md`: which keys each family's importer reads, ignores (and why) and refuses. A test keeps
    /// the file equal to this text, so the documentation cannot drift from the code.
    public static func configKeysMarkdown() -> String {
        var lines = [
            "# Which config.json keys Extrapolate reads",
            "",
            "<!-- Generated from Sources/Architecture/HuggingFace/ConfigKeys.swift and the importers; do not edit. "
                + "Regenerate: EXTRAPOLATE_WRITE_DOCS=1 swift test --filter documentedInventory -->",
            "",
            "An importer reads a `config.json` completely. Every key is one of:",
            "",
            "- **read**: it decides the architecture. Two names of one setting (`n_embd` and `hidden_size`) must "
                + "agree when both are given, and so must `rope_parameters` and `rope_scaling`.",
            "- **ignored**: it does not change what the model computes at inference (token ids, dropout, "
                + "generation defaults, bookkeeping); the reason is given below.",
            "- **refused**: it is not read, and it is known to change the model when set to anything but its neutral "
                + "value. The config is refused with the key, its value and what it does; "
                + "`--allow-unknown-config-keys` (daemon: `allow-unknown-config-keys = true`) evaluates the model "
                + "without it, and every result then carries a warning.",
            "- **unknown**: anything else. It is accepted, listed by `extrapolate inspect` as `not read: …`, and "
                + "recorded with every result (`config_not_read` in CSV, `configNotRead` in JSON), so a surprising "
                + "number can be traced to a setting nobody read.",
            "",
            "To evaluate a rotary extension (YaRN, NTK, …) of a model without editing its config, use "
                + "`extrapolate sweep --extensions NAME` or the daemon's `extensions = [\"NAME\"]`.",
            "",
        ]
        for family in supportedModelTypes {
            guard let keys = configKeys[family] else { continue }
            lines += ["## `\(family)`", ""]
            lines += describe(keys, prefix: "", common: true)
        }
        lines += ["## Every family", "", "### Ignored by every family", ""]
        let groups = Dictionary(grouping: commonIgnoredKeys.keys.sorted()) { commonIgnoredKeys[$0] ?? "" }
        for reason in groups.keys.sorted() {
            lines.append("- \(reason): \(codeList(groups[reason] ?? []))")
        }
        lines += [
            "", "### Refused on a family that does not read them", "", "| key | what it does | neutral |",
            "|---|---|---|",
        ]
        for key in commonChangingKeys.keys.sorted() {
            guard let rule = commonChangingKeys[key] else { continue }
            lines.append("| `\(key)` | \(rule.effect) | \(rule.neutral) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func codeList(_ keys: [String]) -> String {
        Set(keys).sorted().map { "`\($0)`" }.joined(separator: ", ")
    }

    /// The lines for one inventory: read keys, the family's own ignored and refused keys, then nested objects.
    private static func describe(_ keys: ConfigKeys, prefix: String, common: Bool) -> [String] {
        var lines = ["Reads: \(codeList(keys.read.map { prefix + $0 } + keys.nested.keys.map { prefix + $0 }))", ""]
        let ownIgnored = keys.ignored.filter { !common || commonIgnoredKeys[$0.key] == nil }
        if !ownIgnored.isEmpty {
            lines.append("Ignores, besides the keys every family ignores:")
            lines += ownIgnored.keys.sorted().map { "- `\(prefix + $0)`: \(ownIgnored[$0] ?? "")" }
            lines.append("")
        }
        let ownChanging = keys.changing.filter { !common || commonChangingKeys[$0.key] == nil }
        if !ownChanging.isEmpty {
            lines += [
                "Refuses, besides the keys every family refuses (below):", "", "| key | what it does | neutral |",
                "|---|---|---|",
            ]
            lines += ownChanging.keys.sorted().map { key in
                "| `\(prefix + key)` | \(ownChanging[key]?.effect ?? "") | \(ownChanging[key]?.neutral ?? "") |"
            }
            lines.append("")
        }
        for name in keys.nested.keys.sorted() {
            guard let inner = keys.nested[name] else { continue }
            lines += ["Inside `\(prefix + name)`:", ""]
            lines += describe(inner, prefix: prefix + name + ".", common: false)
        }
        return lines
    }
}
