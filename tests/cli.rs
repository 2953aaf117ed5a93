//! The `machvm run` command line: results, exit codes and messages.

use std::path::PathBuf;
use std::process::{Command, Output};

fn machvm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_machvm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the machvm binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
