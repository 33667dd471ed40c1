//! The folders of `hub-deployer/src` are layers (ARCHITECTURE.md, "hub-deployer modules"): a
//! module may use its own layer and the ones before it, never one after. This reads every source
//! file's `crate::…` paths and fails naming the file and the path that points the wrong way, so
//! an import cycle cannot come back unnoticed.

use std::path::{Path, PathBuf};

/// Top-level modules, in layer order; modules of one layer may use each other.
const LAYERS: &[&[&str]] = &[
    &["names", "progress", "steps", "wait"],
    &["settings"],
    &["exit"],
    &["directory"],
    &["node"],
    &["plan"],
    &["docker"],
    &["apply"],
    &["inspect"],
    &["lifecycle"],
    &["demo"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/apply/jobs.rs` → `apply`, `src/wait.rs` → `wait`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

#[test]
fn no_module_uses_a_later_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(mine) = layer_of(&module) else {
            unknown.push(file.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            for part in line.split("crate::").skip(1) {
                let used: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                match layer_of(&used) {
                    Some(theirs) if theirs > mine => wrong.push(format!(
                        "{}:{}: {module} (layer {mine}) uses crate::{used} (layer {theirs})",
                        file.display(),
                        n + 1
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS (add them, and to ARCHITECTURE.md): {unknown:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layer order:\n{}",
        wrong.join("\n")
    );
    assert!(files.len() > 20, "read only {} files", files.len());
}
