//! Checks on the eBPF sources themselves (kernel-probes/), enforcing the
//! "one emit helper" rule the loss accounting depends on: every record
//! leaves the kernel through `vigil_emit()` (include/emit.bpf.h), which
//! numbers it and counts its failure. A program that wrote to a ring or
//! perf buffer directly would produce records without sequence numbers and
//! lose them without a trace.
//!
//! The parsing is deliberately crude (comments blanked, braces counted,
//! identifiers matched) but errs on the side of failing: a check that finds
//! no program at all fails too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// BPF helpers that put data in a buffer user space reads. A name matches
/// as an identifier prefix, so the `_dynptr` variants are covered too.
const OUTPUT_HELPERS: &[&str] =
    &["bpf_ringbuf_output", "bpf_ringbuf_reserve", "bpf_ringbuf_submit", "bpf_ringbuf_discard", "bpf_perf_event_output"];

/// The only file allowed to call [`OUTPUT_HELPERS`] (relative to kernel-probes/).
const EMIT_HEADER: &str = "include/emit.bpf.h";

/// The emit helper every program must reach.
const EMIT_FN: &str = "vigil_emit";

/// Programs (by function name) that are allowed not to emit, with the reason
/// in a comment. Besides these, the syscall-entry programs of the hook table
/// (`Role::Stash`) only keep arguments for their exit program, which emits.
const NON_EMITTING_PROGRAMS: &[&str] = &[
    // fail_closed: denies an exec when the critical ring has no room; it
    // decides, the exec record itself comes from the process probes.
    "vigil_fail_closed_exec",
];

