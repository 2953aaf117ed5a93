//! `machvm fuzz`: libFuzzer on a guest's `LLVMFuzzerTestOneInput`, through the command line:
//! findings, their artifacts and reports, replays, timeouts, and the errors of a module that
//! is no fuzz target.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `machvm fuzz ARGS` in `dir`, with Rust backtraces on (a panic would show).
fn fuzz(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_machvm"))
        .arg("fuzz")
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the machvm binary runs")
}

/// The standard error, checked to hold no panic and no Rust backtrace.
fn stderr(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !e.contains("panicked") && !e.contains("Stack backtrace"),
        "a panic or a Rust backtrace: {e}"
    );
    e
}

/// A fresh, empty directory under the target directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files of `dir` whose names start with `prefix`.
fn artifacts(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// A fuzz target in wasm text: `LLVMFuzzerTestOneInput(data, size)` runs `body`, with
/// `$data` and `$size` its parameters.
fn target(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("target.wat");
    let wat = format!(
        r#"(module
             (memory (export "memory") 1)
             (func $LLVMFuzzerTestOneInput (export "LLVMFuzzerTestOneInput")
               (param $data i32) (param $size i32)
               (result i32)
               {body}
               (i32.const 0)))"#
    );
    std::fs::write(&path, wat).unwrap();
    path
}

/// Traps (`unreachable`) when the input starts with "FUZ", tested byte by byte: one branch
/// per byte, the coverage that leads libFuzzer there.
const MAGIC: &str = r#"
    (if (i32.ge_u (local.get $size) (i32.const 3))
      (then
        (if (i32.eq (i32.load8_u (local.get $data)) (i32.const 0x46))
          (then
            (if (i32.eq (i32.load8_u offset=1 (local.get $data)) (i32.const 0x55))
              (then
                (if (i32.eq (i32.load8_u offset=2 (local.get $data)) (i32.const 0x5a))
                  (then unreachable)))))))) "#;

#[test]
fn coverage_leads_libfuzzer_to_a_planted_trap() {
    let dir = fresh_dir("magic");
    let module = target(&dir, MAGIC);
    let corpus = dir.join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let o = fuzz(
        &dir,
        &[
            "--runs",
            "2000000",
            "--seed",
            "1",
            module.to_str().unwrap(),
            corpus.to_str().unwrap(),
        ],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    // libFuzzer's own lines: its counters are the guest's edges.
    assert!(e.contains("INFO: Loaded 1 modules"), "{e}");
    assert!(e.contains(" cov: "), "{e}");
    // The finding, as `machvm run` reports a trap, with the guest's frame.
    assert!(
        e.contains("error: the guest trapped: wasm trap: wasm `unreachable` instruction executed"),
        "{e}"
    );
    assert!(e.contains("LLVMFuzzerTestOneInput"), "{e}");
    let crashes = artifacts(&dir, "crash-");
    assert_eq!(crashes.len(), 1, "{e}");
    let input = std::fs::read(&crashes[0]).unwrap();
    assert!(input.starts_with(b"FUZ"), "{input:?}");
    let name = crashes[0].file_name().unwrap().to_string_lossy();
    assert!(e.contains(&format!("Test unit written to ./{name}")), "{e}");
    // Interesting inputs on the way went to the corpus.
    assert!(std::fs::read_dir(&corpus).unwrap().count() >= 3);

    // Replaying the artifact gives the same report, and exit status 1.
    let replay = fresh_dir("magic-replay");
    let o = fuzz(
        &replay,
        &[module.to_str().unwrap(), crashes[0].to_str().unwrap()],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("`unreachable` instruction executed"), "{e}");
}

#[test]
fn reading_one_byte_past_the_input_traps_on_the_guard_page() {
    let dir = fresh_dir("past");
    // Reads data[size]: the byte after the input.
    let module = target(
        &dir,
        "(drop (i32.load8_u (i32.add (local.get $data) (local.get $size))))",
    );
    let input = dir.join("input");
    std::fs::write(&input, b"hello").unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap(), input.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("memory fault at wasm address"), "{e}");
    assert!(e.contains("has protection ---"), "{e}");
    assert!(e.contains("SUMMARY: machvm fuzz:"), "{e}");
    // The artifact is the input, named by its SHA-1.
    let crash = dir.join("crash-aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
    assert_eq!(std::fs::read(&crash).unwrap(), b"hello", "{e}");
}

#[test]
fn the_input_is_read_only() {
    let dir = fresh_dir("const");
    let module = target(&dir, "(i32.store8 (local.get $data) (i32.const 0))");
    let input = dir.join("input");
    std::fs::write(&input, b"x").unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap(), input.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("has protection r-- (max rwx)"), "{e}");
}

