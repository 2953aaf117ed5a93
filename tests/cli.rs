//! The `machvm run` command line: results, exit codes and messages.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `machvm ARGS` in the repository's root. Rust backtraces are turned on, so that a
/// panic or a bare error backtrace would show: [`stderr`] checks there is none.
fn machvm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_machvm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the machvm binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The standard error, checked to hold no panic and no Rust backtrace.
fn stderr(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !e.contains("panicked") && !e.contains("Stack backtrace") && !e.contains("RUST_BACKTRACE"),
        "a panic or a Rust backtrace: {e}"
    );
    e
}

/// Writes `text` to a fresh file under the target directory and returns its path.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_demo_guest_prints_its_checksum() {
    let o = machvm(&["run", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-283935122\n");
    let o = machvm(&["run", "--page-size", "16384", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2089055838\n");
}

#[test]
fn invoke_parses_arguments_by_type_and_prints_results() {
    let f = temp_file(
        "add.wat",
        r#"(module (memory (export "memory") 1)
             (func (export "add") (param i32 i64 f32 f64) (result i64 f64)
               (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1))
               (f64.add (f64.promote_f32 (local.get 2)) (local.get 3))))"#,
    );
    let o = machvm(&[
        "run",
        "--invoke",
        "add",
        f.to_str().unwrap(),
        "-5",
        "0x10",
        "1.5",
        "2.25",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "11\n3.75\n");
    // Wrong count and wrong type.
    let o = machvm(&["run", "--invoke", "add", f.to_str().unwrap(), "1"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("`add` takes 4 argument(s) (i32, i64, f32, f64), 1 given"),
        "{}",
        stderr(&o)
    );
    let o = machvm(&[
        "run",
        "--invoke",
        "add",
        f.to_str().unwrap(),
        "x",
        "1",
        "1",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("argument 1 of `add`: `x` is not a valid i32"),
        "{}",
        stderr(&o)
    );
    let o = machvm(&[
        "run",
        "--invoke",
        "add",
        f.to_str().unwrap(),
        "4294967296",
        "1",
        "1",
        "1",
    ]);
    assert!(
        stderr(&o).contains("does not fit in an i32"),
        "{}",
        stderr(&o)
    );
    // Missing export.
    let o = machvm(&["run", "--invoke", "sub", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("no exported function `sub` (exported functions: add)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn load_errors_are_explained() {
    let o = machvm(&["run", "no/such/file.wasm"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("cannot read `no/such/file.wasm`"),
        "{}",
        stderr(&o)
    );
    let f = temp_file(
        "bad.wat",
        "(module\n  (func (export \"f\") (result i32)\n    (i32.const oops)))\n",
    );
    let o = machvm(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(
        e.contains("not valid WebAssembly text") && e.contains("bad.wat:3:16"),
        "{e}"
    );
    let f = temp_file(
        "mistyped.wat",
        r#"(module (import "mach" "vm_protect" (func (param i32) (result i32))) (memory (export "memory") 1))"#,
    );
    let o = machvm(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("import `mach::vm_protect` has signature (i32) -> i32; for a 32-bit memory machvm expects (i32, i32, i32, i32, i32) -> i32"), "{}", stderr(&o));
    let o = machvm(&["run", "--page-size", "8192", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the page size must be 4096 or 16384"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_trap_exits_with_1_and_names_the_call() {
    let f = temp_file(
        "trap.wat",
        r#"(module (import "mach" "host_page_size" (func $hps (param i32 i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "_start") (result i32) (call $hps (i32.const 0) (i32.const 0x20000))))"#,
    );
    let o = machvm(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("host_page_size: cannot write out-parameter `size` at wasm address 0x20000"),
        "{e}"
    );
}

/// Checks the exit status and that stderr contains every one of `parts`; returns stderr.
#[track_caller]
fn fails(o: &Output, code: i32, parts: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    for p in parts {
        assert!(e.contains(p), "stderr lacks {p:?}: {e}");
    }
    e
}

#[test]
fn help_documents_the_exit_codes_and_options() {
    let o = machvm(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for part in [
        "Exit status:",
        "1    the guest trapped",
        "2    usage error",
        "3    the module could not be read",
        "4    the guest ran out of fuel (--fuel)",
        "5    the guest ran past its time limit (--timeout)",
        "--invoke <NAME>",
        "--dir <HOST_DIR[::GUEST_DIR]>",
        "--env <NAME[=VALUE]>",
        "--page-size <BYTES>",
        "--max-memory <BYTES>",
        "--fuel <N>",
        "--timeout <DURATION>",
        "--trace",
    ] {
        assert!(h.contains(part), "help lacks {part:?}: {h}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    fails(&machvm(&["run"]), 2, &["<MODULE>"]);
    fails(&machvm(&["frobnicate"]), 2, &["unrecognized subcommand"]);
    fails(
        &machvm(&["run", "--max-memory", "lots", "wat/demo.wat"]),
        2,
        &["`lots` is not a size"],
    );
    fails(
        &machvm(&["run", "--timeout", "soon", "wat/demo.wat"]),
        2,
        &["`soon` is not a duration"],
    );
    fails(
        &machvm(&["run", "--fuel", "many", "wat/demo.wat"]),
        2,
        &["invalid value 'many' for '--fuel <N>'"],
    );
    fails(
        &machvm(&["run", "--env", "=x", "wat/demo.wat"]),
        2,
        &["expected NAME=VALUE or NAME"],
    );
    fails(
        &machvm(&["run", "--dir", "::x", "wat/demo.wat"]),
        2,
        &["expected HOST_DIR or HOST_DIR::GUEST_DIR"],
    );
}

#[test]
fn module_errors_name_the_problem() {
    // A binary cut short: the parser's offset.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short.wasm");
    std::fs::write(&short, b"\0asm\x01\0\0\0\x01\x05").unwrap();
    fails(
        &machvm(&["run", short.to_str().unwrap()]),
        3,
        &[
            "short.wasm` is not a valid WebAssembly module",
            "unexpected end-of-file (at offset 0xa)",
        ],
    );
    // A directory is not a module.
    fails(&machvm(&["run", "wat"]), 3, &["cannot read `wat`"]);
    // An unknown mach import: the list of what machvm provides.
    let f = temp_file(
        "unknown.wat",
        r#"(module (import "mach" "vm_frobnicate" (func (param i32) (result i32))) (memory (export "memory") 1))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        3,
        &["unknown import `mach::vm_frobnicate`; machvm provides mach_task_self, mach_host_self, host_page_size, vm_allocate"],
    );
    // A mistyped one for a 64-bit memory: the expected signature for that width.
    let f = temp_file(
        "mistyped64.wat",
        r#"(module (import "mach" "vm_copy" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") i64 1))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        3,
        &["import `mach::vm_copy` has signature (i32, i32, i32, i32) -> i32; for a 64-bit memory machvm expects (i32, i64, i64, i64) -> i32"],
    );
    // An import from elsewhere.
    let f = temp_file(
        "env.wat",
        r#"(module (import "env" "log" (func (param i32))) (memory (export "memory") 1) (func (export "_start")))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        3,
        &[
            "unknown import: `env::log` has not been defined",
            "machvm provides the `mach` imports and WASI preview 1",
        ],
    );
    // The same from a module with no memory, which Wasmtime's linker instantiates.
    let f = temp_file(
        "env_nomem.wat",
        r#"(module (import "env" "log" (func (param i32))) (func (export "_start")))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        3,
        &[
            "env::log",
            "machvm provides the `mach` imports and WASI preview 1",
        ],
    );
    // No `_start`: not a command.
    let f = temp_file(
        "reactor.wat",
        r#"(module (memory (export "memory") 1) (func (export "f")))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        3,
        &["no exported function `_start` (exported functions: f); it is not a command module: name the export to call with --invoke NAME"],
    );
    // `_start` with parameters gets them through --invoke.
    let f = temp_file(
        "start_params.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") (param i32) (result i32) (local.get 0)))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap(), "5"]),
        3,
        &["`_start` takes 1 parameter(s) (i32); ARGS are the guest's argv, pass parameters with --invoke _start ARGS"],
    );
    let o = machvm(&["run", "--invoke", "_start", f.to_str().unwrap(), "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "5\n");
}

#[test]
fn a_reactor_is_initialised_before_its_export_is_called() {
    let f = temp_file(
        "init.wat",
        r#"(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 1))
             (func (export "_initialize") (global.set $g (i32.const 42)))
             (func (export "get") (result i32) (global.get $g)))"#,
    );
    let o = machvm(&["run", "--invoke", "get", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "42\n");
}

#[test]
fn a_memory_fault_shows_the_address_the_page_and_the_backtrace() {
    let f = temp_file(
        "oob.wat",
        r#"(module (memory (export "memory") 1)
             (func $load (param i32) (result i32) (i32.load (local.get 0)))
             (func $main (export "_start") (result i32) (call $load (i32.const 0x10010))))"#,
    );
    let e = fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &[
            "error: the guest trapped: wasm trap: out of bounds memory access",
            "memory fault at wasm address 0x10010 in linear memory of size 0x10000",
            "page 0x10000 is unallocated: it is past the end of the memory (0x10000 bytes)",
            "wasm backtrace:",
            "oob.wat!load",
            "oob.wat!main",
        ],
    );
    // Innermost frame first.
    assert!(e.find("!load").unwrap() < e.find("!main").unwrap(), "{e}");
    // Unnamed functions keep the index they have in the module as written, although
    // machvm's rewrite adds imports before them; its offsets are not shown.
    let f = temp_file(
        "oob_unnamed.wat",
        r#"(module (memory (export "memory") 1)
             (func (param i32) (result i32) (i32.load (local.get 0)))
             (func (export "_start") (result i32) (call 0 (i32.const 0x10010))))"#,
    );
    let e = fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &["    0: oob_unnamed.wat!<wasm function 0>\n    1: oob_unnamed.wat!<wasm function 1>"],
    );
    assert!(!e.contains(" - "), "{e}");
    // Both modes compile the same rewritten module, so the frames are the same.
    fails(
        &machvm(&["run", "--no-enforce", f.to_str().unwrap()]),
        1,
        &["    0: oob_unnamed.wat!<wasm function 0>\n    1: oob_unnamed.wat!<wasm function 1>"],
    );
    // With 16 KiB pages the page is named by its 16 KiB boundary.
    fails(
        &machvm(&["run", "--page-size", "16384", f.to_str().unwrap()]),
        1,
        &["page 0x10000 is unallocated"],
    );
}

/// A bulk-memory instruction on a protected page traps in machvm's check, which the
/// backtrace names, above the guest's own frames (unnamed ones keep their indices).
#[test]
fn a_bulk_memory_trap_names_the_check_in_the_backtrace() {
    let f = temp_file(
        "bulk.wat",
        r#"(module
             (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 2)
             (func $fill (memory.fill (i32.const 0x3000) (i32.const 1) (i32.const 16)))
             (func (export "_start")
               (drop (call $protect (i32.const 0x103) (i32.const 0x3000) (i32.const 0x1000)
                                    (i32.const 0) (i32.const 1)))
               (call $fill)))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &[
            "EXC_BAD_ACCESS: memory.fill write at wasm address 0x3000: page 0x3000 has protection r--",
            "    0: bulk.wat!machvm:check_fill\n    1: bulk.wat!fill\n    2: bulk.wat!<wasm function 2>",
        ],
    );
}

#[test]
fn a_store_to_a_protected_page_is_explained_once() {
    let f = temp_file(
        "readonly.wat",
        r#"(module
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $store (param i32) (i32.store (local.get 0) (i32.const 7)))
  (func $main (export "_start")
    (drop (call $protect (i32.const 0x103) (i32.const 0x3000) (i32.const 0x1000) (i32.const 0) (i32.const 1)))
    (call $store (i32.const 0x3010))))"#,
    );
    let e = fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &[
            "error: the guest trapped: wasm trap: out of bounds memory access\n  \
             memory fault at wasm address 0x3010 in linear memory of size 0x10000\n  \
             EXC_BAD_ACCESS: ",
            "write at wasm address 0x3010: page 0x3000 has protection r-- (max rwx)\nwasm backtrace:\n    0: readonly.wat!store\n    1: readonly.wat!main",
        ],
    );
    assert_eq!(e.matches("0x3000").count(), 1, "{e}");
}

#[test]
fn a_trap_in_the_start_function_or_a_host_call_is_a_trap() {
    let f = temp_file(
        "start_trap.wat",
        r#"(module (memory (export "memory") 1) (func $boom unreachable) (start $boom))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &[
            "the guest trapped: wasm trap: wasm `unreachable` instruction executed",
            "start_trap.wat!boom",
        ],
    );
    // A fault on a mach call's parameter carries the wasm backtrace too.
    let f = temp_file(
        "param_trap.wat",
        r#"(module (import "mach" "vm_allocate" (func $a (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (func $caller (export "_start") (result i32)
               (call $a (i32.const 0x103) (i32.const 0xfffe) (i32.const 0x1000) (i32.const 1))))"#,
    );
    fails(
        &machvm(&["run", f.to_str().unwrap()]),
        1,
        &[
            "the guest trapped: vm_allocate: cannot read in-parameter `address` at wasm address 0xfffe: page 0x10000 is unallocated",
            "param_trap.wat!caller",
        ],
    );
}