fn allowed_not_to_emit(name: &str) -> bool {
    NON_EMITTING_PROGRAMS.contains(&name) || super::hooks::HOOKS.iter().any(|h| h.program == name && h.role == super::hooks::Role::Stash)
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The source with comments replaced by spaces (newlines kept, so byte
/// offsets and line numbers stay valid). String and character literals are
/// kept as they are.
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (b'/', Some(b'/')) => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                out.extend_from_slice(b"  ");
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
                let end = (i + 2).min(b.len());
                out.extend(std::iter::repeat_n(b' ', end - i));
                i = end;
            }
            (q @ (b'"' | b'\''), _) => {
                out.push(q);
                i += 1;
                while i < b.len() && b[i] != q && b[i] != b'\n' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        out.push(b[i]);
                        i += 1;
                    }
                    out.push(b[i]);
                    i += 1;
                }
                if i < b.len() {
                    out.push(b[i]);
                    i += 1;
                }
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The code with preprocessor lines (and their `\` continuations) blanked,
/// newlines kept.
fn blank_preprocessor(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut in_directive = false;
    for line in code.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if in_directive || body.trim_start().starts_with('#') {
            in_directive = body.trim_end().ends_with('\\');
            out.extend(std::iter::repeat_n(' ', body.len()));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// `header` without its `__attribute__((...))` parts.
fn drop_attributes(header: &str) -> String {
    let mut h = header.to_owned();
    while let Some(at) = h.find("__attribute__") {
        let Some(open) = h[at..].find('(').map(|o| at + o) else { break };
        let mut depth = 0usize;
        let mut end = h.len();
        for (i, c) in h[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        h.replace_range(at..end, " ");
    }
    h
}

/// Byte offsets where `name` starts an identifier (not preceded by an
/// identifier character). With `whole`, it must also end one.
fn ident_hits(code: &str, name: &str, whole: bool) -> Vec<usize> {
    let b = code.as_bytes();
    code.match_indices(name)
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || !is_ident(b[i - 1]))
        .filter(|&i| !whole || b.get(i + name.len()).is_none_or(|c| !is_ident(*c)))
        .collect()
}

fn line_of(code: &str, offset: usize) -> usize {
    code[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Every direct use of an output helper outside the emit header, as
/// `path:line: helper`. `files` are (path relative to kernel-probes/, text).
pub(super) fn output_helper_violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        if path == EMIT_HEADER {
            continue;
        }
        let code = strip_comments(text);
        for helper in OUTPUT_HELPERS {
            for at in ident_hits(&code, helper, false) {
                out.push(format!("{path}:{}: {helper}", line_of(&code, at)));
            }
        }
    }
    out
}

/// A top-level function definition.
#[derive(Debug)]
struct Function {
    name: String,
    /// `SEC("...")` in front of it, if any.
    section: Option<String>,
    body: String,
}

/// Top-level `{ ... }` blocks whose header (the text since the previous
/// top-level `;` or `}`) looks like a function: `... name(args)`. For
/// `BPF_PROG(name, ...)`-style macros (an all-caps name), the first
/// argument is the function's name.
fn functions(code: &str) -> Vec<Function> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut header_start = 0;
    let mut body_start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                if depth == 0 {
                    body_start = i;
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some(f) = parse_header(&code[header_start..body_start], &code[body_start..=i]) {
                        out.push(f);
                    }
                    header_start = i + 1;
                }
            }
            b';' if depth == 0 => header_start = i + 1,
            _ => {}
        }
        i += 1;
    }
    out
}

fn parse_header(header: &str, body: &str) -> Option<Function> {
    let mut header = drop_attributes(header);
    let mut section = None;
    if let Some(at) = ident_hits(&header, "SEC", true).first().copied() {
        let rest = &header[at..];
        let open = rest.find('(')?;
        let close = rest.find(')')?;
        section = Some(rest[open + 1..close].trim().trim_matches('"').to_owned());
        header.replace_range(at..at + close + 1, "");
    }
    let open = header.find('(')?;
    let before = header[..open].trim_end();
    let name_start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
    let mut name = before[name_start..].to_owned();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if name.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') {
        let args = &header[open + 1..];
        name = args.split([',', ')']).next()?.trim().to_owned();
    }
    Some(Function { name, section, body: body.to_owned() })
}

/// Whether a section holds a program (not maps, license, config data).
fn is_program_section(section: &str) -> bool {
    !section.starts_with('.') && section != "license" && section != "version"
}

/// Every program (a function with a program `SEC`) in `files` that cannot
/// reach the emit helper, directly or through functions defined in `files`
/// (a mention counts: callbacks such as `bpf_loop`'s are passed by name).
/// Also an error when no program or no emit helper is found at all.
pub(super) fn non_emitting_programs(files: &[(String, String)]) -> Vec<String> {
    let defs: Vec<(&str, Function)> = files
        .iter()
        .flat_map(|(path, text)| functions(&blank_preprocessor(&strip_comments(text))).into_iter().map(move |f| (path.as_str(), f)))
        .collect();
    let mut problems = Vec::new();
    if !defs.iter().any(|(_, f)| f.name == EMIT_FN) {
        problems.push(format!("{EMIT_FN}() is not defined in the probe sources"));
    }
    // Names of functions that reach the emit helper: a fixed point over
    // mentions (same-named static functions of different files are merged,
    // which can only make the check more lenient for the duplicate name).
    let mut emitting: BTreeSet<&str> = BTreeSet::from([EMIT_FN]);
    loop {
        let before = emitting.len();
        for (_, f) in &defs {
            if !emitting.contains(f.name.as_str()) && emitting.iter().any(|e| !ident_hits(&f.body, e, true).is_empty()) {
                emitting.insert(&f.name);
            }
        }
        if emitting.len() == before {
            break;
        }
    }
    let programs: Vec<_> =
        defs.iter().filter(|(path, f)| path.ends_with(".bpf.c") && f.section.as_deref().is_some_and(is_program_section)).collect();
    if programs.is_empty() {
        problems.push("no eBPF program (SEC(\"...\") function) found in any .bpf.c: the source check is broken".to_owned());
    }
    for (path, f) in programs {
        if !emitting.contains(f.name.as_str()) && !allowed_not_to_emit(&f.name) {
            problems.push(format!(
                "{path}: program {} (SEC(\"{}\")) never reaches {EMIT_FN}()",
                f.name,
                f.section.as_deref().unwrap_or("")
            ));
        }
    }
    problems
}

/// Names of the programs (functions with a program `SEC`) in the .bpf.c files.
fn program_names(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(path, _)| path.ends_with(".bpf.c"))
        .flat_map(|(_, text)| functions(&blank_preprocessor(&strip_comments(text))))
        .filter(|f| f.section.as_deref().is_some_and(is_program_section))
        .map(|f| f.name)
        .collect()
}

/// Every *.c and *.h under `dir` except include/vmlinux.h, as (path
/// relative to `dir`, text), sorted by path.
fn probe_sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "c" || x == "h") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
            (rel != "include/vmlinux.h")
                .then(|| (rel, std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))))
        })
        .collect()
}

fn kernel_probes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-probes")
}

#[test]
fn output_helpers_are_called_only_by_the_emit_header() {
    let files = probe_sources(&kernel_probes_dir());
    assert!(files.iter().any(|(p, _)| p == EMIT_HEADER), "{EMIT_HEADER} not found");
    assert!(files.iter().any(|(p, _)| p.ends_with(".bpf.c")), "no .bpf.c file found");
    let bad = output_helper_violations(&files);
    assert!(
        bad.is_empty(),
        "records must leave the kernel through {EMIT_FN}() ({EMIT_HEADER}) only; direct output in:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_program_reaches_the_emit_helper() {
    let files = probe_sources(&kernel_probes_dir());
    let bad = non_emitting_programs(&files);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The parser sees every program the loader attaches.
    let found = program_names(&files);
    for hook in super::hooks::HOOKS {
        assert!(found.iter().any(|n| n == hook.program), "program {} not found by the source check (found {found:?})", hook.program);
    }
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect()
    }

    const EMIT: &str = "static __always_inline int vigil_emit(void *rec, __u64 size, __u32 type)\n{\n\
                        \treturn bpf_ringbuf_output(&events, rec, size, 0);\n}\n";

    #[test]
    fn direct_output_outside_the_header_is_caught() {
        let f = files(&[
            (EMIT_HEADER, EMIT),
            ("net.bpf.c", "/* bpf_ringbuf_output in a comment is fine */\nint f(void)\n{\n\tbpf_ringbuf_output(&events, 0, 0, 0);\n}\n"),
            ("include/x.bpf.h", "void *r = bpf_ringbuf_reserve_dynptr(x); // bpf_perf_event_output\n"),
            ("y.bpf.c", "int my_bpf_ringbuf_output_wrapper;\nchar *s = \"//\"; bpf_perf_event_output(ctx);\n"),
        ]);
        assert_eq!(
            output_helper_violations(&f),
            ["net.bpf.c:4: bpf_ringbuf_output", "include/x.bpf.h:1: bpf_ringbuf_reserve", "y.bpf.c:2: bpf_perf_event_output"]
        );
    }

    #[test]
    fn programs_must_reach_the_emit_helper() {
        let prog = "#include \"emit.bpf.h\"\n\
                    struct { __uint(type, 1); } events SEC(\".maps\");\n\
                    char LICENSE[] SEC(\"license\") = \"GPL\";\n\
                    static long cb(__u64 i, void *arg)\n{\n\tvigil_emit(arg, 8, 1);\n\treturn 0;\n}\n\
                    static __noinline int helper(void)\n{\n\tbpf_loop(4, cb, 0, 0);\n\treturn 0;\n}\n\
                    SEC(\"tp_btf/a\")\nint BPF_PROG(handle_a, struct task_struct *p)\n{\n\treturn helper();\n}\n\
                    SEC(\"tp_btf/b\")\nint handle_b(unsigned long long *ctx)\n{\n\tif (ctx) { return 0; }\n\treturn 1; /* vigil_emit */\n}\n";
        let bad = non_emitting_programs(&files(&[(EMIT_HEADER, EMIT), ("p.bpf.c", prog)]));
        assert_eq!(bad, ["p.bpf.c: program handle_b (SEC(\"tp_btf/b\")) never reaches vigil_emit()"]);
    }

    #[test]
    fn finding_nothing_fails() {
        let bad = non_emitting_programs(&files(&[("p.bpf.c", "int x;\n")]));
        assert_eq!(bad.len(), 2, "{bad:?}");
    }
}