#[test]
fn a_hang_is_a_timeout_with_its_own_artifact() {
    let dir = fresh_dir("hang");
    // Loops for ever on an input that starts with 'H'.
    let module = target(
        &dir,
        r#"(if (i32.and (i32.ne (local.get $size) (i32.const 0))
                      (i32.eq (i32.load8_u (local.get $data)) (i32.const 0x48)))
             (then (loop $forever (br $forever))))"#,
    );
    let input = dir.join("input");
    std::fs::write(&input, b"H").unwrap();
    let o = fuzz(
        &dir,
        &[
            "--timeout",
            "300ms",
            module.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("(--timeout)"), "{e}");
    assert_eq!(artifacts(&dir, "timeout-").len(), 1, "{e}");
}

#[test]
fn a_clean_run_ends_with_status_zero_and_libfuzzers_summary() {
    let dir = fresh_dir("clean");
    let module = target(&dir, "");
    let o = fuzz(&dir, &["--runs", "500", module.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("Done 500 runs"), "{e}");
    assert!(e.contains("stat::number_of_executed_units: 500"), "{e}");
    assert!(artifacts(&dir, "crash-").is_empty());
}

#[test]
fn modules_that_are_no_fuzz_target_are_refused() {
    let dir = fresh_dir("refused");
    let module = dir.join("plain.wat");
    std::fs::write(
        &module,
        r#"(module (memory (export "memory") 1) (func $f (export "f")))"#,
    )
    .unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("does not export `LLVMFuzzerTestOneInput`"),
        "{e}"
    );
    assert!(e.contains("-Wl,--export=LLVMFuzzerTestOneInput"), "{e}");

    std::fs::write(
        &module,
        r#"(module (memory (export "memory") 1)
             (func $f (export "LLVMFuzzerTestOneInput") (param i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("has type"), "{e}");

    // A trap before any input (the start function) is the module's, with no artifact.
    std::fs::write(
        &module,
        r#"(module (memory (export "memory") 1)
             (func $start unreachable) (start $start)
             (func (export "LLVMFuzzerTestOneInput") (param i32 i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("before any input"), "{e}");
    assert!(artifacts(&dir, "crash-").is_empty());

    // A stripped module: its allocator cannot be found, and the way out is named.
    std::fs::write(
        &module,
        r#"(module (memory (export "memory") 1)
             (func (export "LLVMFuzzerTestOneInput") (param i32 i32) (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let o = fuzz(&dir, &[module.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("cannot find the module's `malloc` and `free`"),
        "{e}"
    );
    assert!(e.contains("--no-guard-malloc"), "{e}");
    let o = fuzz(
        &dir,
        &[
            "--no-guard-malloc",
            "--runs",
            "10",
            module.to_str().unwrap(),
        ],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    // Nor can its heap be started before the input is placed: that is said.
    assert!(
        e.contains("warning: --no-guard-malloc: the module's `malloc` cannot be found"),
        "{e}"
    );
}

#[test]
fn flags_that_would_break_the_sandbox_are_usage_errors() {
    let dir = fresh_dir("flags");
    let module = target(&dir, "");
    for flag in ["-fork=2", "-jobs=2", "-merge=1", "-handle_segv=1"] {
        let o = fuzz(&dir, &[module.to_str().unwrap(), "--", flag]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {e}");
        assert!(
            e.contains("not supported") || e.contains("must stay 0"),
            "{e}"
        );
    }
}

/// The planted heap bugs of `guest/tests/fuzz/planted.c` (prebuilt, stock wasi-libc
/// `malloc`): the module, machvm fuzz's flags for it, what the report says of the address,
/// and the line of the faulting access.
const PLANTED: &[(&str, &[&str], &str, &str)] = &[
    (
        "fuzz_overflow_read",
        &[],
        "0 bytes past the end of the 32-byte block",
        "planted.c:42",
    ),
    (
        "fuzz_overflow_write",
        &[],
        "0 bytes past the end of the 32-byte block",
        "planted.c:45",
    ),
    (
        "fuzz_underflow",
        &["--protect-before"],
        "1 bytes before the 32-byte block",
        "planted.c:48",
    ),
    (
        "fuzz_uaf_read",
        &[],
        "0 bytes inside the 32-byte block at 0x22fe0 (freed",
        "planted.c:52",
    ),
    (
        "fuzz_uaf_write",
        &[],
        "0 bytes inside the 32-byte block at 0x22fe0 (freed",
        "planted.c:56",
    ),
    (
        "fuzz_double_free",
        &[],
        "double free: free(0x22fe0) of a 32-byte block that was freed already",
        "planted.c:60",
    ),
    (
        "fuzz_past_input",
        &[],
        "0 bytes past the end of the 3-byte input",
        "planted.c:63",
    ),
];

fn prebuilt(name: &str) -> String {
    format!("{}/guest/prebuilt/{name}.wasm", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_planted_heap_bug_is_caught_at_its_line() {
    let dir = fresh_dir("planted");
    let input = dir.join("BUG");
    std::fs::write(&input, b"BUG").unwrap();
    for &(name, flags, place, line) in PLANTED {
        let module = prebuilt(name);
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([module.as_str(), input.to_str().unwrap()]);
        let o = fuzz(&dir, &args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(e.contains(place), "{name}: {e}");
        assert!(
            e.contains(&format!("guest/tests/fuzz/{line}:")),
            "{name}: {e}"
        );
        // An input that does not reach the bug runs clean.
        let clean = dir.join("clean");
        std::fs::write(&clean, b"BUT").unwrap();
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([module.as_str(), clean.to_str().unwrap()]);
        let o = fuzz(&dir, &args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
}

#[test]
fn the_underflow_needs_the_guard_before_the_block() {
    // By default the guard page follows the block: one byte before it is the same page's.
    let dir = fresh_dir("underflow");
    let input = dir.join("BUG");
    std::fs::write(&input, b"BUG").unwrap();
    let module = prebuilt("fuzz_underflow");
    let o = fuzz(&dir, &[module.as_str(), input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `--no-guard-malloc`: the module's own allocator, its heap started before the input is
/// placed. (Debian 12's wasi-libc malloc takes every page up to the memory's end at its
/// first call: were the input placed first, it would take the input's pages too and trap
/// in `dlmalloc` on the input's guard page, a finding that is not the target's.) A heap
/// bug then goes unseen, as in any wasm runtime; reading past the input is still caught.
#[test]
fn without_the_guard_heap_only_reading_past_the_input_is_caught() {
    let dir = fresh_dir("planted-own-malloc");
    let input = dir.join("BUG");
    std::fs::write(&input, b"BUG").unwrap();
    for &(name, _, place, line) in PLANTED {
        let module = prebuilt(name);
        let o = fuzz(
            &dir,
            &[
                "--no-guard-malloc",
                module.as_str(),
                input.to_str().unwrap(),
            ],
        );
        let e = stderr(&o);
        assert!(
            !e.contains("dlmalloc") && !e.contains("warning"),
            "{name}: {e}"
        );
        if name == "fuzz_past_input" {
            assert_eq!(o.status.code(), Some(1), "{name}: {e}");
            assert!(e.contains(place), "{name}: {e}");
            assert!(
                e.contains(&format!("guest/tests/fuzz/{line}:")),
                "{name}: {e}"
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{name}: {e}");
        }
    }
    // Fuzzing a target whose every input mallocs (a copy of the input): none traps in the
    // allocator, the empty input included.
    let o = fuzz(
        &dir,
        &[
            "--no-guard-malloc",
            "--runs",
            "3000",
            "--seed",
            "3",
            &prebuilt("fuzz_small"),
        ],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("Done 3000 runs"), "{e}");
}

/// Runs `module`'s `LLVMFuzzerTestOneInput` on `input` under plain Wasmtime: its own WASI,
/// no page table, no rewrite but the added exports of the module's own `malloc` and `free`
/// (`export_allocator`), through which the input is copied into a block of the guest's heap,
/// as a harness in a runtime without guard pages places it. The target's result and the
/// fuel its call took, or the trap's message.
fn plain_wasmtime(module: &str, input: &[u8]) -> Result<(i32, u64), String> {
    use wasmtime::{Config, Engine, Linker, Module, Store};
    let wasm = std::fs::read(module).unwrap();
    let wasm = machvm::fuzz::heap::export_allocator(&wasm).unwrap().wasm;
    let engine = Engine::new(Config::new().consume_fuel(true)).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| s).unwrap();
    let mut store = Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
    store.set_fuel(u64::MAX).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = |store: &mut Store<_>| -> wasmtime::Result<(i32, u64)> {
        instance
            .get_typed_func::<(), ()>(&mut *store, "_initialize")?
            .call(&mut *store, ())?;
        let malloc = instance
            .get_typed_func::<i32, i32>(&mut *store, machvm::fuzz::heap::OWN_MALLOC_EXPORT)?;
        let free =
            instance.get_typed_func::<i32, ()>(&mut *store, machvm::fuzz::heap::OWN_FREE_EXPORT)?;
        let at = malloc.call(&mut *store, input.len() as i32)?;
        let memory = instance.get_memory(&mut *store, "memory").unwrap();
        memory.write(&mut *store, at as usize, input)?;
        let before = store.get_fuel()?;
        let code = instance
            .get_typed_func::<(i32, i32), i32>(&mut *store, "LLVMFuzzerTestOneInput")?
            .call(&mut *store, (at, input.len() as i32))?;
        let fuel = before - store.get_fuel()?;
        free.call(&mut *store, at)?;
        Ok((code, fuel))
    };
    run(&mut store).map_err(|e| format!("{e:?}"))
}

/// The planted bugs under plain Wasmtime: the middle column of the table in
/// `docs/fuzzing.md`. None shows: the write past the block and the underflow overwrite the
/// allocator's neighbouring bytes, the uses after free touch memory that is still there,
/// the read past the input reads the block's padding, and wasi-libc's malloc lets the
/// second `free` of a block pass. (The fuel shows that the input reached the bug: a
/// `malloc`, a `memset` and a `free` more than an input that does not.)
#[test]
fn under_plain_wasmtime_no_planted_bug_shows() {
    for &(name, _, _, _) in PLANTED {
        let module = prebuilt(name);
        let (code, clean) = plain_wasmtime(&module, b"BUT").unwrap();
        assert_eq!(code, 0, "{name}");
        let (code, bug) = plain_wasmtime(&module, b"BUG").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(code, 0, "{name}");
        assert!(
            bug > clean + 100,
            "{name}: {bug} units of fuel, {clean} without the bug"
        );
    }
}

#[test]
fn fuzzing_from_nothing_finds_a_planted_overflow() {
    let dir = fresh_dir("planted-search");
    let module = prebuilt("fuzz_overflow_write");
    let o = fuzz(&dir, &["--runs", "2000000", "--seed", "7", module.as_str()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("0 bytes past the end of the 32-byte block"),
        "{e}"
    );
    let crashes = artifacts(&dir, "crash-");
    assert_eq!(crashes.len(), 1, "{e}");
    assert!(std::fs::read(&crashes[0]).unwrap().starts_with(b"BUG"));
}
