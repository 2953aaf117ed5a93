//! The embedding example (`examples/two_tasks.rs`), run as a test.

#[allow(dead_code)] // its `main` is the example's, not the test's
#[path = "../examples/two_tasks.rs"]
mod two_tasks;

use machvm::abi::*;

#[test]
fn one_task_copies_memory_out_of_the_other() {
    let r = two_tasks::run().expect("the example runs");
    // The first right inserted into a namespace is named 0x303 (docs/semantics.md).
    assert_eq!(r.port, MachPort(0x303));
    assert_eq!(r.copy, KERN_SUCCESS);
    assert_eq!(r.copied, two_tasks::MESSAGE);
    assert_eq!(r.guarded_copy, KERN_PROTECTION_FAILURE);
    let regions: Vec<String> = r.source_regions.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        regions,
        [
            "0x0-0x2000 rw-/rwx",
            "0x2000-0x3000 r--/rwx",
            "0x3000-0x4000 ---/rwx",
            "0x4000-0x10000 rw-/rwx"
        ]
    );
}
