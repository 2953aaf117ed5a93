//! Unit tests whose failure could crash the process run their body in a child process: the
//! test binary runs itself again, filtered to the one test, with `MACHVM_CHILD` set.

/// In unit test `test` (its path in the crate, `share::backing::tests::name`): true in the
/// child, which runs the test's body and prints `done` at its end. In the parent: runs the
/// child, asserts that it succeeded and printed `done`, and answers false.
pub(crate) fn in_child(test: &str, done: &str) -> bool {
    if std::env::var_os("MACHVM_CHILD").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env("MACHVM_CHILD", test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(done),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
