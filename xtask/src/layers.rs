//! The kernel's layering rule, checked by reading its `use` lines (a host test).
//!
//! Layers, each allowed to use only those before it: `arch`, `board`, `kern`, `selftest`,
//! `start`. Between files there must be no cycle at all. A file's dependencies are the
//! modules its `crate::` paths name (longest module prefix that exists), including grouped
//! imports (`use crate::a::{b, c::d}`), and `kern::console` for any `print!`/`println!`.
//! Paths written relative to the file (`super::`, a child module) stay inside a layer, so
//! they cannot break the layer rule; they are not followed.

use std::collections::{BTreeMap, BTreeSet};

/// The layers in the order they may depend on each other.
pub const LAYERS: [&str; 5] = ["arch", "board", "kern", "selftest", "start"];

/// Module path (`kern::time`) -> its source, for every file under the kernel's `src/`.
pub type Sources = BTreeMap<String, String>;

/// Reads every `.rs` file under `src` (lib.rs excluded: it only declares the layers).
pub fn read_tree(src: &std::path::Path) -> std::io::Result<Sources> {
    let mut out = Sources::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == "lib" {
                    continue;
                }
                let module = rel.trim_end_matches("/mod").replace('/', "::");
                out.insert(module, std::fs::read_to_string(&path)?);
            }
        }
    }
    Ok(out)
}

fn strip_line_comments(src: &str) -> String {
    src.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the source names after `crate::`, grouped imports expanded.
fn crate_paths(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(is_ident) {
            continue; // e.g. `mycrate::`
        }
        let mut end = 0;
        let bytes: Vec<char> = rest.chars().collect();
        while end < bytes.len() && (is_ident(bytes[end]) || bytes[end] == ':') {
            end += 1;
        }
        let path: String = bytes[..end].iter().collect();
        if let Some(base) = path.strip_suffix("::") {
            if bytes.get(end) == Some(&'{') {
                let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
                for item in rest[end + 1..close].split(',') {
                    let item = item.split_whitespace().next().unwrap_or("");
                    let item = item.trim_end_matches(|c: char| !is_ident(c));
                    match item {
                        "" => {}
                        "self" => out.push(base.to_string()),
                        _ => out.push(format!("{base}::{item}")),
                    }
                }
                continue;
            }
        }
        out.push(path.trim_end_matches(':').to_string());
    }
    out
}

/// The module a path lands in: its longest prefix that is a module of the tree.
fn resolve<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

/// File -> the files it uses.
pub fn edges(sources: &Sources) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut out = BTreeMap::new();
    for (module, src) in sources {
        let src = strip_line_comments(src);
        let mut deps = BTreeSet::new();
        for path in crate_paths(&src) {
            if let Some(target) = resolve(&modules, &path) {
                deps.insert(target.clone());
            }
        }
        let prints = ["print!", "println!"].iter().any(|m| {
            src.match_indices(m)
                .any(|(i, _)| !src[..i].chars().next_back().is_some_and(is_ident))
        });
        if prints && modules.contains("kern::console") {
            deps.insert("kern::console".to_string());
        }
        deps.remove(module);
        out.insert(module.clone(), deps);
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == top)
}

/// Every breach of the rule, as readable lines: a file using a later layer, a file outside
/// every layer, and each cycle between files.
pub fn violations(sources: &Sources) -> Vec<String> {
    let edges = edges(sources);
    let mut out = Vec::new();
    for (from, deps) in &edges {
        let Some(a) = layer_of(from) else {
            out.push(format!(
                "{from} is in no layer (top-level modules: {LAYERS:?})"
            ));
            continue;
        };
        for to in deps {
            if layer_of(to).is_some_and(|b| b > a) {
                out.push(format!("{from} uses {to}, a later layer"));
            }
        }
    }
    // Depth-first search; a back edge closes a cycle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == next).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    out.push(format!("cycle: {}", cycle.join(" -> ")));
                }
                Some(_) => {}
                None => visit(next, edges, state, stack, out),
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Sources {
        files
            .iter()
            .map(|(m, s)| (m.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn the_kernel_keeps_its_layers_and_has_no_cycles() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/src");
        let sources = read_tree(&src).expect("read kernel/src");
        assert!(
            sources.contains_key("arch::m68k::machine"),
            "tree not found"
        );
        let found = violations(&sources);
        assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
    }

    #[test]
    fn a_later_layer_is_caught() {
        let t = tree(&[
            ("board::virt::irq", "fn f() { println!(\"x\"); }"),
            ("kern::console", ""),
        ]);
        assert_eq!(
            violations(&t),
            ["board::virt::irq uses kern::console, a later layer"]
        );
    }

    #[test]
    fn cycles_through_grouped_imports_are_caught() {
        let t = tree(&[
            (
                "kern::fatal",
                "use crate::selftest::{harness, other::Thing};",
            ),
            ("selftest::harness", "use crate::kern::fatal;"),
            ("selftest::other", ""),
        ]);
        let found = violations(&t);
        assert!(
            found.contains(&"kern::fatal uses selftest::harness, a later layer".to_string()),
            "{found:?}"
        );
        assert!(
            found.contains(&"kern::fatal uses selftest::other, a later layer".to_string()),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l == "cycle: kern::fatal -> selftest::harness -> kern::fatal"),
            "{found:?}"
        );
    }

    #[test]
    fn a_cycle_inside_one_layer_is_caught_and_comments_are_not_uses() {
        let t = tree(&[
            (
                "kern::time",
                "use crate::kern::log::x; // crate::kern::heap",
            ),
            ("kern::log", "fn f() { crate::kern::time::now(); }"),
            ("kern::heap", "use crate::kern::time;"),
        ]);
        assert_eq!(
            violations(&t),
            ["cycle: kern::time -> kern::log -> kern::time"]
        );
    }

    #[test]
    fn self_and_longest_prefix_resolve() {
        let t = tree(&[
            ("start", "use crate::board::virt::{self, irq::Handled};"),
            ("board::virt", ""),
            ("board::virt::irq", ""),
        ]);
        let e = edges(&t);
        assert_eq!(
            e["start"].iter().map(String::as_str).collect::<Vec<_>>(),
            ["board::virt", "board::virt::irq"]
        );
    }
}
