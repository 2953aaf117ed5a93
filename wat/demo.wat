;; machvm demo guest: allocates memory, fills it, guards it with vm_protect, copies it with
;; vm_copy, checks that a copy into the guarded page is refused, and returns a checksum of the
;; copy. On a failed step it returns minus the step's number.
;;
;;   machvm run wat/demo.wat        prints -283935122 with a 4 KiB page size, 2089055838 with 16 KiB
(module
  (import "mach" "mach_task_self" (func $task_self (result i32)))
  (import "mach" "host_page_size" (func $host_page_size (param i32 i32) (result i32)))
  (import "mach" "vm_allocate" (func $vm_allocate (param i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_protect" (func $vm_protect (param i32 i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_copy" (func $vm_copy (param i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_deallocate" (func $vm_deallocate (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; Scratch words at the start of memory: 0 = page size, 4 = allocated address.
  (func $fail (param $step i32) (result i32) (i32.sub (i32.const 0) (local.get $step)))

  (func (export "_start") (result i32)
    (local $page i32) (local $buf i32) (local $i i32) (local $h i32)
    ;; 1. the page size
    (if (call $host_page_size (call $task_self) (i32.const 0))
      (then (return (call $fail (i32.const 1)))))
    (local.set $page (i32.load (i32.const 0)))
    ;; 2. three pages anywhere: the memory has one wasm page in use, so it grows
    (i32.store (i32.const 4) (i32.const 0))
    (if (call $vm_allocate (call $task_self) (i32.const 4)
              (i32.mul (local.get $page) (i32.const 3)) (i32.const 1 (; VM_FLAGS_ANYWHERE ;)))
      (then (return (call $fail (i32.const 2)))))
    (local.set $buf (i32.load (i32.const 4)))
    ;; 3. fill the first page with a pattern
    (local.set $i (i32.const 0))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (local.get $page)))
        (i32.store8 (i32.add (local.get $buf) (local.get $i))
                    (i32.xor (i32.mul (local.get $i) (i32.const 7)) (i32.shr_u (local.get $i) (i32.const 8))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    ;; 4. make the third page read-only, and lower its maximum so it stays so
    (if (call $vm_protect (call $task_self)
              (i32.add (local.get $buf) (i32.mul (local.get $page) (i32.const 2)))
              (local.get $page) (i32.const 1) (i32.const 1 (; VM_PROT_READ ;)))
      (then (return (call $fail (i32.const 4)))))
    ;; 5. copy page 1 to page 2 (unaligned by 3 bytes, the length one page minus 3)
    (if (call $vm_copy (call $task_self) (local.get $buf) (i32.sub (local.get $page) (i32.const 3))
              (i32.add (i32.add (local.get $buf) (local.get $page)) (i32.const 3)))
      (then (return (call $fail (i32.const 5)))))
    ;; 6. a copy into the read-only page fails with KERN_PROTECTION_FAILURE (2)
    (if (i32.ne (call $vm_copy (call $task_self) (local.get $buf) (i32.const 16)
                      (i32.add (local.get $buf) (i32.mul (local.get $page) (i32.const 2))))
                (i32.const 2))
      (then (return (call $fail (i32.const 6)))))
    ;; 7. raising the protection back fails too: its maximum is read-only (KERN_PROTECTION_FAILURE)
    (if (i32.ne (call $vm_protect (call $task_self)
                      (i32.add (local.get $buf) (i32.mul (local.get $page) (i32.const 2)))
                      (local.get $page) (i32.const 0) (i32.const 3))
                (i32.const 2))
      (then (return (call $fail (i32.const 7)))))
    ;; 8. checksum of the second page
    (local.set $i (i32.const 0))
    (local.set $h (i32.const 17))
    (block $done
      (loop $sum
        (br_if $done (i32.ge_u (local.get $i) (local.get $page)))
        (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 31))
                               (i32.load8_u (i32.add (i32.add (local.get $buf) (local.get $page)) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sum)))
    ;; 9. give the memory back
    (if (call $vm_deallocate (call $task_self) (local.get $buf) (i32.mul (local.get $page) (i32.const 3)))
      (then (return (call $fail (i32.const 9)))))
    (local.get $h))
)