#[test]
fn a_wasi_guest_prints_its_argv_and_environment() {
    let o = machvm(&[
        "run",
        "--env",
        "GREETING=hi there",
        "wat/wasi_hello.wat",
        "one",
        "--two",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hello from a wasi guest\narg: wat/wasi_hello.wat\narg: one\narg: --two\nenv: GREETING=hi there\n"
    );
    // NAME alone passes the host's value; nothing else of the host's environment leaks in.
    let o = Command::new(env!("CARGO_BIN_EXE_machvm"))
        .args(["run", "--env", "MACHVM_TEST_VAR", "wat/wasi_hello.wat"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MACHVM_TEST_VAR", "from the host")
        .env("MACHVM_OTHER_VAR", "secret")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.ends_with("env: MACHVM_TEST_VAR=from the host\n"),
        "{out}"
    );
    assert!(!out.contains("secret"), "{out}");
}

#[test]
fn a_wasi_guest_exit_status_passes_through() {
    for status in ["0", "7", "42"] {
        let o = machvm(&["run", "wat/wasi_hello.wat", "exit", status]);
        assert_eq!(
            o.status.code(),
            Some(status.parse().unwrap()),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).starts_with("hello from a wasi guest\n"));
    }
    // Any status, as on macOS: its low 8 bits (`exit(255)`, `return -1;`, `exit(300)`).
    for (status, code) in [("255", 255), ("4294967295", 255), ("256", 0), ("300", 44)] {
        let o = machvm(&["run", "wat/wasi_hello.wat", "exit", status]);
        assert_eq!(o.status.code(), Some(code), "exit {status}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "exit {status}");
    }
}

#[test]
fn dir_preopens_a_directory_for_a_wasi_guest() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input.txt"), "contents of the file\n").unwrap();
    let spec = format!("{}::/data", dir.display());
    let o = machvm(&[
        "run",
        "--dir",
        &spec,
        "wat/wasi_hello.wat",
        "cat",
        "input.txt",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("arg: input.txt\ncontents of the file\n"),
        "{}",
        stdout(&o)
    );
    // Without the preopen the guest cannot open it (and says so with status 2).
    let o = machvm(&["run", "wat/wasi_hello.wat", "cat", "input.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).ends_with("cannot open the file\n"),
        "{}",
        stdout(&o)
    );
    // A directory that does not exist.
    fails(
        &machvm(&["run", "--dir", "no/such/dir", "wat/wasi_hello.wat"]),
        3,
        &["cannot open directory `no/such/dir` for --dir"],
    );
    // A module without WASI: a warning, and the run goes on.
    let o = machvm(&["run", "--env", "A=b", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o)
            .contains("warning: --dir and --env have no effect: the module does not import WASI"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fuel_stops_a_runaway_guest() {
    fails(
        &machvm(&["run", "--fuel", "100000", "wat/spin.wat"]),
        4,
        &[
            "error: the guest ran out of fuel: it used all 100000 units given by --fuel",
            "wasm backtrace:",
            "spin.wat!spin",
        ],
    );
    // Enough fuel for a guest that finishes.
    let o = machvm(&["run", "--fuel", "10000000", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-283935122\n");
    // Not enough for the demo's loops.
    fails(
        &machvm(&["run", "--fuel", "1000", "wat/demo.wat"]),
        4,
        &["ran out of fuel"],
    );
}

#[test]
fn timeout_stops_a_runaway_guest() {
    let start = std::time::Instant::now();
    fails(
        &machvm(&["run", "--timeout", "300ms", "wat/spin.wat"]),
        5,
        &[
            "error: the guest was stopped after 300ms (--timeout)",
            "spin.wat!spin",
        ],
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    // A guest that finishes in time is not disturbed.
    let o = machvm(&["run", "--timeout", "60s", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-283935122\n");
}

#[test]
fn timeout_stops_a_guest_blocked_in_a_host_call() {
    // The guest waits for stdin, which stays open: the epoch cannot stop it in host code, so
    // the runner stops the process after a grace period.
    let f = temp_file(
        "stdin.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    );
    let start = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_machvm"))
        .args(["run", "--timeout", "200ms", f.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    fails(
        &o,
        5,
        &["error: the guest was stopped after 200ms (--timeout) while it was blocked in a host call"],
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

/// A guest with exports around vm_allocate and memory.grow.
const ALLOC_WAT: &str = r#"(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_allocate" (func $alloc (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; vm_allocate(ANYWHERE, size): the kern_return and the address
  (func (export "alloc") (param $size i32) (result i32 i32)
    (call $alloc (call $self) (i32.const 0) (local.get $size) (i32.const 1))
    (i32.load (i32.const 0)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;

#[test]
fn max_memory_caps_the_memory_and_the_map() {
    let f = temp_file("alloc.wat", ALLOC_WAT);
    let f = f.to_str().unwrap();
    // No cap: the memory grows to hold the allocation.
    let o = machvm(&["run", "--invoke", "alloc", f, "0x20000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0\n65536\n");
    // A 128 KiB cap: the map ends there, a 128 KiB allocation has no room: KERN_NO_SPACE (3).
    let o = machvm(&[
        "run",
        "--max-memory",
        "128K",
        "--invoke",
        "alloc",
        f,
        "0x20000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "3\n0\n");
    // 64 KiB still fits.
    let o = machvm(&[
        "run",
        "--max-memory",
        "131072",
        "--invoke",
        "alloc",
        f,
        "0x10000",
    ]);
    assert_eq!(stdout(&o), "0\n65536\n");
    // The guest's own memory.grow is refused too.
    let o = machvm(&["run", "--max-memory", "0x20000", "--invoke", "grow", f, "2"]);
    assert_eq!(stdout(&o), "-1\n");
    let o = machvm(&["run", "--max-memory", "0x20000", "--invoke", "grow", f, "1"]);
    assert_eq!(stdout(&o), "1\n");
    // A module whose memory starts above the cap cannot be instantiated.
    fails(
        &machvm(&["run", "--max-memory", "1K", "--invoke", "grow", f, "1"]),
        3,
        &[
            "cannot instantiate",
            "exceeds memory limits",
            "the module's memory starts at 65536 bytes, more than --max-memory 1024",
        ],
    );
}

#[test]
fn trace_prints_one_line_per_call() {
    let o = machvm(&["run", "--trace", "wat/demo.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-283935122\n");
    let calls: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| !l.starts_with("mach_task_self"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        calls,
        [
            "host_page_size(host=0x103, *size -> 0x1000) = KERN_SUCCESS",
            "vm_allocate(task=0x103, *addr=0x0 -> 0x10000, size=0x3000, ANYWHERE) = KERN_SUCCESS",
            "vm_protect(task=0x103, addr=0x12000, size=0x1000, set_max=true, prot=r--) = KERN_SUCCESS",
            "vm_copy(task=0x103, src=0x10000, size=0xffd, dst=0x11003) = KERN_SUCCESS",
            "vm_copy(task=0x103, src=0x10000, size=0x10, dst=0x12000) = KERN_PROTECTION_FAILURE",
            "vm_protect(task=0x103, addr=0x12000, size=0x1000, set_max=false, prot=rw-) = KERN_PROTECTION_FAILURE",
            "vm_deallocate(task=0x103, addr=0x10000, size=0x3000) = KERN_SUCCESS",
        ]
    );
    assert_eq!(
        stderr(&o)
            .lines()
            .filter(|l| *l == "mach_task_self() = 0x103")
            .count(),
        7
    );
    // With 16 KiB pages.
    let o = machvm(&["run", "--trace", "--page-size", "16384", "wat/demo.wat"]);
    assert!(
        stderr(&o).contains("host_page_size(host=0x103, *size -> 0x4000) = KERN_SUCCESS"),
        "{}",
        stderr(&o)
    );
    // Without --trace, nothing.
    let o = machvm(&["run", "wat/demo.wat"]);
    assert_eq!(stderr(&o), "");
}

#[test]
fn trace_shows_guard_exceptions_regions_and_faults() {
    let f = temp_file(
        "trace.wat",
        r#"(module
  (import "mach" "vm_deallocate" (func $dealloc (param i32 i32 i32) (result i32)))
  (import "mach" "vm_region_64" (func $region (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "mach" "mach_vm_read" (func $read (param i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; a hole in the middle, then a deallocation across it: XNU's guard exception
    (drop (call $dealloc (i32.const 0x103) (i32.const 0x4000) (i32.const 0x1000)))
    (drop (call $dealloc (i32.const 0x103) (i32.const 0x3000) (i32.const 0x3000)))
    ;; the region at 0x100 (count 9 at 0x20)
    (i32.store (i32.const 0x10) (i32.const 0x100))
    (i32.store (i32.const 0x20) (i32.const 9))
    (drop (call $region (i32.const 0x103) (i32.const 0x10) (i32.const 0x14) (i32.const 9)
                        (i32.const 0x40) (i32.const 0x20) (i32.const 0x24)))
    ;; a read from a bad port
    (drop (call $read (i32.const 0x999) (i64.const 0) (i64.const 16) (i32.const 0x30) (i32.const 0x34)))
    ;; an out-parameter past the memory: a trap
    (drop (call $read (i32.const 0x103) (i64.const 0) (i64.const 16) (i32.const 0x30) (i32.const 0x10000)))))"#,
    );
    let e = fails(&machvm(&["run", "--trace", f.to_str().unwrap()]), 1, &[]);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "vm_deallocate(task=0x103, addr=0x4000, size=0x1000) = KERN_SUCCESS",
            "machvm::guard: guard exception: deallocation range holds unallocated pages (call=vm_deallocate, address=0x3000, size=0x3000)",
            "vm_deallocate(task=0x103, addr=0x3000, size=0x3000) = KERN_SUCCESS",
            "vm_region_64(task=0x103, *addr=0x100 -> 0x0, *size -> 0x3000, flavor=VM_REGION_BASIC_INFO_64, *info, *count=9 -> 9, *object_name -> 0x0) = KERN_SUCCESS",
            "mach_vm_read(task=0x999, addr=0x0, size=0x10, *data, *count) = MACH_SEND_INVALID_DEST",
            "mach_vm_read(task=0x103, addr=0x0, size=0x10, *data -> 0x3000, *count) = trap: cannot write out-parameter `count` at wasm address 0x10000: page 0x10000 is unallocated",
            "error: the guest trapped: mach_vm_read: cannot write out-parameter `count` at wasm address 0x10000: page 0x10000 is unallocated",
        ]
    );
}

/// WASI's host code obeys the page table as the guest's own accesses do (a kernel's
/// copyin/copyout): a buffer or out-pointer on a page the table refuses gets errno `FAULT`
/// (21) and no effect, with enforcement on or off. The guest below tries each case the
/// review found (stdin into a read-only page, random bytes and argv sizes into one, a
/// write from a `---` page) and exits with the number of the first case that was not
/// refused; then the input is read into allowed memory and printed whole (nothing was
/// consumed), and the guest's own load of the `---` page traps.
#[test]
fn wasi_obeys_the_page_table() {
    let f = temp_file(
        "wasi_protected.wat",
        r#"(module
             (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (import "mach" "mach_task_self" (func $self (result i32)))
             (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0x2000) "from a protected page\n")
             (func $refused (param $errno i32) (param $case i32)
               (if (i32.ne (local.get $errno) (i32.const 21)) (then (call $exit (local.get $case)))))
             (func (export "_start")
               ;; 0x2000: ---; 0x3000: r-- with max r--.
               (drop (call $protect (call $self) (i32.const 0x2000) (i32.const 0x1000) (i32.const 0) (i32.const 0)))
               (drop (call $protect (call $self) (i32.const 0x3000) (i32.const 0x1000) (i32.const 1) (i32.const 1)))
               ;; stdin into the read-only page
               (i32.store (i32.const 0) (i32.const 0x3000))
               (i32.store (i32.const 4) (i32.const 64))
               (call $refused (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 10))
               (call $refused (call $random (i32.const 0x3000) (i32.const 16)) (i32.const 11))
               (call $refused (call $args_sizes (i32.const 0x3000) (i32.const 0x100)) (i32.const 12))
               ;; a write from the --- page
               (i32.store (i32.const 0) (i32.const 0x2000))
               (i32.store (i32.const 4) (i32.const 22))
               (call $refused (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 13))
               ;; the whole input is still there: read it into 0x1000 and print it
               (i32.store (i32.const 0) (i32.const 0x1000))
               (i32.store (i32.const 4) (i32.const 64))
               (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (then (call $exit (i32.const 14))))
               (i32.store (i32.const 4) (i32.load (i32.const 8)))
               (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (then (call $exit (i32.const 15))))
               (drop (i32.load8_u (i32.const 0x2000)))))"#,
    );
    let run = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_machvm"))
            .arg("run")
            .args(extra)
            .arg(&f)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"the input\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = run(&[]);
    assert_eq!(stdout(&o), "the input\n", "{}", stderr(&o));
    let e = fails(
        &o,
        1,
        &[
            "EXC_BAD_ACCESS",
            "read at wasm address 0x2000",
            "page 0x2000 has protection ---",
        ],
    );
    assert!(!e.contains("panicked"), "{e}");
    // Without enforcement WASI is refused all the same; the guest's own load goes through.
    let o = run(&["--no-enforce"]);
    assert_eq!(stdout(&o), "the input\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Enforcement on and off accept the same modules and run them the same way: a module
/// whose name section is malformed, one that does not export its memory, one with no memory
/// and no `mach` import (plain wasm), and a data segment out of bounds traps (exit 1) in
/// both.
#[test]
fn both_modes_accept_the_same_modules() {
    // A module with a bulk-memory instruction, then a custom `name` section whose function
    // names subsection is cut short.
    let mut wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "_start") (memory.fill (i32.const 0) (i32.const 1) (i32.const 8))))"#,
    )
    .unwrap();
    let garbage = [1u8, 0x7f, 0xff, 0xff];
    let mut section = vec![4u8];
    section.extend(b"name");
    section.extend(garbage);
    wasm.push(0);
    wasm.push(section.len() as u8);
    wasm.extend(section);
    let bad_names =
        std::env::temp_dir().join(format!("machvm-cli-{}-names.wasm", std::process::id()));
    std::fs::write(&bad_names, &wasm).unwrap();
    let unexported = temp_file(
        "unexported.wat",
        r#"(module (import "mach" "mach_task_self" (func $self (result i32))) (memory 1)
             (func (export "_start") (memory.fill (i32.const 0) (i32.const 1) (i32.const 8))))"#,
    );
    let plain = temp_file(
        "plain.wat",
        r#"(module (func (export "main") (result i32) (i32.const 42)))"#,
    );
    let data_oob = temp_file(
        "data_oob.wat",
        r#"(module (memory (export "memory") 1) (data (i32.const 0xffff) "ab"))"#,
    );
    for mode in [&[][..], &["--no-enforce"][..]] {
        let run = |args: &[&str]| {
            let mut all = vec!["run"];
            all.extend(mode);
            all.extend(args);
            machvm(&all)
        };
        for f in [&bad_names, &unexported] {
            let o = run(&[f.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(0), "{mode:?} {f:?}: {}", stderr(&o));
        }
        let o = run(&["--invoke", "main", plain.to_str().unwrap()]);
        assert_eq!(stdout(&o), "42\n", "{mode:?}: {}", stderr(&o));
        fails(
            &run(&[data_oob.to_str().unwrap()]),
            1,
            &["the guest trapped"],
        );
    }
    let _ = std::fs::remove_file(bad_names);
}

/// spec §7: alternating single-page protections until machvm's mapping budget refuses one
/// leave the process working: `wat/exhaust.wat` runs to completion, and a WASI guest still
/// prints after its own exhaustion loop.
#[test]
fn a_guest_that_exhausts_the_mapping_budget_runs_to_completion() {
    let o = machvm(&["run", "--invoke", "main", "wat/exhaust.wat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0\n");
    let f = temp_file(
        "exhaust_wasi.wat",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 6000)
  (data (i32.const 0x100000) "still here\n")
  (func (export "_start") (local $i i32) (local $r i32)
    (block $done (loop $l
      (local.set $r (call $protect (call $self)
        (i32.add (i32.const 0x100000) (i32.mul (local.get $i) (i32.const 0x2000)))
        (i32.const 0x1000) (i32.const 0) (i32.const 1)))
      (br_if $done (local.get $r))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    ;; KERN_RESOURCE_SHORTAGE at the budget.
    (if (i32.ne (local.get $r) (i32.const 6)) (then unreachable))
    ;; WASI prints the message from the first (read-only) protected page.
    (i32.store (i32.const 0x10) (i32.const 0x100000))
    (i32.store (i32.const 0x14) (i32.const 11))
    (if (call $fd_write (i32.const 1) (i32.const 0x10) (i32.const 1) (i32.const 0x20))
      (then unreachable))
    (if (call $protect (call $self) (i32.const 0x100000)
          (i32.mul (local.get $i) (i32.const 0x2000)) (i32.const 0) (i32.const 3))
      (then unreachable))))"#,
    );
    let o = machvm(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "still here\n");
}

/// `--pagezero`: page 0 is mapped with no access, current and maximum, as macOS's
/// __PAGEZERO, so that a NULL dereference of a guest linked off page 0 traps and says so; a
/// module with data in page 0 is refused with the link flag that fixes it.
#[test]
fn pagezero_makes_a_null_dereference_trap() {
    let enforced = machvm::KernelConfig::default().enforce;
    for (page, end) in [("4096", "0x1000"), ("16384", "0x4000")] {
        for access in ["r", "w"] {
            let args = ["run", "--pagezero", "--page-size", page];
            let o = machvm(&[&args[..], &["guest/prebuilt/nullptr.wasm", access]].concat());
            // No call opens it again: it is permanent, as a macOS __PAGEZERO.
            assert_eq!(
                stdout(&o),
                format!(
                    "region at 0: 0-{end} prot 0/0\n\
                     vm_protect(0, page, READ) = (os/kern) protection failure\n\
                     vm_protect(0, page, COPY|RW) = (os/kern) no space available\n\
                     vm_deallocate(0, page) = (os/kern) successful\n\
                     vm_allocate(0, page, FIXED) = (os/kern) no space available\n\
                     vm_allocate(0, page, FIXED|OVERWRITE) = (os/kern) no space available\n"
                )
            );
            if !enforced {
                continue;
            }
            let kind = if access == "r" { "read" } else { "write" };
            fails(
                &o,
                1,
                &[
                    &format!("{kind} at wasm address 0x0: page 0x0 has protection --- (max ---)"),
                    "page 0 is __PAGEZERO (--pagezero): a NULL pointer was dereferenced",
                    "nullptr.wasm!main",
                ],
            );
        }
        // Without it, page 0 is the program's like any other page.
        let o = machvm(&["run", "--page-size", page, "guest/prebuilt/nullptr.wasm"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("vm_protect(0, page, READ) = (os/kern) successful\n"),
            "{}",
            stdout(&o)
        );
    }
    // Data whose place is not one constant may be in page 0: refused. A memory without a
    // page 0 cannot have it protected: refused. Without enforcement: a warning.
    let extended = temp_file(
        "pagezero_extended.wat",
        r#"(module (memory 1) (data (offset (i32.add (i32.const 0x8000) (i32.const -0x8000))) "x")
             (func (export "_start")))"#,
    );
    let o = machvm(&["run", "--pagezero", extended.to_str().unwrap()]);
    fails(&o, 3, &["has data at an offset that is not a constant"]);
    let empty = temp_file(
        "pagezero_empty.wat",
        r#"(module (memory 0 1) (func (export "_start")))"#,
    );
    let o = machvm(&["run", "--pagezero", empty.to_str().unwrap()]);
    fails(&o, 3, &["--pagezero: the task has no page 0 to protect"]);
    let o = machvm(&[
        "run",
        "--pagezero",
        "--no-enforce",
        "guest/prebuilt/nullptr.wasm",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("warning: with --no-enforce, --pagezero"));
    let o = machvm(&["run", "--pagezero", "guest/prebuilt/heap.wasm"]);
    fails(
        &o,
        3,
        &[
            "--pagezero: `guest/prebuilt/heap.wasm` has data at 0x400, in page 0 (page 0 is \
             its first 4096 bytes)",
            "-Wl,--global-base=16384",
        ],
    );
}

/// Write-only pages as XNU has them (x86-64 Linux): a macOS-style program that stores into
/// a `VM_PROT_WRITE` page reads it back, and a load from a write-only page before any store
/// traps, explained; a `memset` maps the page as a store does. Without enforcement every
/// load succeeds.
#[test]
fn write_only_pages_trap_loads_until_their_first_store() {
    let exact = machvm::KernelConfig::default().enforce
        && cfg!(all(target_os = "linux", target_arch = "x86_64"));
    let prog = "guest/prebuilt/writeonly.wasm";
    let head = "vm_protect(WRITE) = (os/kern) successful\nstored 42, read back 42\n";
    for page in ["4096", "16384"] {
        let o = machvm(&["run", "--page-size", page, prog]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("{head}done\n"));
        let o = machvm(&["run", "--page-size", page, prog, "bulk"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            stdout(&o),
            format!("{head}after memset: 7\nload before any store: 7\ndone\n")
        );
        let o = machvm(&["run", "--page-size", page, prog, "load"]);
        if exact {
            assert_eq!(stdout(&o), head);
            fails(
                &o,
                1,
                &[
                    "EXC_BAD_ACCESS",
                    "read at wasm address",
                    "has protection -w- (max rwx)",
                    // A -g build: the load's line, though the rewrite moved main's code
                    // (its memset became a checked memory.fill).
                    "writeonly.wasm!main\n         at ./guest/tests/writeonly.c:40:41",
                ],
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let o = machvm(&["run", "--no-enforce", "--page-size", page, prog, "load"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).ends_with("load before any store: 0\ndone\n"));
    }
}

/// Backtraces of a module built with `-g` name the file and line of each frame that has
/// them (the module's DWARF, read at the offsets of the module as written); modules
/// without DWARF show the functions only.
#[test]
fn backtraces_of_debug_builds_show_file_and_line() {
    let o = machvm(&["run", "guest/prebuilt/writeonly.wasm", "trap"]);
    fails(
        &o,
        1,
        &[
            "wasm `unreachable` instruction executed",
            "0: writeonly.wasm!main\n         at ./guest/tests/writeonly.c:27:3",
            "writeonly.wasm!_start\n         at ",
        ],
    );
    let plain = temp_file(
        "backtrace_plain.wat",
        r#"(module (func $f unreachable) (func (export "_start") (call $f)))"#,
    );
    let o = machvm(&["run", plain.to_str().unwrap()]);
    fails(
        &o,
        1,
        &["0: backtrace_plain.wat!f\n    1: backtrace_plain.wat!<wasm function 1>"],
    );
    assert!(!stderr(&o).contains("\n         at "), "{}", stderr(&o));
}

/// A module is the guest's, DWARF included: one built so that a reader that joins the
/// compilation directory to every file entry would need gigabytes (a 1 MiB directory,
/// 8192 file entries: 8 GiB) is read in bounded memory, and the trap is reported as usual.
#[test]
fn hostile_dwarf_cannot_make_the_backtrace_exhaust_memory() {
    fn uleb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                return;
            }
        }
    }
    let (dir_len, files) = (1 << 20, 8192u64);
    // .debug_abbrev: a compile unit with comp_dir (string), stmt_list, low_pc, high_pc.
    let abbrev = vec![
        1, 0x11, 0, 0x1b, 0x08, 0x10, 0x17, 0x11, 0x01, 0x12, 0x06, 0, 0, 0,
    ];
    // .debug_info (DWARF 4): the unit.
    let mut die = vec![1];
    die.extend(std::iter::repeat_n(b'A', dir_len));
    die.push(0);
    die.extend(0u32.to_le_bytes()); // stmt_list
    die.extend(0u32.to_le_bytes()); // low_pc
    die.extend(0x7fff_ffffu32.to_le_bytes()); // high_pc
    let mut body = 4u16.to_le_bytes().to_vec();
    body.extend(0u32.to_le_bytes());
    body.push(4);
    body.extend(die);
    let mut info = (body.len() as u32).to_le_bytes().to_vec();
    info.extend(body);
    // .debug_line (DWARF 5): one directory and `files` entries with empty names.
    let mut rest = vec![1, 1, 1, 0xfb, 14, 13, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1];
    rest.push(1);
    for v in [1, 8, 1] {
        uleb(v, &mut rest);
    }
    rest.extend(b"d\0");
    rest.push(1);
    for v in [1, 8, files] {
        uleb(v, &mut rest);
    }
    rest.extend(std::iter::repeat_n(0u8, files as usize));
    let mut body = 5u16.to_le_bytes().to_vec();
    body.extend([4, 0]);
    body.extend((rest.len() as u32).to_le_bytes());
    body.extend(rest);
    let mut line = (body.len() as u32).to_le_bytes().to_vec();
    line.extend(body);
    let mut wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    )
    .unwrap();
    for (name, data) in [
        (".debug_abbrev", abbrev),
        (".debug_info", info),
        (".debug_line", line),
    ] {
        // A custom section: id 0, its size, the name, the data.
        let mut payload = Vec::new();
        uleb(name.len() as u64, &mut payload);
        payload.extend(name.as_bytes());
        payload.extend(data);
        wasm.push(0);
        uleb(payload.len() as u64, &mut wasm);
        wasm.extend(payload);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dwarf_bomb.wasm");
    std::fs::write(&path, &wasm).unwrap();
    // 6 GiB of address space: the memory's 4 GiB reservation and room to spare, not 8 GiB.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 6291456; exec {} run {}",
            env!("CARGO_BIN_EXE_machvm"),
            path.display()
        ))
        .output()
        .unwrap();
    fails(
        &o,
        1,
        &[
            "wasm `unreachable` instruction executed",
            "dwarf_bomb.wasm!",
        ],
    );
}
