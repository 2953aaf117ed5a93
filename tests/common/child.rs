//! Scenarios that could crash the process run in a child process: the test binary runs
//! itself again, filtered to one test, with `MACHVM_CHILD` naming the scenario. A crash, a
//! panic or a missing "done" line fails the parent's test.

use std::process::Command;

/// Runs the test binary filtered to test `test`, with `MACHVM_CHILD=scenario`, and asserts
/// that the scenario ran to its end.
fn spawn(test: &str, scenario: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("MACHVM_CHILD", scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("scenario {scenario} done")),
        "child `{scenario}` failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In the parent test: runs `scenario` in a child process, through the binary's
/// `child_entry` test (see [`entry`]), and asserts that it passed.
pub fn run(scenario: &str) {
    spawn("child_entry", scenario);
}

/// In `child_entry`: runs the scenario this process was started for, if any, with
/// `dispatch`, then says it is done.
pub fn entry(dispatch: impl FnOnce(&str)) {
    let Ok(scenario) = std::env::var("MACHVM_CHILD") else {
        return;
    };
    dispatch(&scenario);
    println!("scenario {scenario} done");
}

/// In test `test`: runs `body` in a child process (the same test, re-run).
pub fn in_child(test: &str, body: impl FnOnce()) {
    if std::env::var("MACHVM_CHILD").is_ok_and(|s| s == test) {
        body();
        println!("scenario {test} done");
        return;
    }
    spawn(test, test);
}
