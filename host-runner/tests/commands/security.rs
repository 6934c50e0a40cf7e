//! No shell anywhere: every process the runner starts is a binary with an argument vector.

use super::repo;

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_shell_is_ever_started() {
    let mut files = Vec::new();
    for d in ["src", "host-runner/src", "guest-agent/src"] {
        rust_files(&repo().join(d), &mut files);
    }
    assert!(files.len() > 20);
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let l = line.replace(' ', "");
            let shell = [
                "Command::new(\"sh\"",
                "Command::new(\"bash\"",
                "Command::new(\"/bin/sh\"",
                "Command::new(\"/bin/bash\"",
            ]
            .iter()
            .any(|s| l.contains(s));
            let dash_c = l.contains(".arg(\"-c\")") || l.contains("[\"-c\",");
            if shell || dash_c {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "shell use:\n{}", offenders.join("\n"));
}
